"""Load any supported StyleGAN2 checkpoint into our one Generator class, and save ours.

Formats:
- rosinality `.pt` (`{'g_ema': state_dict, 'latent_avg': w}`), as shipped with StyleCLIP,
  NADA outputs (`g_ema`, `g_optim`), rosinality training checkpoints (with `args`), and
  e4e/ReStyle checkpoints (`state_dict` with `decoder.*` keys);
- NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 pickles, through the restricted
  unpickler in `nvidia_pickle` (never imports or runs the pickle's code);
- our own safetensors file with the JSON config in its metadata (what the app writes).

Every path reads tensors only (`torch.load(weights_only=True)`), loads strictly, infers the
architecture from the tensors' shapes and reports problems as CheckpointError.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import (
    CheckpointError,
    IncompatibleModelError,
    UnsafePickleError,
    is_out_of_memory,
    short_reason,
)
from .generator import Generator, GeneratorConfig, state_shapes
from .hashing import state_dict_hash
from .paths import atomic_path
from .tensor_files import readable_name, save_tensors

FORMAT_NAME = "latent-atelier-generator"
FORMAT_VERSION = 1
WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

log = logging.getLogger(__name__)


@dataclass
class LoadedGenerator:
    generator: Generator
    source_format: str  # "rosinality" | "nvidia" | "atelier"
    path: Path
    content_hash: str
    metadata: dict


# --------------------------------------------------------------------------- sniffing


def sniff_format(path: Path) -> str:
    """'safetensors', 'torch-zip', 'pickle' or 'unknown', from the first bytes only."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) == 0:
        raise CheckpointError(f"{path.name} is empty (0 bytes): not a checkpoint")
    if zipfile.is_zipfile(path):
        return "torch-zip"
    if head[:4] == b"PK\x03\x04":  # a zip without its end record: cut short
        raise CheckpointError(f"{path.name} is a truncated or corrupt PyTorch (zip) file; "
                              "download or copy it again")
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


class DamagedFileError(CheckpointError):
    """A zip checkpoint PyTorch cannot have written as it is: its stored checksums do not
    match its contents (the bytes changed after it was written: a bad copy or download),
    or a compressed record would unpack to more than PyTorch ever compresses; nothing
    else will read it correctly."""


def damaged_zip_member(path: Path) -> str | None:
    """The first member of the zip file `path` whose CRC32 does not match its bytes (or
    whose header is broken), else None. PyTorch's own reader does not check them, so a
    flipped bit inside a tensor would otherwise load silently. Reads the whole file once
    (about 0.1 s for a 1024px generator's 127 MB, from the page cache). A zip that cannot
    be opened or read at all gives None too: its loader then says why."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError):
        return None


def damaged_message(name: str) -> str:
    return (f"{name} is damaged (a checksum inside the file does not match): download or "
            "copy it again")


# What a zip's compressed records may unpack to, in all. PyTorch stores tensor data as it
# is and compresses only a TorchScript archive's code (0.2 MB for a small CLIP); torch.load
# unpacks a compressed record whole into memory before any size can be checked: 2 MB of
# deflated zeros became 2.5 GB (helper-115).
MAX_UNPACKED_BYTES = 64 * 2**20


def unpacked_bytes(path: Path) -> int:
    """What the compressed records of the zip file `path` say they unpack to, in all (0
    for a zip that cannot be read: its loader then says why). Reads the directory only."""
    try:
        with zipfile.ZipFile(path) as z:
            return sum(m.file_size for m in z.infolist()
                       if m.compress_type != zipfile.ZIP_STORED)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError):
        return 0


def foreign_zip_problem(path: Path) -> str | None:
    """Why the zip file `path` is not one torch.save (or TorchScript) wrote, from its
    directory alone: those keep every record under one folder, the pickle in
    <folder>/data.pkl. A zipped checkpoint or a data set was called truncated or damaged,
    or refused as too large to unpack, and copying it again changed nothing."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError,
            NotImplementedError):
        return None  # its loader says why
    if any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
        return None
    shown = ", ".join(f"{n!r:.60}" for n in names[:3]) + (", ..." if len(names) > 3 else "")
    return (f"{path.name} is a zip archive of other files, not a PyTorch checkpoint (it holds "
            f"{shown or 'nothing'}); if a checkpoint is inside, unpack it and open that file")


def torch_zip_problem(path: Path) -> str | None:
    """Why the zip file `path` cannot be a PyTorch file read as it is (not laid out as one;
    compressed records too large: looking reads no data; then a checksum that fails), else
    None."""
    if (foreign := foreign_zip_problem(path)) is not None:
        return foreign
    unpacked = unpacked_bytes(path)
    if unpacked > MAX_UNPACKED_BYTES:
        return (f"{path.name} holds compressed records that would unpack to "
                f"{unpacked / 2**20:,.0f} MB; PyTorch compresses only a model's code, so it "
                "is refused: unpacking it could fill the memory")
    if damaged_zip_member(path) is not None:
        return damaged_message(path.name)
    return None


def is_torchscript_zip(path: Path) -> bool:
    """Whether the zip file `path` is a TorchScript archive (torch.jit.save: a module and
    its code, as OpenAI's CLIP files are) rather than a torch.save file."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def check_torch_zip(path: Path) -> None:
    """DamagedFileError when the zip file `path` is not a PyTorch file as it was written
    (torch_zip_problem)."""
    problem = torch_zip_problem(path)
    if problem is not None:
        raise DamagedFileError(problem)


# torch's restricted unpickler names a global it refuses in these words (torch 2.x,
# _weights_only_unpickler.py): "Unsupported global: GLOBAL posix.system was not an allowed
# global by default", "Trying to load unsupported GLOBAL x.y whose module x is blocked",
# "``torch.nested`` ... must be imported to load ...". Since torch 2.6 every refusal also
# carries its advice to retry with weights_only=False, damaged bytes included (garbage
# reads as "Unsupported operand 206"): only these reasons mean the file asks for objects.
_REFUSED_GLOBAL = re.compile(
    r"GLOBAL ([A-Za-z_][\w.]*) (?:was not an allowed global|whose module \S+ is blocked)")
_NEEDS_IMPORT = re.compile(r"``(torch[\w.]*)`` must be imported to load")
_TORCH_ADVICE = ("weights_only", "weights only", "weightsunpickler", "documentation",
                 "safe_globals", "please file an issue")


def refused_global(e: BaseException) -> str | None:
    """The non-tensor object a weights_only torch.load refused (e.g. 'posix.system'), when
    that is why it failed; None when it failed for another reason (a damaged file)."""
    text = str(e)
    found = _REFUSED_GLOBAL.search(text) or _NEEDS_IMPORT.search(text)
    return found.group(1) if found else None


def unpickling_reason(e: BaseException) -> str:
    """torch's own reason for a failed load, without its advice to switch the safety off
    (no line that mentions weights_only), cut short."""
    return short_reason(e, _TORCH_ADVICE)


class SealedCall:
    """A function handed to a restricted unpickler, callable but sealed: a pickle's BUILD
    on the function itself set its attributes (its `__defaults__`, say, negating every
    tensor's data) for every later load in the process (helper-115); on this stand-in it
    is refused."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(f"{self._fn.__name__} is read-only")

    def __setstate__(self, state: object) -> None:
        raise pickle.UnpicklingError(f"the pickle sets attributes of {self._fn.__name__}")


# Garbage or truncated input makes the C unpickler (ours, or torch.load's for legacy
# non-zip files: "storage key ... not found", "pop from empty list") raise any of these
# (a damaged numpy state even SystemError).
PICKLE_READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
                      IndexError, AttributeError, AssertionError, RuntimeError, OverflowError,
                      MemoryError, SystemError)


# --------------------------------------------------------------------------- rosinality


def torch_load(path: str | os.PathLike, **kwargs: Any) -> object:
    """torch.load of the file at `path`, read by its content: given a path, torch reads any
    name ending in .safetensors as safetensors whatever it holds, and a torch.save file so
    named (a download or import under that name) was refused in safetensors' words."""
    with open(path, "rb") as f:
        return torch.load(f, **kwargs)


def _torch_load_tensors(path: Path) -> object:
    """torch.load restricted to tensors and plain containers. argparse.Namespace is allowed
    because rosinality's training checkpoints carry their command-line args in one."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch_load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # name what the file asked for, never torch's advice to switch the safety off
        what = refused_global(e)
        if what is not None:
            raise UnsafePickleError(
                f"{path.name} contains Python objects other than tensors (it asks for "
                f"{what}); only weight files are loaded, never code"
            ) from e
        raise CheckpointError(
            f"{path.name} could not be read as a PyTorch checkpoint; it is truncated or "
            f"corrupt: download or copy it again ({unpickling_reason(e)})"
        ) from e
    except (*PICKLE_READ_ERRORS, OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(
            f"{path.name} could not be read as a PyTorch checkpoint; it may be truncated or "
            f"corrupt ({short_reason(e)})"
        ) from e


def without_wrapper_prefix(state: dict) -> dict:
    """`state` (a copy) without the 'module.' that every name carries when the weights were
    saved from a multi-GPU wrapper (DataParallel, DistributedDataParallel)."""
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _extract_rosinality_state(obj: object, name: str, file_size: int | None = None
                              ) -> tuple[dict, torch.Tensor | None]:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name}: expected a dict of weights, got {type(obj).__name__}")
    if "g_ema" in obj:
        state, latent_avg = obj["g_ema"], obj.get("latent_avg")
    elif isinstance(obj.get("state_dict"), dict) and any(
            isinstance(k, str) and k.startswith("decoder.") for k in obj["state_dict"]):
        # e4e / ReStyle / pSp: the generator sits under decoder.*
        sd = obj["state_dict"]
        state = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
        latent_avg = obj.get("latent_avg")
    elif "style.1.weight" in without_wrapper_prefix(obj):
        state, latent_avg = obj, None
    else:
        keys = ", ".join(map(str, list(obj)[:8]))
        hint = " (this looks like a training checkpoint without g_ema)" if "g" in obj else ""
        raise CheckpointError(
            f"{name} has no StyleGAN2 generator weights (no 'g_ema'); top-level keys: {keys}{hint}"
        )
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{name}: the generator entry holds no weights")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        latent_avg = None
    state = without_wrapper_prefix(state)
    # latent_avg is read (and converted) later: its data must be there too
    check_weights(state, name, file_size,
                  also_claimed=[("latent_avg", latent_avg)] if latent_avg is not None else [])
    return state, latent_avg


CLAIM_MESSAGE = ("claims more data than the file holds: it is damaged or made to exhaust "
                 "memory")
# Tensors may share their data (tied weights, views of one buffer), but not this much: all
# of a file's tensors together claiming more than this many times the bytes its storages
# hold (plus a little) is a file made to exhaust memory, not a generator.
_SHARED_DATA_FACTOR = 4
_SHARED_DATA_SLACK = 1 << 20


def claimed_bytes(shape: tuple[int, ...], strides: tuple[int, ...], offset: int,
                  element_size: int) -> int | None:
    """The bytes of storage a tensor of this shape, strides and offset (in elements)
    reaches, when its elements do not overlap (each element its own bytes); None when they
    do: a dimension of size > 1 with stride 0 (torch.zeros(1).expand(...)), or strides that
    make rows alias."""
    if math.prod(shape) == 0:
        return 0
    dims = sorted((stride, size) for size, stride in zip(shape, strides, strict=True)
                  if size > 1)
    reach = 1  # elements spanned by the dimensions so far
    for stride, size in dims:
        if stride < reach:
            return None
        reach = stride * (size - 1) + reach
    return (offset + reach) * element_size


def check_claimed_data(tensors, name: str, file_size: int | None = None) -> None:
    """Refuse, before any per-element work, tensors that claim more data than their
    storages (or the file, of `file_size` bytes) hold: torch.load accepts views that repeat
    one stored number over billions of elements (a 10 KB file claiming a 22 GB generator),
    and every later step would read or allocate all of them. `tensors`: (name, tensor)
    pairs or a dict; entries that are not tensors with data are left to check_weights."""
    items = tensors.items() if isinstance(tensors, dict) else tensors
    claimed = 0
    held: dict[int, int] = {}  # storage address -> bytes
    for key, t in items:
        if not isinstance(t, torch.Tensor) or t.is_meta:
            continue
        storage = t.untyped_storage()
        need = claimed_bytes(tuple(t.shape), t.stride(), t.storage_offset(), t.element_size())
        if need is None or need > storage.nbytes():
            raise CheckpointError(f"{name}: {key} {CLAIM_MESSAGE}")
        claimed += t.numel() * t.element_size()
        address = storage.data_ptr()
        held[address] = max(held.get(address, 0), storage.nbytes())
    total = sum(held.values())
    if claimed > _SHARED_DATA_FACTOR * total + _SHARED_DATA_SLACK \
            or (file_size is not None and total > file_size + _SHARED_DATA_SLACK):
        raise CheckpointError(f"{name} {CLAIM_MESSAGE}")


def check_weights(state: dict, name: str, file_size: int | None = None,
                  also_claimed: list[tuple[str, torch.Tensor]] = ()) -> None:
    """Every entry a named, finite floating-point tensor with data: a damaged or forged file
    is refused here, before its shapes decide anything. `file_size`, when known, bounds the
    data the tensors may hold (see check_claimed_data); `also_claimed`: more of the file's
    tensors, whose data counts with the weights' but which are not weights."""
    check_claimed_data([*state.items(), *also_claimed], name, file_size)
    for key, t in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{name}: a weight name is not text ({key!r:.40})")
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{name}: {key} is not a tensor ({type(t).__name__})")
        if t.dtype not in WEIGHT_DTYPES:
            raise CheckpointError(f"{name}: {key} holds {t.dtype} values, not floating-point "
                                  "weights")
        if t.is_meta:
            raise CheckpointError(f"{name}: {key} holds no data")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{name}: {key} holds NaN or infinite values; the file is "
                                  "damaged")


def infer_rosinality_config(state: dict[str, torch.Tensor], name: str = "checkpoint"
                            ) -> GeneratorConfig:
    """Architecture from tensor shapes: resolution from the number of toRGB layers, style dim
    from the mapping, channels from each block's conv weights."""
    try:
        return _infer_rosinality_config(state)
    except KeyError as e:
        if "layers.0.weight" in str(e) or any(k.startswith("synthesis.") for k in state):
            raise IncompatibleModelError(f"{name} is not in the rosinality layout") from e
        raise CheckpointError(f"{name}: missing weight {e} needed to infer the architecture"
                              ) from e
    except (IndexError, ValueError) as e:  # weights of the wrong rank, or an impossible size
        raise CheckpointError(f"{name}: the weights do not describe a StyleGAN2 generator "
                              f"({e})") from e


def _infer_rosinality_config(state: dict[str, torch.Tensor]) -> GeneratorConfig:
    """The shapes, read as rosinality's Generator lays them out (KeyError: a weight that
    decides the architecture is missing)."""
    n_mlp = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
    n_rgbs = len([k for k in state if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    channels = [state["input.input"].shape[1]]
    for k in range(n_rgbs):
        channels.append(state[f"convs.{2 * k}.conv.weight"].shape[1])
    if "conv1.conv.weight" not in state:
        raise KeyError("conv1.conv.weight")
    if state["input.input"].ndim != 4:
        raise IndexError("the constant input is not a 4-d tensor")
    z_dim = state["style.1.weight"].shape[1]
    style_dim = state["style.1.bias"].shape[0]
    return GeneratorConfig(
        resolution=2 ** (n_rgbs + 2), style_dim=style_dim, n_mlp=n_mlp,
        channels=tuple(int(c) for c in channels),
        z_dim=z_dim if z_dim != style_dim else None,
    )


def _normalise_latent_avg(latent_avg: torch.Tensor | None, style_dim: int) -> torch.Tensor | None:
    if latent_avg is None:
        return None
    t = latent_avg.detach().float()
    if t.ndim == 2:  # some checkpoints store it per W+ row; rows are identical in practice
        t = t.mean(0)
    t = t.reshape(-1)
    if t.numel() != style_dim:
        return None
    return t


def build_generator(config: GeneratorConfig, state: dict[str, torch.Tensor],
                    w_avg: torch.Tensor | None, name: str) -> Generator:
    """Check names and shapes against the architecture, then instantiate and load. Nothing
    is allocated for the architecture until the file's tensors are known to fill it (a small
    file cannot claim a huge generator); a mismatch lists the missing/unexpected keys.
    `state` has passed check_weights (each loader checks its file's tensors once)."""
    if w_avg is not None:
        check_weights({"w_avg": w_avg}, name)
        if tuple(w_avg.shape) != (config.style_dim,):
            raise CheckpointError(f"{name}: w_avg has shape {tuple(w_avg.shape)}, the "
                                  f"generator's w has {config.style_dim} entries")
    expected = state_shapes(config)
    for key, t in state.items():
        if key in expected and expected[key] != t.shape:
            raise CheckpointError(
                f"{name}: weight {key} has shape {tuple(t.shape)}, the inferred architecture "
                f"expects {tuple(expected[key])}"
            )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(
            f"{name} does not match a StyleGAN2 generator: "
            f"{len(missing)} missing keys ({', '.join(missing[:6])}), "
            f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:6])})"
        )
    try:
        gen = Generator(config)
        gen.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        with torch.no_grad():
            gen.w_avg.copy_(w_avg if w_avg is not None else gen.mean_latent())
    except (RuntimeError, MemoryError) as e:
        if not is_out_of_memory(e):
            raise
        raise CheckpointError(f"{name}: there is not enough memory to build its generator "
                              f"({short_reason(e)})") from e
    return gen.eval().requires_grad_(False)


def load_rosinality(path: Path) -> LoadedGenerator:
    obj = _torch_load_tensors(path)
    state, latent_avg = _extract_rosinality_state(obj, path.name, file_size_of(path))
    config = infer_rosinality_config(state, path.name)
    w_avg = _normalise_latent_avg(latent_avg, config.style_dim)
    if latent_avg is not None and w_avg is None:
        log.warning("%s: its latent_avg has shape %s, which does not fit the generator's w "
                    "(%d entries); it is ignored and w_avg is estimated by sampling",
                    path.name, tuple(latent_avg.shape), config.style_dim)
    gen = build_generator(config, state, w_avg, path.name)
    meta = {"has_latent_avg": w_avg is not None}
    return LoadedGenerator(gen, "rosinality", path, generator_hash(gen), meta)


def file_size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# --------------------------------------------------------------------------- our format


def save_generator(gen: Generator, path: str | os.PathLike, half: bool = False,
                   metadata: dict | None = None) -> Path:
    """Write our safetensors format atomically: weights (+ w_avg), config JSON in metadata."""
    path = Path(path)
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in gen.state_dict().items()}
    tensors["w_avg"] = gen.w_avg.detach().to("cpu", torch.float32).contiguous()
    meta = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(gen.config.to_dict()),
        "user": json.dumps(metadata or {}),
    }
    with atomic_path(path) as tmp:
        save_tensors(tensors, tmp, metadata=meta)
    return path


def load_atelier(path: Path) -> LoadedGenerator:
    from safetensors import SafetensorError, safe_open

    try:
        with readable_name(path) as name, safe_open(name, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors file ({e})") from e
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path.name} is a safetensors file but not a Latent Atelier "
                              f"generator (format={meta.get('format')!r})")
    version = meta.get("format_version", "0")
    if not version.isdigit():
        raise CheckpointError(f"{path.name}: invalid format version {version!r:.40}")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path.name} was written by a newer Latent Atelier "
                              f"(format version {version}); please update")
    try:
        config = GeneratorConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path.name}: invalid generator config ({e})") from e
    w_avg = tensors.pop("w_avg", None)
    check_weights(tensors, path.name, file_size_of(path))
    gen = build_generator(config, tensors, w_avg, path.name)
    return LoadedGenerator(gen, "atelier", path, generator_hash(gen), _user_metadata(meta))


def _user_metadata(meta: dict) -> dict:
    """The free-form metadata a file was saved with ({} when it is not a JSON object: it
    only informs, so a damaged one does not stop the model from loading)."""
    try:
        user = json.loads(meta.get("user", "{}"))
    except ValueError:
        return {}
    return user if isinstance(user, dict) else {}


# --------------------------------------------------------------------------- dispatch


def generator_hash(gen: Generator) -> str:
    state = dict(gen.state_dict())
    state["w_avg"] = gen.w_avg
    return state_dict_hash(state, extra=json.dumps(gen.config.identity(), sort_keys=True))


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu"
                   ) -> LoadedGenerator:
    """Load a generator from any supported file. Raises CheckpointError (or its subclass
    UnsafePickleError) or IncompatibleModelError with a message fit for the user."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    kind = sniff_format(path)
    if kind == "safetensors":
        loaded = load_atelier(path)
    elif kind == "torch-zip":
        check_torch_zip(path)
        if is_torchscript_zip(path):
            # torch.load hands these to torch.jit.load (with a warning on the terminal), and
            # refuses them with advice to switch its safety off: "truncated or corrupt"
            raise CheckpointError(
                f"{path.name} is a TorchScript archive (a compiled model with its code), "
                "not a generator checkpoint; its code is never run. Save the generator's "
                "weights with torch.save (a rosinality .pt) instead")
        loaded = load_rosinality(path)
    elif kind == "pickle":
        from .nvidia_pickle import is_nvidia_pickle, load_nvidia_pickle

        if is_nvidia_pickle(path):
            config, state, w_avg = load_nvidia_pickle(path)
            check_weights(state, path.name)  # (its raw tensors' data was checked in there)
            gen = build_generator(config, state, w_avg, path.name)
            loaded = LoadedGenerator(gen, "nvidia", path, generator_hash(gen), {})
        else:  # legacy (pre-1.6) torch.save files are pickles too
            loaded = load_rosinality(path)
    else:
        raise CheckpointError(
            f"{path.name} is not a checkpoint format we know (rosinality .pt, NVIDIA .pkl or "
            f"Latent Atelier .safetensors)"
        )
    loaded.generator.to(device)
    return loaded
