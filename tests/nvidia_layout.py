"""Test helpers: write network pickles in the layout NVIDIA's stylegan2-ada-pytorch and
stylegan3 code produce, without that code.

NVIDIA's `torch_utils.persistence` pickles every network module as
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with
`meta = dict(type='class', version=6, module_src=<source of the defining module>,
class_name=..., state=<the module's __dict__>)`. The stand-ins below reproduce that: small
nn.Module classes with NVIDIA's submodule/parameter/buffer/attribute names, whose
`__reduce__` emits the same call. They are placed in sys.modules under NVIDIA's module paths
only while pickling (`nvidia_modules()`), so a loader test then runs without them.

`module_src` is whatever the test passes: typically code that would create a marker file if
anything ever executed it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from editor.core.generator import Generator, make_kernel

PERSISTENCE_VERSION = 6
_module_src = "raise RuntimeError('stand-in module source must never run')\n"


def marker_source(marker: Path) -> str:
    """Module source that leaves a file behind if it is ever executed."""
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module_src ran')\n"


def _reconstruct_persistent_obj(meta: dict) -> Any:  # pragma: no cover - never called
    raise RuntimeError("stand-in: NVIDIA pickles must be read without this function")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (the type NVIDIA's kwargs dicts have)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


EasyDict.__module__ = "dnnlib.util"


class Persistent(nn.Module):
    """Base of the stand-ins: records constructor kwargs and pickles as persistence does."""

    def __init__(self, **init_kwargs: Any):
        super().__init__()
        self._init_args: tuple = ()
        self._init_kwargs = copy.deepcopy(init_kwargs)

    def __reduce__(self) -> tuple:
        meta = dict(type="class", version=PERSISTENCE_VERSION, module_src=_module_src,
                    class_name=type(self).__name__, state=self.__dict__)
        return (_reconstruct_persistent_obj, (meta,))


def _standard_filter() -> torch.Tensor:
    return make_kernel((1, 3, 3, 1))


class FullyConnectedLayer(Persistent):
    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 lr_multiplier: float = 1, bias_init: float = 0):
        super().__init__(in_features=in_features, out_features=out_features,
                         activation=activation, lr_multiplier=lr_multiplier,
                         bias_init=bias_init)
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / np.sqrt(in_features)  # numpy scalar, as upstream
        self.bias_gain = lr_multiplier


class MappingNetwork(Persistent):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws,
                         num_layers=num_layers, lr_multiplier=lr_multiplier)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(num_layers):
            fan_in = z_dim + embed if i == 0 else w_dim
            setattr(self, f"fc{i}", FullyConnectedLayer(fan_in, w_dim, activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))


class SynthesisLayer(Persistent):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: int = 1, use_noise: bool = True, conv_clamp: float | None = None):
        super().__init__(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim,
                         resolution=resolution, up=up, use_noise=use_noise,
                         conv_clamp=conv_clamp)
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp, self.padding = "lrelu", conv_clamp, 1
        self.act_gain = np.float64(math.sqrt(2))
        self.register_buffer("resample_filter", _standard_filter())
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))


class ToRGBLayer(Persistent):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 conv_clamp: float | None = None):
        super().__init__(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim,
                         conv_clamp=conv_clamp)
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / np.sqrt(in_channels)


class SynthesisBlock(Persistent):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, is_last: bool, architecture: str = "skip",
                 conv_clamp: float | None = None, use_fp16: bool = False,
                 use_noise: bool = True):
        super().__init__(in_channels=in_channels, out_channels=out_channels, w_dim=w_dim,
                         resolution=resolution, img_channels=img_channels, is_last=is_last,
                         architecture=architecture, conv_clamp=conv_clamp, use_fp16=use_fp16)
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16, self.channels_last = use_fp16, False
        self.register_buffer("resample_filter", _standard_filter())
        self.num_conv = self.num_torgb = 0
        layer = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp,
                     use_noise=use_noise)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1


class SynthesisNetwork(Persistent):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channels: tuple[int, ...], channel_base: int, channel_max: int,
                 num_fp16_res: int = 0, conv_clamp: float | None = None,
                 architecture: str = "skip", use_noise: bool = True):
        super().__init__(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                         channel_base=channel_base, channel_max=channel_max,
                         num_fp16_res=num_fp16_res, conv_clamp=conv_clamp)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.img_resolution_log2 = log2
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_from = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for i, res in enumerate(self.block_resolutions):
            block = SynthesisBlock(channels[i - 1] if i else 0, channels[i], w_dim, res,
                                   img_channels, res == img_resolution, architecture,
                                   conv_clamp, res >= fp16_from, use_noise)
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)


class StandInGenerator(Persistent):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int,
                 channels: tuple[int, ...], n_mlp: int = 2, lr_multiplier: float = 0.01,
                 channel_base: int = 512, channel_max: int = 32, num_fp16_res: int = 0,
                 conv_clamp: float | None = None, architecture: str = "skip",
                 use_noise: bool = True):
        synthesis_kwargs = EasyDict(channel_base=channel_base, channel_max=channel_max,
                                    num_fp16_res=num_fp16_res, conv_clamp=conv_clamp,
                                    architecture=architecture)
        mapping_kwargs = EasyDict(num_layers=n_mlp, lr_multiplier=lr_multiplier)
        super().__init__(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                         img_channels=3, mapping_kwargs=mapping_kwargs,
                         synthesis_kwargs=synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, 3
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, 3, channels, channel_base,
                                          channel_max, num_fp16_res, conv_clamp,
                                          architecture, use_noise)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, n_mlp, lr_multiplier)


StandInGenerator.__name__ = "Generator"  # the class_name NVIDIA's pickles carry
_STAND_INS = (FullyConnectedLayer, MappingNetwork, SynthesisLayer, ToRGBLayer, SynthesisBlock,
              SynthesisNetwork, StandInGenerator, Persistent)
for _cls in _STAND_INS:
    _cls.__module__ = "training.networks"


# --------------------------------------------------------------------------- our -> NVIDIA


def _copy_styled(dst: SynthesisLayer, sd: dict[str, torch.Tensor], src: str, noise: int) -> None:
    dst.weight.copy_(sd[f"{src}.conv.weight"][0])
    dst.affine.weight.copy_(sd[f"{src}.conv.modulation.weight"])
    dst.affine.bias.copy_(sd[f"{src}.conv.modulation.bias"])
    dst.bias.copy_(sd[f"{src}.activate.bias"])
    dst.noise_strength.copy_(sd[f"{src}.noise.weight"].reshape(()))
    dst.noise_const.copy_(sd[f"noises.noise_{noise}"][0, 0])


def _copy_torgb(dst: ToRGBLayer, sd: dict[str, torch.Tensor], src: str) -> None:
    dst.weight.copy_(sd[f"{src}.conv.weight"][0])
    dst.affine.weight.copy_(sd[f"{src}.conv.modulation.weight"])
    dst.affine.bias.copy_(sd[f"{src}.conv.modulation.bias"])
    dst.bias.copy_(sd[f"{src}.bias"].reshape(-1))


@torch.no_grad()
def nvidia_from_ours(gen: Generator, num_fp16_res: int = 0) -> StandInGenerator:
    """A stand-in NVIDIA generator holding exactly the weights of our `gen`."""
    c = gen.config
    g = StandInGenerator(z_dim=gen.z_dim, c_dim=0, w_dim=c.style_dim,
                         img_resolution=c.resolution, channels=tuple(c.channels or ()),
                         n_mlp=c.n_mlp, lr_multiplier=c.lr_mlp, channel_base=c.channel_base,
                         channel_max=c.channel_max, num_fp16_res=num_fp16_res,
                         conv_clamp=c.conv_clamp)
    sd = gen.state_dict()
    for i in range(c.n_mlp):
        fc = getattr(g.mapping, f"fc{i}")
        fc.weight.copy_(sd[f"style.{i + 1}.weight"])
        fc.bias.copy_(sd[f"style.{i + 1}.bias"])
    g.mapping.w_avg.copy_(gen.w_avg)
    syn = g.synthesis
    syn.b4.const.copy_(sd["input.input"][0])
    _copy_styled(syn.b4.conv1, sd, "conv1", 0)
    _copy_torgb(syn.b4.torgb, sd, "to_rgb1")
    for k in range(c.log_size - 2):
        block = getattr(syn, f"b{2 ** (k + 3)}")
        _copy_styled(block.conv0, sd, f"convs.{2 * k}", 2 * k + 1)
        _copy_styled(block.conv1, sd, f"convs.{2 * k + 1}", 2 * k + 2)
        _copy_torgb(block.torgb, sd, f"to_rgbs.{k}")
    return g.eval().requires_grad_(False)


# --------------------------------------------------------------------------- pickling

_STAND_IN_MODULES = ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util",
                     "training", "training.networks")


@contextlib.contextmanager
def nvidia_modules() -> Iterator[None]:
    """Put the stand-ins in sys.modules under NVIDIA's module paths (pickle looks functions
    and classes up there by name), and take them out again afterwards."""
    saved = {name: sys.modules.get(name) for name in _STAND_IN_MODULES}
    mods = {name: types.ModuleType(name) for name in _STAND_IN_MODULES}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDict
    mods["dnnlib"].EasyDict = EasyDict
    for cls in _STAND_INS:
        setattr(mods["training.networks"], cls.__name__, cls)
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def write_nvidia_pickle(path: Path, snapshot: dict[str, Any], protocol: int = 4,
                        module_src: str | None = None) -> Path:
    """pickle.dump a training-snapshot-like dict as NVIDIA's code would."""
    global _module_src
    previous = _module_src
    if module_src is not None:
        _module_src = module_src
    try:
        with nvidia_modules(), open(path, "wb") as f:
            pickle.dump(snapshot, f, protocol=protocol)
    finally:
        _module_src = previous
    return path


def snapshot(g_ema: nn.Module, **extra: Any) -> dict[str, Any]:
    """The top-level dict of a training snapshot (we only ever read G_ema)."""
    snap: dict[str, Any] = dict(training_set_kwargs=dict(path="dataset.zip", resolution=16),
                                G_ema=g_ema)
    snap.update(extra)
    return snap
