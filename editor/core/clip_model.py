"""CLIP for the editor: one thin wrapper over open_clip that every method uses.

A `ClipModel` comes from an open_clip (architecture, pretrained tag), a local weights file
(safetensors, a torch state dict, or OpenAI's original TorchScript `ViT-B-32.pt`), a config
dict (our demo CLIP), or a file this program saved. It offers:

- `encode_images(x)`: generator output in [-1, 1], any size, enters CLIP differentiably
  with the model's own preprocessing (resize the shorter side, centre crop, mean/std), so
  methods can optimise through it;
- `encode_text(prompts)` and `text_embedding(text, templates)`, a prompt ensemble cached
  in memory;
- `content_hash`, so caches can key on what the model computes.

The model is frozen and in eval mode. Weights are read as tensors only: safetensors,
`torch.load(weights_only=True)`, or a restricted unpickler for TorchScript archives that
never runs their code. Problems are reported as ClipError.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import json
import logging
import os
import pickle
import posixpath
import socket
import threading
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .checkpoints import (
    PICKLE_READ_ERRORS,
    SealedCall,
    check_claimed_data,
    file_size_of,
    is_torchscript_zip,
    refused_global,
    torch_load,
    torch_zip_problem,
    unpickling_reason,
    without_wrapper_prefix,
)
from .errors import CheckpointError, ClipError, short_reason
from .hashing import state_dict_hash
from .lazy_imports import ImportedOnUse
from .paths import atomic_path
from .prompt_templates import IMAGENET_TEMPLATES
from .tensor_files import readable_name, save_tensors

# imported when a CLIP is first used, not with the window (see lazy_imports)
open_clip = ImportedOnUse("open_clip")
TF = ImportedOnUse("torchvision.transforms.functional")

FORMAT_NAME = "latent-atelier-clip"
FORMAT_VERSION = 1
TEXT_CACHE_SIZE = 512

Tokenizer = Callable[[Sequence[str]], torch.Tensor]


# --------------------------------------------------------------------------- preprocessing


@dataclass(frozen=True)
class ImagePreprocess:
    """How images enter the model; the same fields as open_clip's PreprocessCfg."""

    size: tuple[int, int]  # (height, width) the vision tower expects
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"  # 'bicubic' | 'bilinear'
    resize_mode: str = "shortest"  # 'shortest' (then centre crop) | 'longest' (pad) | 'squash'
    fill_color: int = 0  # padding value (0-255) for 'longest'

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> ImagePreprocess:
        size = cfg["size"]
        size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        return cls(size=size, mean=_triple(cfg["mean"]), std=_triple(cfg["std"]),
                   interpolation=str(cfg.get("interpolation", "bicubic")),
                   resize_mode=str(cfg.get("resize_mode", "shortest")),
                   fill_color=int(cfg.get("fill_color", 0)))

    def to_dict(self) -> dict[str, Any]:
        return {"size": list(self.size), "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "resize_mode": self.resize_mode,
                "fill_color": self.fill_color}


def _triple(value: float | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(value, int | float):
        return (float(value),) * 3
    a, b, c = (float(v) for v in value)
    return a, b, c


def _default_preprocess() -> dict:
    """open_clip's default preprocessing (PreprocessCfg), a new dict each time."""
    return asdict(open_clip.transform.PreprocessCfg())


@functools.cache
def _preprocess_keys() -> frozenset[str]:
    return frozenset(_default_preprocess())


def _merged_preprocess(model: torch.nn.Module, overrides: Mapping[str, Any] | None) -> dict:
    """open_clip's defaults, then `overrides` (a pretrained tag's or a config's), with the size
    always taken from the vision tower, as open_clip's factory does."""
    cfg = _default_preprocess()
    cfg.update({k: v for k, v in (overrides or {}).items()
                if k in _preprocess_keys() and v is not None})
    size = getattr(model.visual, "image_size", None)
    if size is not None:
        cfg["size"] = size
    return cfg


def _resize_crop(x: torch.Tensor, pp: ImagePreprocess) -> torch.Tensor:
    """Tensor version of open_clip's eval transform (torchvision Resize + CenterCrop). With
    antialias on, torch's bicubic uses PIL's kernel both when shrinking and enlarging."""
    bilinear = pp.interpolation == "bilinear"
    mode = TF.InterpolationMode.BILINEAR if bilinear else TF.InterpolationMode.BICUBIC
    th, tw = pp.size
    h, w = x.shape[-2:]
    if pp.resize_mode == "squash":
        return TF.resize(x, [th, tw], interpolation=mode, antialias=True)
    if pp.resize_mode == "longest":
        scale = min(th / h, tw / w)
        x = TF.resize(x, [round(h * scale), round(w * scale)], interpolation=mode, antialias=True)
        return _pad_to(x, th, tw, pp.fill_color / 255.0)
    if th == tw:
        # An int size resizes the shorter side, exactly as open_clip's Resize(int) does.
        x = TF.resize(x, th, interpolation=mode, antialias=True)
    else:
        scale = max(th / h, tw / w)
        x = TF.resize(x, [round(h * scale), round(w * scale)], interpolation=mode, antialias=True)
    return TF.center_crop(x, [th, tw])


def _pad_to(x: torch.Tensor, th: int, tw: int, fill: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (th - h) // 2, (tw - w) // 2
    return F.pad(x, (left, tw - w - left, top, th - h - top), value=fill)


# --------------------------------------------------------------------------- weights files


def _sniff(path: Path) -> str:
    """'safetensors', 'torchscript', 'torch' (zip or legacy pickle) or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ClipError(f"{path.name} is empty (0 bytes): not a CLIP weights file")
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if zipfile.is_zipfile(path):
        return "torchscript" if is_torchscript_zip(path) else "torch"
    if head[:1] == b"\x80":
        return "torch"
    return "unknown"


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a CLIP weights file, unwrapped from training-checkpoint containers.
    Nothing in the file is run."""
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"CLIP weights file not found: {path}")
    kind = _sniff(path)
    if kind in ("torchscript", "torch") and zipfile.is_zipfile(path) \
            and (problem := torch_zip_problem(path)) is not None:
        raise ClipError(problem)
    if kind == "safetensors":
        state = _read_safetensors(path)
    elif kind == "torchscript":
        state = _read_torchscript(path)
    elif kind == "torch":
        state = _read_torch(path)
    else:
        raise ClipError(f"{path.name} is not a weights file this program can read "
                        "(expected safetensors, a PyTorch state dict or a TorchScript archive)")
    return _unwrap(state, path)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        with readable_name(path) as name:
            return load_file(name, device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ClipError(f"{path.name} is not a readable safetensors file ({e})") from e


# torch.load(weights_only=True) on a legacy file: "Detected pickle protocol 4 in the
# checkpoint, which was not the default ... The weights_only Unpickler might not support..."
_PROTOCOL_WARNING = r"Detected pickle protocol \d+ in the checkpoint"


def _read_torch(path: Path) -> object:
    try:
        with warnings.catch_warnings():  # says nothing to the user: read or refused anyway
            warnings.filterwarnings("ignore", message=_PROTOCOL_WARNING, category=UserWarning)
            return torch_load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # name what the file asked for, never torch's advice to switch the safety off
        what = refused_global(e)
        if what is not None:
            raise ClipError(f"{path.name} contains Python objects other than tensors (it asks "
                            f"for {what}); only weight files are loaded, never code") from e
        raise ClipError(f"{path.name} is not a readable PyTorch file; it is truncated or "
                        f"corrupt: download or copy it again ({unpickling_reason(e)})") from e
    except (*PICKLE_READ_ERRORS, OSError, zipfile.BadZipFile) as e:
        # a damaged legacy (non-zip) file: "storage key ... not found", "pop from empty list"
        raise ClipError(f"{path.name} is not a readable PyTorch file ({short_reason(e)})"
                        ) from e


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Training checkpoints nest the weights under 'state_dict' (open_clip) or 'model';
    DataParallel prefixes every key with 'module.'."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ClipError(f"{path.name} does not hold a dict of weights")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ClipError(f"{path.name} holds no tensors")
    state = without_wrapper_prefix(state)
    try:  # before anything reads them: views that repeat one number over billions
        check_claimed_data(state, path.name, file_size_of(path))
    except CheckpointError as e:
        raise ClipError(str(e)) from e
    return state


# TorchScript archives (OpenAI's original CLIP files) pickle their modules as instances of
# `__torch__.*` classes whose attributes hold the tensors. A restricted unpickler rebuilds
# those as plain records and tensors; their code (in the archive's code/ folder) is never
# compiled or run.

_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64, "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
    "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _ScriptRecord:
    """Stands in for one TorchScript object: its attributes, as data."""

    def __setstate__(self, state: object) -> None:
        self.__dict__["attrs"] = dict(state) if isinstance(state, Mapping) else {}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def _rebuild_tensor(storage: object, offset: int, size: tuple, stride: tuple,
                    *_ignored: object) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise ClipError("TorchScript archive: a tensor without valid storage")
    return storage.as_strided(tuple(size), tuple(stride), int(offset))


def _as_list(value: object, *_ignored: object) -> object:
    return value


# what the pickle may call, sealed against a BUILD that would rewrite the functions
_SEALED_REBUILD_TENSOR, _SEALED_AS_LIST = SealedCall(_rebuild_tensor), SealedCall(_as_list)


class _ScriptUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str, name: str):
        super().__init__(file)
        self._archive, self._root, self._name = archive, root, name
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptRecord
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _SEALED_REBUILD_TENSOR
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch.jit._pickle" and (name.startswith("build_") or
                                               name == "restore_type_tag"):
            return _SEALED_AS_LIST  # typed lists/dicts: keep the plain value
        raise ClipError(f"{self._name}: TorchScript archive refers to {module}.{name}, "
                        "which is not plain weights; nothing from it was run")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ClipError(f"{self._name}: unexpected TorchScript storage reference")
        key = str(pid[2])
        if key not in self._storages:
            data = bytearray(self._archive.read(f"{self._root}/data/{key}"))
            dtype = pid[1].dtype
            self._storages[key] = (torch.frombuffer(data, dtype=dtype) if data
                                   else torch.empty(0, dtype=dtype))
        return self._storages[key]


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    try:
        with zipfile.ZipFile(path) as z:
            # Every entry sits under one folder named after the archive; data.pkl in it
            # holds the module tree.
            root = z.namelist()[0].split("/", 1)[0]
            data_pkl = f"{root}/data.pkl"
            if data_pkl not in z.namelist():
                raise ClipError(f"{path.name}: TorchScript archive without {data_pkl}")
            with z.open(data_pkl) as f:
                obj = _ScriptUnpickler(f, z, root, path.name).load()
    except (*PICKLE_READ_ERRORS, zipfile.BadZipFile) as e:
        raise ClipError(f"{path.name} is not a readable TorchScript archive "
                        f"({short_reason(e)})") from e
    if not isinstance(obj, _ScriptRecord):
        raise ClipError(f"{path.name}: the TorchScript archive does not hold a module")
    return _collect_tensors(obj)


def _collect_tensors(record: _ScriptRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, value in record.__dict__.get("attrs", {}).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptRecord):
            out.update(_collect_tensors(value, f"{prefix}{name}."))
    return out


OPENAI_CONSTANTS = ("input_resolution", "context_length", "vocab_size")


def is_stored_constant(name: str) -> bool:
    """Whether `name` is a constant that weights files keep beside the weights, which are
    never loaded: attention masks (TorchScript files store them as attributes; the text
    tower's holds -inf above its diagonal) and the three numbers of OpenAI's files (its own
    loader deletes them too)."""
    return name.rsplit(".", 1)[-1] == "attn_mask" or name in OPENAI_CONSTANTS


def _fit_state(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str,
               arch: str | None = None) -> dict[str, torch.Tensor]:
    """`state` made loadable into `model` (architecture `arch`, when it has a name)
    strictly, or a ClipError naming what differs."""
    expected = model.state_dict()
    state = dict(state)
    for key in [k for k in state if k not in expected and is_stored_constant(k)]:
        del state[key]
    # open_clip stores logit_scale (and a SigLIP's logit_bias) as a scalar or a 1-element
    # vector, depending on the model and version; its own loader reshapes both.
    for key in ("logit_scale", "logit_bias"):
        if key in state and key in expected and state[key].numel() == expected[key].numel():
            state[key] = state[key].reshape(expected[key].shape)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(expected) & set(state)
                    if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} with other shapes (e.g. {k}: file "
                         f"{tuple(state[k].shape)}, model {tuple(expected[k].shape)})")
        named = f" {arch}" if arch else ""
        raise ClipError(f"{what}: the weights do not fit the architecture{named}: "
                        f"{'; '.join(parts)}. Is the file for another architecture?")
    return state


def _may_fit(cfg: Mapping[str, Any], names: set[str], dims: set[int]) -> bool:
    """A quick look before an architecture is built: its widths appear among the weights'
    dimensions, and its towers are of the weights' kinds (a timm image tower keeps its
    weights under 'visual.trunk.', a custom text tower under 'text.')."""
    vision, text = cfg.get("vision_cfg") or {}, cfg.get("text_cfg") or {}
    widths = {cfg.get("embed_dim"), vision.get("width"), text.get("width")}
    if not {w for w in widths if isinstance(w, int)} <= dims:
        return False
    timm_vision = any(n.startswith("visual.trunk.") for n in names)
    custom_text = any(n.startswith("text.") for n in names)
    return ("timm_model_name" in vision) == timm_vision and \
        bool(cfg.get("custom_text")) == custom_text


def _meta_model(arch: str) -> torch.nn.Module:
    """open_clip's `arch` built on the meta device: names and shapes, no memory."""
    with _without_random_init_warning(), torch.device("meta"):
        return open_clip.create_model(arch, pretrained=None, pretrained_image=False,
                                      pretrained_text=False, device="meta")


def _fits_architecture(arch: str, state: Mapping[str, torch.Tensor]) -> bool:
    """Whether `state` loads strictly into open_clip's `arch`."""
    try:
        check_architecture(arch, state, arch)
    except ClipError:
        return False
    return True


def matching_architectures(state: Mapping[str, torch.Tensor],
                           stopped: Callable[[], bool] | None = None) -> list[str]:
    """The open_clip architectures whose parameter names and shapes `state` fits exactly,
    plainest name first ('ViT-B-32' before 'ViT-B-32-256'). Building each candidate takes
    up to a second (timm towers): `stopped()`, asked before each, ends the search with a
    ClipError.

    Weights do not tell their activation: an architecture's '-quickgelu' twin has the
    same shapes and is left out. OpenAI's TorchScript files are loaded with QuickGELU
    anyway (`from_checkpoint`); a state dict of OpenAI-trained weights needs the twin's
    name said. Hugging Face text towers and CoCa models are not tried: the first need
    their base models from the network, the second are not CLIPs this program uses."""
    names, dims = set(state), {d for t in state.values() for d in t.shape}
    found = []
    for arch in open_clip.list_models():
        cfg = open_clip.get_model_config(arch) or {}
        if (arch.endswith("-quickgelu") or "hf_model_name" in (cfg.get("text_cfg") or {})
                or "multimodal_cfg" in cfg or not _may_fit(cfg, names, dims)):
            continue
        if stopped is not None and stopped():
            raise ClipError("the search for the CLIP architecture was stopped")
        if _fits_architecture(arch, state):
            found.append(arch)
    return sorted(found, key=lambda a: (len(a), a))


def check_architecture(arch: str, state: Mapping[str, torch.Tensor], what: str) -> str:
    """open_clip's name for `arch` ('ViT-B/32' is 'ViT-B-32') when `state` fits it exactly;
    else a ClipError saying what differs."""
    arch = _clean_arch(arch)
    built = _open_clip_name(arch)[0]  # the activation does not change names or shapes
    if open_clip.get_model_config(built) is None:
        raise _unknown_architecture(arch)
    try:
        model = _meta_model(built)
    except (RuntimeError, OSError, ValueError, TypeError, KeyError, AssertionError,
            AttributeError, ImportError) as e:  # ImportError: a tower's package
        raise ClipError(f"could not build CLIP architecture '{arch}' ({e})") from e
    _fit_state(model, state, what, arch)
    return arch


def describes_itself(path: str | Path) -> bool:
    """Whether `path` is a CLIP file saved by this program (its config is inside)."""
    try:
        return _saved_header(Path(path)) is not None
    except ClipError:
        return False


# --------------------------------------------------------------------------- model building


def _split_config(config: Mapping[str, Any]) -> tuple[dict, dict]:
    """(model_cfg, preprocess_cfg) from either a bare model config or open_clip's
    `open_clip_config.json` layout {'model_cfg': ..., 'preprocess_cfg': ...}."""
    if "model_cfg" in config:
        return copy.deepcopy(dict(config["model_cfg"])), dict(config.get("preprocess_cfg", {}))
    return copy.deepcopy(dict(config)), {}


def _build_from_config(model_cfg: dict) -> torch.nn.Module:
    """An open_clip CLIP from a config dict, without touching the network."""
    for key in ("embed_dim", "vision_cfg", "text_cfg"):
        if key not in model_cfg:
            raise ClipError(f"CLIP config lacks '{key}' (needs embed_dim, vision_cfg, text_cfg)")
    if not (isinstance(model_cfg["vision_cfg"], dict) and isinstance(model_cfg["text_cfg"], dict)):
        raise ClipError("invalid CLIP config: vision_cfg and text_cfg must be objects")
    if "timm_model_name" in model_cfg["vision_cfg"] or "hf_model_name" in model_cfg["text_cfg"]:
        raise ClipError("CLIP configs with timm or Hugging Face towers need their base models "
                        "from the network; use an open_clip architecture name instead")
    if "multimodal_cfg" in model_cfg:
        raise ClipError("CoCa configs (multimodal_cfg) are not supported")
    cfg = dict(model_cfg)
    cls = open_clip.CustomTextCLIP if cfg.pop("custom_text", False) else open_clip.CLIP
    try:
        return cls(**cfg)
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError, AttributeError) as e:
        raise ClipError(f"invalid CLIP config ({type(e).__name__}: {e})") from e


class _RandomInitFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


@contextlib.contextmanager
def _without_random_init_warning() -> Iterator[None]:
    """open_clip warns that a model built without a tag is random; ours get their weights
    right after, so the warning would only mislead."""
    root, f = logging.getLogger(), _RandomInitFilter()
    root.addFilter(f)
    try:
        yield
    finally:
        root.removeFilter(f)


def _build_from_arch(arch: str, quick_gelu: bool, preprocess: Mapping[str, Any] | None
                     ) -> tuple[torch.nn.Module, dict]:
    """An open_clip built-in architecture with random weights, and its final config."""
    arch, forced = _open_clip_name(_clean_arch(arch))
    quick_gelu = quick_gelu or forced
    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise _unknown_architecture(arch)
    if quick_gelu:
        cfg["quick_gelu"] = True
    try:
        with _without_random_init_warning():
            model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu,
                                           pretrained_image=False, pretrained_text=False,
                                           force_preprocess_cfg=dict(preprocess or {}))
    except (RuntimeError, OSError, ValueError, TypeError) as e:
        raise ClipError(f"could not build CLIP architecture '{arch}' ({e})") from e
    return model, cfg


def _clean_arch(arch: str) -> str:
    """OpenAI spells architectures 'ViT-B/32'; open_clip 'ViT-B-32'."""
    return arch.strip().replace("/", "-")


def _unknown_architecture(arch: str) -> ClipError:
    known = ", ".join(open_clip.list_models()[:12])
    return ClipError(f"unknown CLIP architecture '{arch}' (open_clip knows e.g. {known}, ...)")


QUICK_GELU = "-quickgelu"


def _open_clip_name(arch: str) -> tuple[str, bool]:
    """(the architecture open_clip builds, whether QuickGELU is forced on it): 'X-quickgelu'
    is X with QuickGELU where open_clip lists no such twin (it lists a few, such as
    ViT-B-32-quickgelu, whose weights have the same shapes)."""
    if arch.endswith(QUICK_GELU) and open_clip.get_model_config(arch) is None:
        base = arch[:-len(QUICK_GELU)]
        if open_clip.get_model_config(base) is not None:
            return base, True
    return arch, False


def _pretrained_cfg(arch: str, tag: str) -> dict:
    arch = _clean_arch(arch)
    pcfg = open_clip.get_pretrained_cfg(arch, tag)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if not tags and open_clip.get_model_config(_open_clip_name(arch)[0]) is None:
            # a misspelt architecture, not a tag: "no tag 'openai' (tags: none)" blamed it
            raise _unknown_architecture(arch)
        known = ", ".join(tags) if tags else "none"
        raise ClipError(f"open_clip has no pretrained tag '{tag}' for '{arch}' (tags: {known})")
    return dict(pcfg)


_IMAGE_KEYS = ("mean", "std", "interpolation", "resize_mode")


def _tags_preprocess(arch: str) -> dict:
    """How images enter `arch` where every open_clip tag of it agrees (SigLIP's and PE's 0.5
    mean/std, MobileCLIP's 0/1 and bilinear), for its weights read from a file; else {}:
    open_clip's defaults, OpenAI's, which open_clip itself gives any file."""
    default = _default_preprocess()
    seen = set()
    for tag in open_clip.list_pretrained_tags_by_model(arch):
        pcfg = open_clip.get_pretrained_cfg(arch, tag)
        seen.add(json.dumps([default[k] if pcfg.get(k) is None else pcfg[k]
                             for k in _IMAGE_KEYS]))
    return dict(zip(_IMAGE_KEYS, json.loads(seen.pop()), strict=True)) if len(seen) == 1 else {}


def _cached_weights(pcfg: Mapping[str, Any], cache_dir: str | None) -> str | None:
    """The local file open_clip would load for a tag, if it is already on disk. Looks in the
    Hugging Face cache and open_clip's URL cache without any network access."""
    if pcfg.get("file"):
        return str(pcfg["file"]) if Path(pcfg["file"]).is_file() else None
    hub = pcfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        # open_clip's convention: 'org/repo/' means the default file, 'org/repo/f.bin' one file.
        repo_id, filename = posixpath.split(hub)
        candidates = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for name in candidates:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
    url = pcfg.get("url", "")
    if url:
        local = Path(cache_dir or Path.home() / ".cache" / "clip") / Path(url).name
        if local.is_file():
            return str(local)
    return None


def _import_advice(arch: str, pcfg: Mapping[str, Any]) -> str:
    """How to import a tag's weights file. A QuickGELU tag's (OpenAI's) weights have the
    shapes of the plain architecture, which an import finds and loads with GELU: other
    embeddings, and nothing says so. Its '-quickgelu' name must be given."""
    if pcfg.get("quick_gelu") and not arch.endswith(QUICK_GELU):
        arch += QUICK_GELU
        return (f"import it as a local CLIP checkpoint for {arch} (atelier models import "
                f"FILE --clip-arch {arch})")
    return f"import it as a local CLIP checkpoint for {arch}"


def _weights_source(pcfg: Mapping[str, Any]) -> str:
    if pcfg.get("hf_hub"):
        return f"Hugging Face repository {pcfg['hf_hub'].rstrip('/')}"
    return pcfg.get("url") or "its download location"


def missing_tokenizer_package(arch: str) -> str | None:
    """The Python package the tokenizer of `arch` needs and this install lacks
    (transformers, for SigLIP's and other Hugging Face tokenizers), else None. Asked
    before weights of `arch` are imported: without it they load, but no prompt can be
    read, which was told only when the CLIP was first used."""
    name = _open_clip_name(_clean_arch(arch))[0]
    text_cfg = (open_clip.get_model_config(name) or {}).get("text_cfg") or {}
    # open_clip's rule: a named Hugging Face tokenizer, or a SigLIP by its name
    if not (text_cfg.get("hf_tokenizer_name") or "siglip" in name.lower()):
        return None
    return None if importlib.util.find_spec("transformers") else "transformers"


def _tokenizer_for_arch(arch: str) -> Tokenizer:
    try:
        return open_clip.get_tokenizer(arch)
    except (RuntimeError, OSError, ValueError, ImportError) as e:
        raise ClipError(f"could not create the tokenizer of '{arch}' ({e})") from e


def _tokenizer_for_config(model_cfg: Mapping[str, Any]) -> Tokenizer:
    text_cfg = model_cfg.get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name"):
        raise ClipError("CLIP configs with a Hugging Face tokenizer are not supported")
    return open_clip.SimpleTokenizer(context_length=int(text_cfg.get("context_length", 77)))


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# --------------------------------------------------------------------------- the wrapper


class ClipModel:
    """A frozen open_clip model with a differentiable image path and cached text ensembles."""

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, name: str,
                 model_cfg: Mapping[str, Any], text_cache_size: int = TEXT_CACHE_SIZE):
        self._model = _freeze(model)
        self._tokenizer = tokenizer
        self._name = name
        self._model_cfg = copy.deepcopy(dict(model_cfg))
        self._preprocess = ImagePreprocess.from_dict(open_clip.get_model_preprocess_cfg(model))
        self._hash: str | None = None
        self._text_cache: OrderedDict[tuple[str, tuple[str, ...]], torch.Tensor] = OrderedDict()
        self._cut_cache: OrderedDict[tuple[str, tuple[str, ...]], bool] = OrderedDict()
        self._text_cache_size = text_cache_size
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- creation

    @classmethod
    def from_pretrained(cls, arch: str, tag: str, cache_dir: str | Path | None = None,
                        device: str | torch.device = "cpu", download: bool = False
                        ) -> ClipModel:
        """An open_clip (architecture, pretrained tag), e.g. ('ViT-B-32', 'openai').

        Weights already in the cache are used as they are. Nothing is downloaded unless
        `download` is true (the user asked for it); then open_clip fetches them. Tags trained
        with QuickGELU (OpenAI's) get QuickGELU whatever the architecture name says."""
        arch = _clean_arch(arch)
        pcfg = _pretrained_cfg(arch, tag)
        cache = str(cache_dir) if cache_dir is not None else None
        path = _cached_weights(pcfg, cache)
        if path is None:  # downloaded through the model zoo (Models dialog, models download)
            from .zoo import installed_clip_weights

            zoo_file = installed_clip_weights(arch, tag)
            path = str(zoo_file) if zoo_file is not None else None
        if path is None and download:
            path = _download(pcfg, arch, tag, cache)
        if path is None:
            from .zoo import clip_entry_names

            entry = next(iter(clip_entry_names(arch, tag)), None)
            zoo_way = (f"`atelier models download {entry}`" if entry
                       else "`atelier models download` for the zoo's CLIP models")
            raise ClipError(
                f"The weights of CLIP {arch} '{tag}' are not available locally "
                f"(looked in {cache or 'the default caches'} and the model zoo). Download "
                f"them ({zoo_way}, or from {_weights_source(pcfg)}) or, without a network, "
                f"copy the weights file to this machine and {_import_advice(arch, pcfg)}.")
        quick_gelu = bool(pcfg.get("quick_gelu", False))
        model, cfg = _build_from_arch(arch, quick_gelu, pcfg)
        _load_into(model, read_weights(path), f"CLIP {arch} '{tag}' ({Path(path).name})")
        clip = cls(model, _tokenizer_for_arch(arch), f"{arch}/{tag}", cfg)
        return clip.to(device)

    @classmethod
    def from_checkpoint(cls, arch: str | None, path: str | Path,
                        device: str | torch.device = "cpu", quick_gelu: bool | None = None
                        ) -> ClipModel:
        """A local weights file for an open_clip architecture: safetensors, a torch state
        dict (.pt/.bin/.pth) or OpenAI's TorchScript file. A file saved by `save` carries its
        own config, and `arch` may be None for it.

        `quick_gelu`: None keeps the architecture's activation, except for OpenAI's files
        (always QuickGELU): TorchScript archives, and state dicts that keep OpenAI's
        constants (`input_resolution`...); pass True for other files of OpenAI-trained
        weights.
        Images are preprocessed as all the architecture's open_clip tags agree, else with
        open_clip's defaults (OpenAI's mean/std)."""
        path = Path(path)
        if not path.is_file():
            raise ClipError(f"CLIP weights file not found: {path}")
        if _sniff(path) == "safetensors" and _saved_header(path) is not None:
            return cls.load(path, device=device)
        if arch is None:
            read_weights(path)  # a file that is no weights file says so first
            raise ClipError(f"{path.name}: say which open_clip architecture these weights "
                            "are for (e.g. ViT-B-32)")
        arch = _clean_arch(arch)
        base = _open_clip_name(arch)[0]  # the activation changes neither tokenizer nor images
        if open_clip.get_model_config(base) is None:  # said before the file is read
            raise _unknown_architecture(arch)
        state = read_weights(path)
        if quick_gelu is None:
            # OpenAI's files: its TorchScript archives, and their state dicts saved as they
            # are, which keep OpenAI's three constants
            quick_gelu = _sniff(path) == "torchscript" or any(
                k in state for k in OPENAI_CONSTANTS)
        # The file does not say how its images were preprocessed: as the architecture's
        # pretrained weights were, when they agree (with OpenAI's mean/std a SigLIP saw other
        # inputs than it was trained on).
        model, cfg = _build_from_arch(arch, quick_gelu, _tags_preprocess(base))
        _load_into(model, state, path.name, arch)
        clip = cls(model, _tokenizer_for_arch(base), f"{arch}:{path.name}", cfg)
        return clip.to(device)

    @classmethod
    def from_config(cls, config: Mapping[str, Any],
                    state_dict: Mapping[str, torch.Tensor] | None = None,
                    device: str | torch.device = "cpu", name: str = "custom-clip",
                    tokenizer: Tokenizer | None = None) -> ClipModel:
        """A custom architecture (our demo CLIP, test models): an open_clip config dict with
        embed_dim, vision_cfg and text_cfg (optionally quick_gelu, custom_text), or the
        {'model_cfg', 'preprocess_cfg'} layout. Random weights unless `state_dict` is given.
        The tokenizer defaults to open_clip's with the config's context length."""
        model_cfg, preprocess = _split_config(config)
        if state_dict is not None:
            # names and shapes first, on a model that holds no memory: a small file cannot
            # claim a huge architecture
            with torch.device("meta"):
                _fit_state(_build_from_config(copy.deepcopy(model_cfg)), state_dict,
                           f"weights for {name}")
        model = _build_from_config(model_cfg)
        if state_dict is not None:
            _load_into(model, state_dict, f"weights for {name}")
        tok = tokenizer if tokenizer is not None else _tokenizer_for_config(model_cfg)
        try:
            open_clip.set_model_preprocess_cfg(model, _merged_preprocess(model, preprocess))
            return cls(model, tok, name, model_cfg).to(device)
        except (TypeError, ValueError, KeyError, IndexError) as e:  # a damaged file's values
            raise ClipError(f"invalid CLIP preprocessing for {name} ({e})") from e

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> ClipModel:
        """A file written by `save`: safetensors with the config in its metadata."""
        path = Path(path)
        header = _saved_header(path)
        if header is None:
            raise ClipError(f"{path.name} is not a CLIP file saved by this program")
        config = {"model_cfg": header["config"], "preprocess_cfg": header.get("preprocess", {})}
        return cls.from_config(config, _read_safetensors(path), device=device,
                               name=header.get("name") or path.stem)

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Weights as safetensors, with the config and preprocessing in the metadata, written
        atomically. Only models built from a config or an open_clip architecture whose
        config is plain data round-trip through `load`. half stores floats as fp16 (they
        are loaded back into the fp32 model)."""
        meta = {"format": FORMAT_NAME, "version": str(FORMAT_VERSION), "name": self._name,
                "config": json.dumps(self._model_cfg, sort_keys=True),
                "preprocess": json.dumps(self._preprocess.to_dict(), sort_keys=True)}
        state = {k: v.detach().cpu().contiguous() for k, v in self._model.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        path = Path(path)
        with atomic_path(path) as tmp:
            save_tensors(state, tmp, metadata=meta)
        return path

    # ----------------------------------------------------------------- identity

    @property
    def model(self) -> torch.nn.Module:
        """The open_clip module (frozen, eval mode)."""
        return self._model

    @property
    def name(self) -> str:
        return self._name

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer (open_clip's; discovery reads its vocabulary)."""
        return self._tokenizer

    @property
    def config(self) -> dict:
        """A copy of the open_clip model config."""
        return copy.deepcopy(self._model_cfg)

    @property
    def preprocess(self) -> ImagePreprocess:
        return self._preprocess

    @property
    def image_size(self) -> tuple[int, int]:
        return self._preprocess.size

    @property
    def embed_dim(self) -> int:
        return int(self._model_cfg["embed_dim"])

    @property
    def context_length(self) -> int:
        return int(getattr(self._tokenizer, "context_length", self._model.context_length))

    @property
    def device(self) -> torch.device:
        return next(self._model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._model.parameters()).dtype

    @property
    def content_hash(self) -> str:
        """sha256 over the weights (sorted names, fp32 bytes), the config and preprocessing:
        the same weights loaded from any file format give the same hash, and the same
        weights with another activation or preprocessing do not."""
        if self._hash is None:
            extra = json.dumps({"config": self._model_cfg,
                                "preprocess": self._preprocess.to_dict()},
                               sort_keys=True, default=str)
            self._hash = state_dict_hash(self._model.state_dict(), extra=extra)
        return self._hash

    def to(self, device: str | torch.device) -> ClipModel:
        """Move the model; cached text embeddings are dropped when the device changes."""
        device = torch.device(device)
        if device != self.device:
            self._model.to(device)
            self.clear_text_cache()
        return self

    def __repr__(self) -> str:
        return f"ClipModel({self._name!r}, image_size={self.image_size}, device={self.device})"

    # ----------------------------------------------------------------- images

    def preprocess_images(self, x: torch.Tensor) -> torch.Tensor:
        """Generator output (B, 3, H, W) in [-1, 1] to the tensor the vision tower takes:
        [0, 1], resized and cropped as the model's own preprocessing does, mean/std
        normalised. Differentiable. Values are not clamped, so gradients also reach
        pixels the generator pushed outside [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ClipError(f"images must be (batch, 3, height, width), got {tuple(x.shape)}")
        x = x.to(device=self.device, dtype=self.dtype)
        x = _resize_crop((x + 1) * 0.5, self._preprocess)
        mean = torch.tensor(self._preprocess.mean, device=x.device, dtype=x.dtype)
        std = torch.tensor(self._preprocess.std, device=x.device, dtype=x.dtype)
        return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)

    def encode_images(self, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, embed_dim) image embeddings of generator output in [-1, 1]; unit vectors
        unless `normalize` is False. Gradients flow back to `x`."""
        return self._model.encode_image(self.preprocess_images(x), normalize=normalize)

    # ----------------------------------------------------------------- text

    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        """Token ids (N, context_length); prompts longer than the context are cut off."""
        return self._tokenizer(list(prompts)).to(self.device)

    def encode_text(self, prompts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        """(N, embed_dim) embeddings of the prompts as written (no templates)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if len(prompts) == 0:
            raise ClipError("no prompts to encode")
        for p in prompts:
            _check_prompt(p)
        return self._model.encode_text(self.tokenize(prompts), normalize=normalize)

    def readable_part(self, text: str) -> str:
        """As much of `text` as CLIP can read, or a little more: every word is one token
        at least, so words past twice the context never count. A pasted page (400,000
        characters) was tokenized whole in each of 79 templates: most of a minute."""
        if len(text) <= LONG_PROMPT_CHARS:
            return text  # a prompt as typed: unchanged, as its cache key
        text = " ".join(text.split()[:2 * self.context_length])
        # Text without spaces (Chinese, Japanese, a pasted link) is one word whose byte-
        # pair merging costs the square of its length: 60,000 characters held the window
        # for 9.5 s. Cut it where it is sure to give twice the tokens CLIP reads; merges
        # reach no further than a few characters, so what CLIP reads is the same.
        if not isinstance(self._tokenizer, open_clip.SimpleTokenizer):
            return text  # the others are fast (compiled)
        limit = 4 * self.context_length
        while limit < len(text):
            if len(self._tokenizer.encode(text[:limit])) >= 2 * self.context_length:
                return text[:limit]
            limit *= 4
        return text

    def prompt_is_cut(self, text: str, templates: Sequence[str] | None = None) -> bool:
        """Whether the prompt, in some template (default: the ImageNet ones), is longer than
        this model's context, so that its end is cut off before CLIP reads it. Cached per
        (text, templates): the window asks on every frame."""
        if not isinstance(self._tokenizer, open_clip.SimpleTokenizer):
            return False  # other tokenizers pad with their own ids: no way to tell here
        text = self.readable_part(text)
        templates = IMAGENET_TEMPLATES if templates is None else tuple(templates)
        key = (text, templates)
        with self._lock:
            hit = self._cut_cache.get(key)
        if hit is not None:
            return hit
        # The words between the first and the last are read alike in every template (only
        # those two can run into a template's own characters): when they alone, with the
        # start and end tokens, are more than CLIP reads, every template is cut. The 79
        # templates of a pasted 2,000-character prompt held the window for 60 ms per paste.
        # Split as the tokenizer reads it: its clean-up drops control characters that
        # str.split() takes for spaces (a vertical tab, PowerPoint's line break), joining
        # the words around them. (Cleaning twice only ever reads fewer tokens.)
        middle = " ".join(self._tokenizer.clean_fn(text).split()[1:-1])
        if len(self._tokenizer.encode(middle)) + 2 > self.context_length:
            cut = True
        else:
            # One place more than CLIP reads: a prompt that just fits ends in padding (0)
            # there, and was called cut ("its end is left out") although CLIP reads all of it.
            tokens = self._tokenizer([t.replace("{}", text) for t in templates],
                                     context_length=self.context_length + 1)
            cut = bool((tokens[:, -1] != 0).any())
        self._remember(self._cut_cache, key, cut)
        return cut

    def read_words(self, text: str) -> list[str] | None:
        """The pieces this model's tokenizer reads in `text` before splitting them into
        tokens: after its own clean-up (HTML entities decoded, control characters dropped,
        lower case), words, digits and runs of symbols ('&lt;x&gt;' reads '<', 'x', '>').
        None for tokenizers that do not say."""
        tokenizer = self._tokenizer
        if not isinstance(tokenizer, open_clip.SimpleTokenizer):
            return None
        return tokenizer.pat.findall(tokenizer.clean_fn(text))

    def _remember(self, cache: OrderedDict, key: tuple, value) -> None:
        """Keep a per-prompt result, dropping the least recently used past the size."""
        with self._lock:
            cache[key] = value
            while len(cache) > self._text_cache_size:
                cache.popitem(last=False)

    def text_embedding(self, text: str, templates: Sequence[str] | None = None
                       ) -> torch.Tensor:
        """(embed_dim,) unit vector for `text`: each template (default: the 79 ImageNet
        ones) filled with the text, encoded and normalised, the average normalised again.
        Cached per (text, templates); the returned tensor is shared with the cache, so do
        not modify it in place."""
        text = self.readable_part(_check_prompt(text))
        templates = IMAGENET_TEMPLATES if templates is None else tuple(templates)
        _check_templates(templates)
        key = (text, templates)
        with self._lock:
            hit = self._text_cache.get(key)
            if hit is not None:
                self._text_cache.move_to_end(key)
                return hit
        with torch.no_grad():
            embeddings = self.encode_text([t.replace("{}", text) for t in templates],
                                          normalize=True)
            mean = embeddings.mean(dim=0)
            result = mean / mean.norm()
        self._remember(self._text_cache, key, result)
        return result

    def clear_text_cache(self) -> None:
        with self._lock:
            self._text_cache.clear()


LONG_PROMPT_CHARS = 2000  # longer prompts are cut to what CLIP can read (readable_part)


def _check_prompt(text: object) -> str:
    if not isinstance(text, str):
        raise ClipError(f"a prompt must be text, got {type(text).__name__}")
    if not text.strip():
        raise ClipError("the prompt is empty: type what the image should show")
    return text.strip()


def _check_templates(templates: tuple[str, ...]) -> None:
    if not templates:
        raise ClipError("no prompt templates given")
    for t in templates:
        if "{}" not in t:
            raise ClipError(f"prompt template {t!r} has no '{{}}' for the text")


def _load_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str,
               arch: str | None = None) -> None:
    state = _fit_state(model, state, what, arch)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ClipError(f"{what}: the weights could not be loaded ({e})") from e


def _download_url(pcfg: Mapping[str, Any]) -> urllib.parse.SplitResult:
    if pcfg.get("hf_hub"):
        return urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return urllib.parse.urlsplit(pcfg.get("url") or "")


def _through_proxy(scheme: str, host: str) -> bool:
    """Whether a request for `host` goes through a proxy: one for its scheme (or all), the
    host not exempted by no_proxy. A no_proxy alone, or an http_proxy for an https
    download, is no proxy: the name is looked up here, and offline the client retried it
    for a minute."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) \
        and not urllib.request.proxy_bypass(host)


def _look_up_host(pcfg: Mapping[str, Any]) -> None:
    """Fail at once where the download's host name cannot be looked up (offline): the
    Hugging Face client retries that with back-off for about a minute first. Behind a proxy
    the proxy looks names up, so nothing is checked here."""
    url = _download_url(pcfg)
    host = url.hostname
    if not host or _through_proxy(url.scheme, host):
        return
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror as e:
        raise OSError(f"the host name {host} could not be looked up ({e.strerror}); "
                      "this machine seems to be offline") from e


def _download(pcfg: Mapping[str, Any], arch: str, tag: str, cache_dir: str | None) -> str:
    """open_clip's download (Hugging Face hub or URL, with its checksum checks)."""
    try:
        _look_up_host(pcfg)
        path = open_clip.download_pretrained(dict(pcfg), cache_dir=cache_dir)
    except (RuntimeError, OSError, ValueError, ImportError) as e:
        raise ClipError(
            f"The weights of CLIP {arch} '{tag}' are not available locally and could not be "
            f"downloaded from {_weights_source(pcfg)} ({type(e).__name__}: {e}). Without a "
            f"network, copy the weights file to this machine and {_import_advice(arch, pcfg)}."
        ) from e
    if not path:
        raise ClipError(f"open_clip has no download location for CLIP {arch} '{tag}'")
    return str(path)


def _saved_header(path: Path) -> dict | None:
    """The metadata of a file written by `ClipModel.save`, or None for any other file."""
    from safetensors import SafetensorError, safe_open

    try:
        with readable_name(path) as name, safe_open(name, framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    if meta.get("format") != FORMAT_NAME:
        return None
    if meta.get("version") != str(FORMAT_VERSION):
        raise ClipError(f"{path.name} was saved by another version of this program "
                        f"(CLIP file format {meta.get('version')})")
    try:
        header = {"name": meta.get("name", ""), "config": json.loads(meta["config"]),
                  "preprocess": json.loads(meta.get("preprocess", "{}"))}
    except (KeyError, json.JSONDecodeError) as e:
        raise ClipError(f"{path.name}: damaged CLIP metadata ({e})") from e
    if not (isinstance(header["config"], dict) and isinstance(header["preprocess"], dict)):
        raise ClipError(f"{path.name}: damaged CLIP metadata (config and preprocessing must "
                        "be objects)")
    return header
