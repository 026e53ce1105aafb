"""Read NVIDIA StyleGAN2 network pickles without running them.

stylegan2-ada-pytorch and the stylegan3 repository save networks with
`pickle.dump(dict(G=..., D=..., G_ema=..., training_set_kwargs=..., augment_pipe=...))`.
Their `torch_utils.persistence` stores each network module as a call to
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` carries the source
code of the module that defined the class (which NVIDIA's loader `exec`s), the class name,
and the instance `__dict__` (parameters, buffers, submodules, constructor kwargs).

Here a restricted unpickler resolves a short allow-list of globals only: tensor and
parameter rebuilders, storages (read back with `torch.load(weights_only=True)`), numpy
arrays and scalars, OrderedDict/set, and our own stand-ins for `_reconstruct_persistent_obj`
(returns a plain `PersistentRecord`, the embedded source is dropped unread) and
`dnnlib.EasyDict`. Anything else (os.system, eval, the pickle's own classes...) raises
UnsafePickleError before it is called. The G_ema record is then walked into NVIDIA's
dotted names, its architecture read from the stored kwargs and attributes and checked
against the tensor shapes, and its weights renamed into our (rosinality) layout.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import pickletools
import re
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import (
    CLAIM_MESSAGE,
    PICKLE_READ_ERRORS,
    SealedCall,
    check_claimed_data,
    claimed_bytes,
    file_size_of,
)
from .errors import (
    AtelierError,
    CheckpointError,
    IncompatibleModelError,
    UnsafePickleError,
    is_out_of_memory,
    short_reason,
)
from .generator import (
    DEFAULT_BLUR_KERNEL,
    Generator,
    GeneratorConfig,
    make_kernel,
    state_shapes,
)

# torch.save's legacy (pre-1.6, non-zip) files are pickles too; they begin with this number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_SNIFF_BYTES = 64 * 1024


# --------------------------------------------------------------------------- plain data


class _SealedType(type):
    """Metaclass that refuses attribute assignment: a pickle's BUILD opcode could otherwise
    rewrite attributes of the classes we hand to it."""

    def __setattr__(cls, name: str, value: object) -> None:
        raise TypeError(f"{cls.__name__} is read-only")


class PlainEasyDict(dict, metaclass=_SealedType):
    """Stands in for dnnlib.EasyDict (a dict with attribute access): only the data is kept."""


@dataclass
class PersistentRecord:
    """What `torch_utils.persistence` stored for one module, as plain data. The module's
    source code that came with it is deliberately not kept."""

    class_name: str
    state: dict[str, Any]
    version: int | None = None
    init_args: tuple = ()
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def modules(self) -> dict[str, Any]:
        return _as_dict(self.state.get("_modules"))

    @property
    def parameters(self) -> dict[str, Any]:
        return _as_dict(self.state.get("_parameters"))

    @property
    def buffers(self) -> dict[str, Any]:
        return _as_dict(self.state.get("_buffers"))

    def __setstate__(self, state: object) -> None:
        # NVIDIA's records carry their state in the call; a BUILD on top is not theirs.
        raise pickle.UnpicklingError("unexpected extra state for a persistent object")

    def attr(self, name: str, default: Any = None) -> Any:
        """An instance attribute, else the constructor argument of that name."""
        if name in self.state:
            return self.state[name]
        return self.init_kwargs.get(name, default)


def _as_dict(value: object) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _reconstruct_persistent_obj(meta: object) -> PersistentRecord:
    """Our replacement for torch_utils.persistence._reconstruct_persistent_obj: keep the
    class name and state, never look at meta['module_src']."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("persistent object record is not of type 'class'")
    state = meta.get("state")
    if state is None:
        state = {}
    if not isinstance(state, dict):
        raise pickle.UnpicklingError("persistent object state is not a dict")
    init_args = state.get("_init_args", ())
    init_kwargs = state.get("_init_kwargs", {})
    return PersistentRecord(
        class_name=str(meta.get("class_name", "?")),
        state=dict(state),
        version=meta.get("version") if isinstance(meta.get("version"), int) else None,
        init_args=tuple(init_args) if isinstance(init_args, list | tuple) else (),
        init_kwargs=dict(init_kwargs) if isinstance(init_kwargs, dict) else {},
    )


# --------------------------------------------------------------------------- allowed calls


def _load_storage_from_bytes(data: object) -> torch.storage.TypedStorage:
    """Replacement for torch.storage._load_from_bytes: a pickled storage is a small legacy
    torch.save file; read it with torch's own weights-only loader, onto the CPU."""
    if not isinstance(data, bytes | bytearray):
        raise pickle.UnpicklingError("storage payload is not bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation chatter
        storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError(f"storage payload holds a {type(storage).__name__}")
    return storage


def _check_hooks(hooks: object) -> None:
    if hooks:  # hooks would be callables; a weights file has none
        raise pickle.UnpicklingError("tensor carries backward hooks")


def _rebuild_tensor_v2(storage: object, offset: int, size: tuple, stride: tuple,
                       requires_grad: bool, backward_hooks: object, metadata: object = None
                       ) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise pickle.UnpicklingError("tensor data is not a storage")
    _check_hooks(backward_hooks)
    if not (isinstance(offset, int) and offset >= 0 and _ints(size) and _ints(stride)
            and len(size) == len(stride)):
        raise pickle.UnpicklingError("tensor with an unexpected shape or strides")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation chatter
        need = claimed_bytes(tuple(size), tuple(stride), offset, storage.element_size())
        held = storage.nbytes()
    if need is None or need > held:  # torch would grow the storage to fit
        raise pickle.UnpicklingError(f"a tensor of shape {tuple(size)} {CLAIM_MESSAGE}")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
                                           OrderedDict(), metadata)


def _ints(values: object) -> bool:
    return isinstance(values, tuple | list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)


def _rebuild_parameter(data: object, requires_grad: bool, backward_hooks: object
                       ) -> torch.nn.Parameter:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("parameter data is not a tensor")
    _check_hooks(backward_hooks)
    return torch.nn.Parameter(data, bool(requires_grad))


def _rebuild_parameter_with_state(data: object, requires_grad: bool, backward_hooks: object,
                                  state: object) -> torch.nn.Parameter:
    # The extra state (attributes set on a Parameter) is not needed for the weights.
    return _rebuild_parameter(data, requires_grad, backward_hooks)


def _codecs_encode(text: object, encoding: str = "utf-8") -> bytes:
    """Protocol 2 writes bytes objects as _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError("unexpected _codecs.encode call")
    return text.encode("latin1")


# numpy's own pickle rebuilders are not safe on crafted input: a dtype's BUILD state can
# set its element size (then reading the array crashes the process), and an ndarray's
# BUILD trusts its dtype. The pickle gets stand-ins instead: a dtype is only a checked
# description until an array is made from it, and an array's state is checked (plain
# numbers only, bytes exactly filling its shape) before numpy sees it.
_PLAIN_DTYPE = re.compile(r"[biufc]\d{1,2}")
_DTYPE_STATE_VERSIONS = {3: 8, 4: 9}  # numpy's dtype state: version -> tuple length


class _DTypeSpec(metaclass=_SealedType):
    """A pickled numpy.dtype(spec, align, copy), as a description: 'f4', 'i8', 'b1'..."""

    def __init__(self, spec: object, align: object = False, copy: object = False):
        if not isinstance(spec, str) or not _PLAIN_DTYPE.fullmatch(spec):
            raise pickle.UnpicklingError(f"numpy dtype {spec!r} is not a plain number type")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: object) -> None:
        """numpy's state: (version, byte order, subarray, names, fields, element size,
        alignment, flags[, metadata]); only what a plain number type has is accepted."""
        if not (isinstance(state, tuple) and state
                and _DTYPE_STATE_VERSIONS.get(state[0]) == len(state)):
            raise pickle.UnpicklingError("numpy dtype with an unexpected state")
        order, *rest = state[1:]
        extra = rest[:3] + rest[6:]  # subarray, names, fields[, metadata]
        if order not in ("<", ">", "|", "=") or any(v is not None for v in extra) \
                or rest[3] not in (-1, self.dtype.itemsize) \
                or rest[4] not in (-1, self.dtype.alignment) or rest[5] != self.dtype.flags:
            raise pickle.UnpicklingError("numpy dtype with an unexpected state")
        if order in "<>":
            self.dtype = self.dtype.newbyteorder(order)


class _SafeArray(np.ndarray, metaclass=_SealedType):
    """An ndarray whose pickled state is checked before numpy reads it."""

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # (version, shape, dtype, fortran, data)
        if not (isinstance(state, tuple) and len(state) == 4):
            raise pickle.UnpicklingError("numpy array with an unexpected state")
        shape, spec, fortran, data = state
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
                and isinstance(spec, _DTypeSpec) and isinstance(fortran, bool)
                and isinstance(data, bytes | bytearray)):
            raise pickle.UnpicklingError("numpy array with an unexpected state")
        if len(data) != math.prod(shape) * spec.dtype.itemsize:
            raise pickle.UnpicklingError("numpy array whose data does not fill its shape")
        super().__setstate__((1, shape, spec.dtype, fortran, bytes(data)))

    def __reduce__(self) -> tuple:
        return self.view(np.ndarray).__reduce__()  # pickled again: a plain array


_NDARRAY = object()  # what the pickle's numpy.ndarray stands for: only _reconstruct's argument


def _reconstruct_array(subtype: object, shape: object, dtype: object) -> _SafeArray:
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("numpy array of an unexpected subtype")
    return _SafeArray((0,), np.uint8)  # filled by its checked __setstate__


def _scalar(spec: object, data: object = b"") -> np.generic:
    """A numpy scalar (its own copy; numpy ignores a BUILD on a number scalar)."""
    if not isinstance(spec, _DTypeSpec) or not isinstance(data, bytes | bytearray) \
            or len(data) != spec.dtype.itemsize:
        raise pickle.UnpicklingError("numpy scalar with an unexpected form")
    return np.frombuffer(bytes(data), spec.dtype)[0]


def _frombuffer(buf: object, spec: object, shape: object, order: object) -> _SafeArray:
    """Protocol 5's in-band arrays."""
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    if order not in ("C", "F") or not isinstance(buf, bytes | bytearray):
        raise pickle.UnpicklingError("numpy array with an unexpected form")
    array = _reconstruct_array(_NDARRAY, (0,), None)
    array.__setstate__((shape, spec, order == "F", buf))
    return array


def _numpy_globals() -> dict[tuple[str, str], Callable | type | object]:
    """Stand-ins for numpy's rebuilders, under both the numpy 1.x (numpy.core) and 2.x
    (numpy._core) module paths that pickles name."""
    out: dict[tuple[str, str], Callable | type | object] = {}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = _reconstruct_array
        out[(f"{core}.multiarray", "scalar")] = _scalar
        out[(f"{core}.numeric", "_frombuffer")] = _frombuffer
    out[("numpy", "ndarray")] = _NDARRAY
    out[("numpy", "dtype")] = _DTypeSpec
    return out


def _torch_globals() -> dict[tuple[str, str], Callable | type | object]:
    out: dict[tuple[str, str], Callable | type | object] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            out[("torch", name)] = getattr(torch, name)
    return out


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs_encode,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): PlainEasyDict,
        ("dnnlib", "EasyDict"): PlainEasyDict,
    }
    allowed.update(_torch_globals())
    allowed.update(_numpy_globals())
    # our functions, sealed (the classes are, by _SealedType; torch's and Python's own
    # types and dtypes take no attributes)
    return {key: SealedCall(value) if isinstance(value, types.FunctionType) else value
            for key, value in allowed.items()}


# Python 2 module names that protocol-2 pickles use (pickle's fix_imports, applied by hand
# because find_class sees the raw names).
_MODULE_ALIASES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _check_memo_indices(file: Any) -> None:
    """Walk the opcodes once (nothing is built) and refuse a memo index beyond the opcodes
    so far: the unpickler grows its memo table to twice the index it is given, so one
    damaged byte in a 4-byte index asks for gigabytes and the process is killed."""
    start = file.tell()
    for count, (opcode, arg, _pos) in enumerate(pickletools.genops(file)):
        if opcode.name in _MEMO_PUTS and arg > count:
            raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}: damaged")
    file.seek(start)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals; everything else is refused before
    it is called. `source` names the file in error messages."""

    def __init__(self, file: Any, source: str = "pickle"):
        super().__init__(file)
        self._file = file
        self.source = source
        self._allowed = _allowed_globals()

    def load(self) -> Any:
        _check_memo_indices(self._file)
        return super().load()

    def find_class(self, module: str, name: str) -> Any:
        module = _MODULE_ALIASES.get(module, module)
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        if module.startswith("dnnlib.tflib"):
            raise IncompatibleModelError(
                f"{self.source} is a TensorFlow-era StyleGAN pickle ({module}.{name}); only "
                f"PyTorch pickles (stylegan2-ada-pytorch, stylegan3 repo) can be read. "
                f"Convert it with NVIDIA's legacy.py first."
            )
        raise UnsafePickleError(
            f"{self.source} asks for {module}.{name}, which a weights-only reader does not "
            f"allow; the file was not loaded and nothing in it was run"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids (a torch.save file?) are not expected here")


def read_pickle(path: str | os.PathLike) -> Any:
    """Unpickle a file with the restricted unpickler: plain data, tensors, numpy arrays and
    PersistentRecords only. Raises CheckpointError / UnsafePickleError."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read ({e.strerror or e})") from e
    if size == 0:
        raise CheckpointError(f"{path.name} is empty (0 bytes): not a network pickle")
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path.name).load()
    except AtelierError:
        raise
    except OSError as e:
        raise CheckpointError(f"{path.name} cannot be read ({e.strerror or e})") from e
    except PICKLE_READ_ERRORS as e:
        why = short_reason(e)
        # the reader's words, unless they quote garbage back as escaped bytes
        # (b'arbageFqt\xa7q\xe4E…'): four lines of them in the window's box
        detail = "" if "\\x" in why else f" ({why})"
        raise CheckpointError(
            f"{path.name} could not be read as a network pickle (NVIDIA's .pkl format); it "
            f"may be truncated, corrupt or not a pickle at all{detail}"
        ) from e


def is_nvidia_pickle(path: str | os.PathLike) -> bool:
    """Cheap sniff from the first bytes, running nothing: a pickle of protocol 2-5 that is not
    a legacy torch.save file (those start with torch's magic number and are for torch.load).
    Any other pickle is for the restricted reader here, which refuses what it does not know."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    if len(head) < 2 or head[0] != pickle.PROTO[0] or not 2 <= head[1] <= 5:
        return False
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(head)):
            if opcode.name in ("PROTO", "FRAME"):
                continue
            return not (opcode.name == "LONG1" and arg == _TORCH_LEGACY_MAGIC)
    except ValueError:  # the head ended inside an opcode: still a pickle
        return True
    return True


# --------------------------------------------------------------------------- G_ema -> tensors


def _get_generator_record(obj: object, name: str) -> PersistentRecord:
    if not isinstance(obj, dict):
        raise CheckpointError(f"{name} holds a pickled {type(obj).__name__}, not an NVIDIA "
                              f"network snapshot (a dict with 'G_ema')")
    if "G_ema" not in obj:
        keys = ", ".join(str(k) for k in list(obj)[:8])
        raise CheckpointError(f"{name} has no 'G_ema' generator (top-level keys: {keys})")
    g = obj["G_ema"]
    if not isinstance(g, PersistentRecord):
        raise CheckpointError(f"{name}: 'G_ema' is a {type(g).__name__}, not a network saved "
                              f"by torch_utils.persistence")
    return g


def collect_tensors(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and buffers of a module record and its submodules under dotted names, as
    module.state_dict() would name them (mapping.fc0.weight, synthesis.b4.const, ...)."""
    out: dict[str, torch.Tensor] = {}
    for group in (record.parameters, record.buffers):
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                out[prefix + key] = value.detach()
    for key, sub in record.modules.items():
        if isinstance(sub, PersistentRecord):
            out.update(collect_tensors(sub, f"{prefix}{key}."))
    return out


def _submodule(record: PersistentRecord, name: str, where: str) -> PersistentRecord:
    sub = record.modules.get(name)
    if not isinstance(sub, PersistentRecord):
        raise CheckpointError(f"{where}: the generator has no '{name}' module")
    return sub


def _as_number(value: Any) -> float | int | None:
    """Plain Python number from an int/float or numpy scalar; None for anything else."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


_SG3_LAYER = re.compile(r"L\d+_\d+_\d+")


def _check_supported(g: PersistentRecord, synthesis: PersistentRecord, name: str) -> None:
    names = set(synthesis.modules)
    if "input" in names or any(_SG3_LAYER.fullmatch(n) for n in names):
        raise IncompatibleModelError(
            f"{name} is a StyleGAN3 network; StyleGAN3 pickles are not supported (only "
            f"StyleGAN2 generators can be edited here)"
        )
    c_dim = _as_number(g.attr("c_dim", 0)) or 0
    mapping = g.modules.get("mapping")
    has_embed = isinstance(mapping, PersistentRecord) and "embed" in mapping.modules
    if c_dim > 0 or has_embed:
        raise IncompatibleModelError(
            f"{name} is a conditional (class-label) generator (c_dim={c_dim}); conditional "
            f"models are not supported"
        )
    channels = _as_number(g.attr("img_channels", 3))
    if channels != 3:
        raise IncompatibleModelError(f"{name} makes {channels}-channel images; only RGB (3) "
                                     f"generators are supported")


def _block_resolutions(synthesis: PersistentRecord, name: str) -> list[int]:
    res = sorted(int(k[1:]) for k in synthesis.modules if re.fullmatch(r"b\d+", k))
    if not res or res[0] != 4:
        raise CheckpointError(f"{name}: the synthesis network has no b4 block")
    expected = [2**i for i in range(2, int(math.log2(res[-1])) + 1)]
    if res != expected:
        raise CheckpointError(f"{name}: synthesis blocks {res} are not a full 4..N ladder")
    return res


def _check_filters(tensors: dict[str, torch.Tensor], name: str) -> None:
    """Our generator hard-codes the standard [1,3,3,1] resampling filter (in its blur and
    upsample buffers); a pickle trained with another filter would render differently."""
    standard = make_kernel(DEFAULT_BLUR_KERNEL)
    for key, t in tensors.items():
        if key.endswith("resample_filter") and (
            t.shape != standard.shape or not torch.allclose(t.float(), standard, atol=1e-6)
        ):
            raise IncompatibleModelError(
                f"{name}: {key} is not the standard [1,3,3,1] filter; only generators with "
                f"that resampling filter are supported"
            )


def _single_setting(values: list[Any], what: str, name: str) -> Any:
    distinct = sorted({repr(v) for v in values})
    if len(distinct) > 1:
        raise IncompatibleModelError(f"{name}: layers use different {what} values "
                                     f"({', '.join(distinct)}); one is supported")
    return values[0] if values else None


def _infer_config(g: PersistentRecord, tensors: dict[str, torch.Tensor], name: str
                  ) -> GeneratorConfig:
    mapping = _submodule(g, "mapping", name)
    synthesis = _submodule(g, "synthesis", name)
    resolutions = _block_resolutions(synthesis, name)
    blocks = [_submodule(synthesis, f"b{r}", name) for r in resolutions]

    for r, block in zip(resolutions, blocks, strict=True):
        arch = block.attr("architecture") or "skip"
        if arch != "skip":
            raise IncompatibleModelError(
                f"{name} uses the '{arch}' synthesis architecture (block b{r}); only 'skip' "
                f"(the StyleGAN2 config-e/f default) is supported"
            )

    try:
        fc_keys = sorted(int(m.group(1)) for k in tensors
                         if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
        n_mlp = len(fc_keys)
        z_in = tensors["mapping.fc0.weight"].shape[1]
        w_dim = tensors[f"mapping.fc{n_mlp - 1}.weight"].shape[0]
        channels = [tensors["synthesis.b4.const"].shape[0]]
        channels += [tensors[f"synthesis.b{r}.conv1.weight"].shape[0] for r in resolutions[1:]]
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"{name}: missing weight {e} needed to read the architecture"
                              ) from e
    if fc_keys != list(range(n_mlp)):
        raise CheckpointError(f"{name}: mapping layers are not numbered fc0..fc{n_mlp - 1}")

    _check_stored_kwargs(g, mapping, synthesis, name, z_in=z_in, w_dim=w_dim, n_mlp=n_mlp,
                         resolution=resolutions[-1], channels=channels)

    convs = [sub for block in blocks for key, sub in block.modules.items()
             if key in ("conv0", "conv1") and isinstance(sub, PersistentRecord)]
    torgbs = [sub for block in blocks for key, sub in block.modules.items()
              if key == "torgb" and isinstance(sub, PersistentRecord)]
    clamps = [_as_number(layer.attr("conv_clamp")) for layer in convs + torgbs]
    conv_clamp = _single_setting(clamps, "conv_clamp", name)
    activation = _single_setting([layer.attr("activation") for layer in convs], "activation",
                                 name)
    if activation not in (None, "lrelu"):
        raise IncompatibleModelError(f"{name}: synthesis activation {activation!r} is not "
                                     f"supported (only lrelu)")

    return GeneratorConfig(
        resolution=resolutions[-1],
        style_dim=int(w_dim),
        n_mlp=n_mlp,
        channel_base=int(_as_number(synthesis.attr("channel_base")) or 32768),
        channel_max=int(_as_number(synthesis.attr("channel_max")) or 512),
        lr_mlp=_mapping_lr(mapping),
        conv_clamp=float(conv_clamp) if conv_clamp is not None else None,
        num_fp16_res=_num_fp16_res(g, synthesis, blocks),
        channels=tuple(int(c) for c in channels),
        z_dim=int(z_in),
    )


def _check_stored_kwargs(g: PersistentRecord, mapping: PersistentRecord,
                         synthesis: PersistentRecord, name: str, *, z_in: int, w_dim: int,
                         n_mlp: int, resolution: int, channels: list[int]) -> None:
    """The stored constructor kwargs/attributes must describe the tensors we found."""
    checks: list[tuple[str, Any, int]] = [
        ("z_dim", g.attr("z_dim"), z_in),
        ("w_dim", g.attr("w_dim"), w_dim),
        ("img_resolution", g.attr("img_resolution"), resolution),
        ("mapping num_layers", mapping.attr("num_layers")
         or _nested(g, "mapping_kwargs", "num_layers"), n_mlp),
    ]
    base = _as_number(synthesis.attr("channel_base") or _nested(g, "synthesis_kwargs",
                                                                     "channel_base"))
    cmax = _as_number(synthesis.attr("channel_max") or _nested(g, "synthesis_kwargs",
                                                                    "channel_max"))
    if base is not None and cmax is not None:
        for i, c in enumerate(channels):
            checks.append((f"channels at {4 * 2**i}px", min(int(base) // (4 * 2**i), int(cmax)),
                           c))
    for what, stored, found in checks:
        stored_n = _as_number(stored)
        if stored_n is not None and int(stored_n) != int(found):
            raise CheckpointError(
                f"{name}: stored {what}={stored_n} disagrees with the weights ({found}); the "
                f"file is inconsistent"
            )


def _nested(record: PersistentRecord, kwargs_name: str, key: str) -> Any:
    sub = record.init_kwargs.get(kwargs_name)
    return sub.get(key) if isinstance(sub, dict) else None


def _mapping_lr(mapping: PersistentRecord) -> float:
    """The mapping network's learning-rate multiplier, which scales its weights at run time:
    fc layers keep it as `bias_gain` and as their `lr_multiplier` kwarg."""
    fc0 = mapping.modules.get("fc0")
    candidates = [mapping.attr("lr_multiplier")]
    if isinstance(fc0, PersistentRecord):
        candidates = [fc0.attr("bias_gain"), fc0.init_kwargs.get("lr_multiplier")] + candidates
    for value in candidates:
        number = _as_number(value)
        if number is not None:
            return float(number)
    return 0.01


def _num_fp16_res(g: PersistentRecord, synthesis: PersistentRecord,
                  blocks: list[PersistentRecord]) -> int:
    stored = _as_number(synthesis.attr("num_fp16_res"))
    if stored is None:
        stored = _as_number(_nested(g, "synthesis_kwargs", "num_fp16_res"))
    if stored is not None:
        return int(stored)
    return sum(1 for b in blocks if b.attr("use_fp16") is True)


# --------------------------------------------------------------------------- key mapping


def _map_styled_conv(t: dict[str, torch.Tensor], src: str, dst: str, noise_index: int,
                     out: dict[str, torch.Tensor]) -> None:
    out[f"{dst}.conv.weight"] = t[f"{src}.weight"].unsqueeze(0)
    out[f"{dst}.conv.modulation.weight"] = t[f"{src}.affine.weight"]
    out[f"{dst}.conv.modulation.bias"] = t[f"{src}.affine.bias"]
    out[f"{dst}.activate.bias"] = t[f"{src}.bias"]
    if f"{src}.noise_strength" in t:
        out[f"{dst}.noise.weight"] = t[f"{src}.noise_strength"].reshape(1)
        out[f"noises.noise_{noise_index}"] = t[f"{src}.noise_const"][None, None]
    else:  # use_noise=False: a zero strength makes our noise input a no-op
        out[f"{dst}.noise.weight"] = torch.zeros(1)


def _map_torgb(t: dict[str, torch.Tensor], src: str, dst: str,
               out: dict[str, torch.Tensor]) -> None:
    out[f"{dst}.conv.weight"] = t[f"{src}.weight"].unsqueeze(0)
    out[f"{dst}.conv.modulation.weight"] = t[f"{src}.affine.weight"]
    out[f"{dst}.conv.modulation.bias"] = t[f"{src}.affine.bias"]
    out[f"{dst}.bias"] = t[f"{src}.bias"].reshape(1, -1, 1, 1)


def to_rosinality(t: dict[str, torch.Tensor], config: GeneratorConfig
                  ) -> dict[str, torch.Tensor]:
    """NVIDIA dotted names -> our Generator's state-dict names (see DESIGN.md)."""
    out: dict[str, torch.Tensor] = {}
    for i in range(config.n_mlp):
        out[f"style.{i + 1}.weight"] = t[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = t[f"mapping.fc{i}.bias"]
    out["input.input"] = t["synthesis.b4.const"].unsqueeze(0)
    _map_styled_conv(t, "synthesis.b4.conv1", "conv1", 0, out)
    _map_torgb(t, "synthesis.b4.torgb", "to_rgb1", out)
    for k in range(config.log_size - 2):
        block = f"synthesis.b{2 ** (k + 3)}"
        _map_styled_conv(t, f"{block}.conv0", f"convs.{2 * k}", 2 * k + 1, out)
        _map_styled_conv(t, f"{block}.conv1", f"convs.{2 * k + 1}", 2 * k + 2, out)
        _map_torgb(t, f"{block}.torgb", f"to_rgbs.{k}", out)
    return out


def _complete_state(mapped: dict[str, torch.Tensor], config: GeneratorConfig, name: str
                    ) -> dict[str, torch.Tensor]:
    """Check names and shapes against a freshly built Generator and fill what NVIDIA's
    layout does not carry (blur/upsample kernels; noise buffers when use_noise=False)."""
    shapes = state_shapes(config)  # checked before anything of that size is allocated
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(shapes[k])}"
                  for k, v in mapped.items() if k in shapes and v.shape != shapes[k]]
    unknown = [k for k in mapped if k not in shapes]
    if mismatched or unknown:
        hint = ""
        if any(k.startswith("style.1.") for k in mismatched) and config.z_dim != config.style_dim:
            hint = f" (z_dim={config.z_dim} differs from w_dim={config.style_dim})"
        raise IncompatibleModelError(
            f"{name}: the weights do not fit our StyleGAN2 generator{hint}: "
            + "; ".join((mismatched + unknown)[:4])
        )
    absent = [k for k in shapes if k not in mapped]
    for key in absent:
        if not _fillable(key):
            raise CheckpointError(f"{name}: no weights for {key}")
    reference = Generator(config).state_dict() if absent else {}
    return {key: mapped.get(key, reference.get(key)).detach().to(torch.float32).contiguous()
            for key in shapes}


def _fillable(key: str) -> bool:
    return key.endswith((".blur.kernel", ".upsample.kernel")) or key.startswith("noises.")


def _w_avg(tensors: dict[str, torch.Tensor], config: GeneratorConfig,
           state: dict[str, torch.Tensor]) -> torch.Tensor:
    w_avg = tensors.get("mapping.w_avg")
    if w_avg is not None and w_avg.numel() == config.style_dim:
        return w_avg.detach().float().reshape(-1).clone()
    # Trained with w_avg_beta=None: estimate the truncation anchor by sampling.
    gen = Generator(config)
    gen.load_state_dict(state, strict=True)
    return gen.mean_latent()


# --------------------------------------------------------------------------- public API


def load_nvidia_pickle(path: str | os.PathLike
                       ) -> tuple[GeneratorConfig, dict[str, torch.Tensor], torch.Tensor]:
    """Read the G_ema generator of an NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2
    pickle without importing or running anything it names.

    Returns (config, state dict in our rosinality layout for editor.core.generator.Generator,
    w_avg). Raises CheckpointError (unreadable or inconsistent file), UnsafePickleError
    (the pickle asks for something outside the allow-list) or IncompatibleModelError
    (StyleGAN3, conditional, non-'skip' or otherwise unsupported networks)."""
    name = Path(path).name
    file_size = file_size_of(Path(path))
    network = read_pickle(path)
    # before anything reads them (.contiguous() / .float() would fill what they claim);
    # every tensor, not only G_ema's: a BUILD on a tensor (torch's own __setstate__) can
    # grow its storage past what the reader checked, anywhere in the pickle
    check_claimed_data(list(_every_tensor(network)), name, file_size)
    g = _get_generator_record(network, name)
    try:
        return _convert(g, name)
    except AtelierError:
        raise
    except KeyError as e:
        raise CheckpointError(f"{name}: missing weight {short_reason(e)}") from e
    except (RuntimeError, MemoryError) as e:
        if is_out_of_memory(e):
            raise CheckpointError(f"{name}: there is not enough memory to read its generator "
                                  f"({short_reason(e)})") from e
        raise CheckpointError(f"{name}: the G_ema network is malformed ({short_reason(e)})"
                              ) from e
    except (IndexError, TypeError, ValueError, AttributeError) as e:
        # a record whose values have unexpected types or shapes
        raise CheckpointError(f"{name}: the G_ema network is malformed ({short_reason(e)})"
                              ) from e


def _every_tensor(obj: object) -> Iterator[tuple[str, torch.Tensor]]:
    """(where, tensor) for each tensor in an unpickled network: in containers, records'
    states and constructor arguments, however deep (each object once)."""
    seen: set[int] = set()
    todo: list[tuple[str, object]] = [("", obj)]
    while todo:
        where, value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            yield where or "a tensor", value
        elif isinstance(value, dict):
            todo.extend((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
        elif isinstance(value, list | tuple | set | frozenset):
            todo.extend((where, v) for v in value)
        elif isinstance(value, PersistentRecord):
            todo.extend(((where, value.state), (where, value.init_args),
                         (where, value.init_kwargs)))


def _convert(g: PersistentRecord, name: str
             ) -> tuple[GeneratorConfig, dict[str, torch.Tensor], torch.Tensor]:
    synthesis = _submodule(g, "synthesis", name)
    _check_supported(g, synthesis, name)
    tensors = collect_tensors(g)  # their claimed data was checked when the file was read
    _check_filters(tensors, name)
    config = _infer_config(g, tensors, name)
    read = _NotedReads(tensors)
    state = _complete_state(to_rosinality(read, config), config, name)
    _check_all_read(tensors, read.names, name)
    return config, state, _w_avg(tensors, config, state)


class _NotedReads(dict):
    """The tensors, noting the names read from them (by to_rosinality)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        super().__init__(tensors)
        self.names: set[str] = set()

    def __getitem__(self, key: str) -> torch.Tensor:
        self.names.add(key)
        return super().__getitem__(key)


def _check_all_read(tensors: dict[str, torch.Tensor], read: set[str], name: str) -> None:
    """Every weight of G_ema must be one StyleGAN2 has: a network from modified code (a
    layer added to a block, a per-channel scale) loaded without its extra weights and drew
    another picture, silently. The filters were checked and w_avg is read on its own."""
    unread = [k for k in tensors if k not in read and k != "mapping.w_avg"
              and not k.endswith(".resample_filter")]
    if unread:
        raise IncompatibleModelError(
            f"{name}: its generator holds weights StyleGAN2 has no place for "
            f"({', '.join(unread[:4])}; {len(unread)} in all); it was made by modified code, "
            f"which this program cannot run")
