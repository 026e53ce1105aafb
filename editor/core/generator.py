"""StyleGAN2 generator (config-f family) in plain PyTorch, driven through style space.

Read top to bottom: resampling primitives, equalized-LR layers, the modulated convolution,
styled layers, then the Generator. Module and parameter names follow rosinality's layout
(`style`, `input`, `conv1`, `to_rgb1`, `convs`, `to_rgbs`, `noises.noise_i`) so that the
checkpoints StyleCLIP and StyleGAN-NADA ship load with strict key matching.

Unlike the reference code, every styled layer takes its *style vector* s (the output of its
affine/modulation layer), not w: `styles(w_plus)` computes the style code, and
`synthesize(style_code)` renders from it. Editing in style space is then plain arithmetic.
No compiled extensions: runs on CPU and CUDA, fp32 and (on CUDA) fp16.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .style_code import StyleCode, StyleLayerSpec

NoiseMode = Literal["const", "random", "none"]
LRELU_GAIN = math.sqrt(2.0)
DEFAULT_BLUR_KERNEL = (1, 3, 3, 1)


# StyleGAN2 models go up to 1024 px (a few 2048); the noise buffers alone of a 32768 px
# generator would take 4 GB, so a checkpoint claiming more is refused before any memory.
MAX_RESOLUTION = 4096


def style_layer_names(n_blocks: int) -> list[str]:
    """The style layers' names in generator order (rosinality's modules, StyleCLIP's
    order): conv1, to_rgb1, then for each upsampling block k convs.2k, convs.2k+1,
    to_rgbs.k."""
    names = ["conv1", "to_rgb1"]
    for k in range(n_blocks):
        names += [f"convs.{2 * k}", f"convs.{2 * k + 1}", f"to_rgbs.{k}"]
    return names


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a StyleGAN2 generator. `channels` maps log2(resolution) order:
    channels[i] is the feature count at resolution 4 * 2**i. When omitted it comes from
    channel_base / channel_max as in NVIDIA's code (channel_base = 16384 x channel
    multiplier, channel_max = 512 reproduces rosinality's table)."""

    resolution: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    lr_mlp: float = 0.01
    blur_kernel: tuple[int, ...] = DEFAULT_BLUR_KERNEL
    conv_clamp: float | None = None  # NVIDIA's activation clamp (256 in ADA configs)
    num_fp16_res: int = 0  # how many top resolutions NVIDIA ran in fp16 (informational)
    channels: tuple[int, ...] | None = None
    z_dim: int | None = None  # defaults to style_dim

    def __post_init__(self) -> None:
        self._check_types()
        log = math.log2(self.resolution) if self.resolution > 0 else -1
        if self.resolution < 4 or log != int(log):
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if self.resolution > MAX_RESOLUTION:  # a file claiming more is damaged or hostile
            raise ValueError(f"resolution {self.resolution} is above the largest supported "
                             f"({MAX_RESOLUTION})")
        if self.channels is None:
            chans = tuple(
                min(self.channel_base // (4 * 2**i), self.channel_max)
                for i in range(int(log) - 1)
            )
            object.__setattr__(self, "channels", chans)
        elif len(self.channels) != int(log) - 1:
            raise ValueError(
                f"channels needs {int(log) - 1} entries for resolution {self.resolution}, "
                f"got {len(self.channels)}"
            )
        object.__setattr__(self, "blur_kernel", tuple(self.blur_kernel))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def _check_types(self) -> None:
        """Every field a number of the right kind and range: a config from a file (our
        JSON, a pickle's kwargs) that says "32" or NaN failed deep inside the network with
        a TypeError, or built a generator whose every output was NaN."""
        # checked, not converted: the values go into the content hash as they are
        def count(name: str, value: object, least: int) -> None:
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            if isinstance(value, bool) or not whole or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r:.40}")

        def positive(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r:.40}")

        for name, least in (("resolution", 4), ("style_dim", 1), ("n_mlp", 1),
                            ("channel_base", 1), ("channel_max", 1), ("num_fp16_res", 0)):
            count(name, getattr(self, name), least)
        if self.z_dim is not None:
            count("z_dim", self.z_dim, 1)
        positive("lr_mlp", self.lr_mlp)
        if self.conv_clamp is not None:
            positive("conv_clamp", self.conv_clamp)
        kernel = self.blur_kernel
        if isinstance(kernel, (str, bytes)) or not isinstance(kernel, (list, tuple)) or not (
                kernel and all(not isinstance(k, bool) and isinstance(k, (int, float))
                               and math.isfinite(k) for k in kernel)) or sum(kernel) == 0:
            raise ValueError(f"blur_kernel must be a list of finite numbers with a non-zero "
                             f"sum, got {kernel!r:.40}")
        if self.channels is not None:
            if isinstance(self.channels, (str, bytes)) or not isinstance(
                    self.channels, (list, tuple)):
                raise ValueError(f"channels must be a list of whole numbers, got "
                                 f"{self.channels!r:.40}")
            for c in self.channels:
                count("channels", c, 1)

    @classmethod
    def rosinality(
        cls, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2
    ) -> GeneratorConfig:
        return cls(
            resolution=size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_base=16384 * channel_multiplier,
            channel_max=512,
        )

    @property
    def log_size(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def n_latent(self) -> int:
        return self.log_size * 2 - 2

    def channels_at(self, resolution: int) -> int:
        assert self.channels is not None
        return self.channels[int(math.log2(resolution)) - 2]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blur_kernel"] = list(self.blur_kernel)
        d["channels"] = list(self.channels or ())
        return d

    def identity(self) -> dict:
        """What decides the computation (for content hashes): the derived channel table,
        not the base/max knobs that produced it."""
        return {"resolution": self.resolution, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "lr_mlp": self.lr_mlp, "blur_kernel": list(self.blur_kernel),
                "conv_clamp": self.conv_clamp, "channels": list(self.channels or ()),
                "z_dim": self.z_dim or self.style_dim}

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator config fields: {sorted(unknown)}")
        d = dict(d)
        for key in ("blur_kernel", "channels"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


# --------------------------------------------------------------------------- resampling


def make_kernel(k: tuple[int, ...] | torch.Tensor) -> torch.Tensor:
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter, downsample: plain-torch version of the
    reference CUDA op. Same padding on both axes; negative pads crop."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0) : hh - max(-p1, 0), max(-p0, 0) : ww - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class Upsample(nn.Module):
    """2x upsampling with a FIR filter; used on the skip (toRGB) path."""

    def __init__(self, kernel: tuple[int, ...], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    def __init__(self, kernel: tuple[int, ...], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor**2
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


# --------------------------------------------------------------------------- equalized LR


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer whose He scale is applied at run time, so checkpoints hold raw N(0,1)
    parameters and lr_mul gives the mapping network its slower learning rate."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            if bias is not None:
                out = out + bias
            return F.leaky_relu(out, 0.2) * LRELU_GAIN
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]}"


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU + sqrt(2) gain, optionally clamped (NVIDIA's conv_clamp)."""

    def __init__(self, channels: int, clamp: float | None = None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), 0.2) * LRELU_GAIN
        if self.clamp is not None:
            x = x.clamp(-self.clamp, self.clamp)
        return x


# --------------------------------------------------------------------------- modulated conv


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per input channel by the style s, then
    (optionally) demodulated. `modulation` is the affine layer w -> s."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: tuple[int, ...] = DEFAULT_BLUR_KERNEL,
    ):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)

    def forward(self, x: torch.Tensor, style: torch.Tensor, out_gain: float = 1.0
                ) -> torch.Tensor:
        """`out_gain` scales the output for free (folded into the demodulation factors or
        the weights), for callers that fuse a positive gain into what follows."""
        if x.shape[0] > 1:
            return self._forward_shared_weight(x, style, out_gain)
        return self._forward_grouped(x, style, out_gain)

    def _forward_shared_weight(self, x: torch.Tensor, style: torch.Tensor,
                               out_gain: float = 1.0) -> torch.Tensor:
        """Batches: scale activations by s, convolve with the one shared weight, then scale
        outputs by the demodulation factors. Equal to the grouped form (the conv is linear
        per channel) and several times faster for a batch on CPU."""
        weight = (self.scale * self.weight[0]).to(x.dtype)  # (out, in, k, k)
        style = style.to(x.dtype)
        x = x * style[:, :, None, None]
        if x.device.type == "cpu":
            # oneDNN's convolutions run faster on channels-last activations for a batch:
            # whole syntheses 1.1x (batch 2) to 1.4x (batch 4-64) faster on a 2-core CPU,
            # 1.3x for 1024 px at batch 2, and training steps 1.16x; at batch 1 (the grouped
            # form below) it was slower, and CUDA was not measured
            x = x.contiguous(memory_format=torch.channels_last)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            w2 = weight.float().pow(2).sum([2, 3])  # (out, in)
            demod = torch.rsqrt(style.float().pow(2) @ w2.t() + 1e-8) * out_gain  # (B, out)
            demod = demod.to(out.dtype)[:, :, None, None]
            # in place when no gradient is kept: one pass over the output, no new tensor
            out = out * demod if torch.is_grad_enabled() else out.mul_(demod)
        elif out_gain != 1.0:
            out = out * out_gain
        return out

    def _forward_grouped(self, x: torch.Tensor, style: torch.Tensor, out_gain: float = 1.0
                         ) -> torch.Tensor:
        batch, in_ch, h, w = x.shape
        k = self.kernel_size
        weight = self.scale * self.weight * style.view(batch, 1, in_ch, 1, 1).to(self.weight.dtype)
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8) * out_gain
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        elif out_gain != 1.0:
            weight = weight * out_gain
        weight = weight.to(x.dtype)
        x = x.reshape(1, batch * in_ch, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channel, in_ch, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, out.shape[2], out.shape[3])

    def extra_repr(self) -> str:
        return f"{self.in_channel} -> {self.out_channel}, k={self.kernel_size}, up={self.upsample}"


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class StyledConv(nn.Module):
    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: tuple[int, ...] = DEFAULT_BLUR_KERNEL,
        clamp: float | None = None,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel, clamp=clamp)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None):
        if torch.is_grad_enabled():
            return self.activate(self.noise(self.conv(x, style), noise))
        return self._forward_fused(x, style, noise)

    def _forward_fused(self, x: torch.Tensor, style: torch.Tensor,
                       noise: torch.Tensor | None) -> torch.Tensor:
        """The same without autograd, in two passes over the output instead of five:
        the leaky ReLU is positively homogeneous, so its gain moves into the convolution
        (free) and onto the small noise + bias term, and both steps run in place."""
        gain = LRELU_GAIN
        out = self.conv(x, style, out_gain=gain)
        shift = self.activate.bias.to(out.dtype).view(1, -1, 1, 1)
        if noise is not None:
            shift = shift + self.noise.weight.to(out.dtype) * noise.to(out.dtype)
        out.add_(shift * gain)
        F.leaky_relu(out, 0.2, inplace=True)
        if self.activate.clamp is not None:
            out.clamp_(-self.activate.clamp, self.activate.clamp)
        return out


class ToRGB(nn.Module):
    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: tuple[int, ...] = DEFAULT_BLUR_KERNEL,
        clamp: float | None = None,
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.clamp = clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None):
        out = self.conv(x, style) + self.bias.to(x.dtype)
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            out = out + self.upsample(skip).to(out.dtype)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


# --------------------------------------------------------------------------- generator


@dataclass
class SynthesisState:
    """Activations between two style layers: features x and the RGB skip image so far."""

    x: torch.Tensor
    skip: torch.Tensor | None


@dataclass
class _Layer:
    spec: StyleLayerSpec
    module: nn.Module = field(repr=False)


class Generator(nn.Module):
    """StyleGAN2 generator with a named style-space API.

    mapping(z, psi, cutoff) -> W+ (B, n_latent, style_dim)
    styles(w_plus)          -> StyleCode (every affine output, rosinality order)
    synthesize(style_code, noise_mode, max_res) -> image in [-1, 1] (B, 3, R, R)
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        c = config
        self.style_dim = c.style_dim
        self.n_latent = c.n_latent
        self.log_size = c.log_size
        self.num_layers = (c.log_size - 2) * 2 + 1

        layers: list[nn.Module] = [PixelNorm()]
        layers += [
            EqualLinear(c.z_dim or c.style_dim if i == 0 else c.style_dim, c.style_dim,
                        lr_mul=c.lr_mlp, activation=True)
            for i in range(c.n_mlp)
        ]
        self.style = nn.Sequential(*layers)

        ch4 = c.channels_at(4)
        self.input = ConstantInput(ch4)
        self.conv1 = StyledConv(ch4, ch4, 3, c.style_dim, blur_kernel=c.blur_kernel,
                                clamp=c.conv_clamp)
        self.to_rgb1 = ToRGB(ch4, c.style_dim, upsample=False, clamp=c.conv_clamp)

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, res, res))
        in_ch = ch4
        for i in range(3, c.log_size + 1):
            out_ch = c.channels_at(2**i)
            self.convs.append(StyledConv(in_ch, out_ch, 3, c.style_dim, upsample=True,
                                         blur_kernel=c.blur_kernel, clamp=c.conv_clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, c.style_dim,
                                         blur_kernel=c.blur_kernel, clamp=c.conv_clamp))
            self.to_rgbs.append(ToRGB(out_ch, c.style_dim, blur_kernel=c.blur_kernel,
                                      clamp=c.conv_clamp))
            in_ch = out_ch

        # Truncation anchor; not part of the rosinality state dict (it lives beside it as
        # `latent_avg`), so it is non-persistent and the checkpoint loaders fill it.
        self.register_buffer("w_avg", torch.zeros(c.style_dim), persistent=False)
        self._style_layers = self._build_style_layers()

    # ----------------------------------------------------------------- vocabulary
    @property
    def z_dim(self) -> int:
        return self.config.z_dim or self.style_dim

    @property
    def w_dim(self) -> int:
        return self.style_dim

    @property
    def num_ws(self) -> int:
        return self.n_latent

    @property
    def img_resolution(self) -> int:
        return self.config.resolution

    def _build_style_layers(self) -> list[_Layer]:
        """Style layers in the order of `style_layer_names`. w_index is the W+ row each
        uses."""
        out: list[_Layer] = []
        names = iter(style_layer_names(len(self.to_rgbs)))

        def add(mod: nn.Module, res: int, torgb: bool, w_index: int, noise: int):
            in_ch = mod.conv.in_channel  # type: ignore[union-attr]
            spec = StyleLayerSpec(name=next(names), channels=in_ch, resolution=res,
                                  is_torgb=torgb, w_index=w_index, noise_index=noise)
            out.append(_Layer(spec, mod))

        add(self.conv1, 4, False, 0, 0)
        add(self.to_rgb1, 4, True, 1, -1)
        for k in range(len(self.to_rgbs)):
            res = 2 ** (k + 3)
            add(self.convs[2 * k], res, False, 2 * k + 1, 2 * k + 1)
            add(self.convs[2 * k + 1], res, False, 2 * k + 2, 2 * k + 2)
            add(self.to_rgbs[k], res, True, 2 * k + 3, -1)
        return out

    @property
    def style_specs(self) -> tuple[StyleLayerSpec, ...]:
        return tuple(layer.spec for layer in self._style_layers)

    def style_layer(self, name: str) -> nn.Module:
        """The styled module for a layer name (for methods that train selected layers)."""
        for layer in self._style_layers:
            if layer.spec.name == name:
                return layer.module
        raise KeyError(f"no style layer named {name!r}")

    # ----------------------------------------------------------------- mapping
    def map_z(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> w (B, w_dim), no truncation."""
        return self.style(z)

    def truncate(self, w: torch.Tensor, psi: float = 1.0, cutoff: int | None = None
                 ) -> torch.Tensor:
        """Truncation toward w_avg. w is (B, w_dim) or W+ (B, n_latent, w_dim); with a W+ and
        a cutoff, only rows < cutoff are truncated (NVIDIA's truncation_cutoff)."""
        if psi == 1.0:
            return w
        avg = self.w_avg.to(w.dtype)
        if w.ndim == 3 and cutoff is not None:
            out = w.clone()
            out[:, :cutoff] = avg + psi * (w[:, :cutoff] - avg)
            return out
        return avg + psi * (w - avg)

    def mapping(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None
                ) -> torch.Tensor:
        """z (B, z_dim) -> truncated W+ (B, n_latent, w_dim)."""
        w = self.map_z(z)
        w_plus = w.unsqueeze(1).repeat(1, self.n_latent, 1)
        return self.truncate(w_plus, psi, cutoff if cutoff is not None else self.n_latent)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Estimate w_avg by sampling; used when a checkpoint carries none."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g).to(self.w_avg.device)
        return self.map_z(z).mean(0)

    # ----------------------------------------------------------------- style space
    def styles(self, w_plus: torch.Tensor) -> StyleCode:
        """W+ (B, n_latent, w_dim) or w (B, w_dim) -> style code (every affine output)."""
        if w_plus.ndim == 2:
            w_plus = w_plus.unsqueeze(1).repeat(1, self.n_latent, 1)
        if w_plus.shape[1] != self.n_latent:
            raise ValueError(f"W+ needs {self.n_latent} rows, got {w_plus.shape[1]}")
        tensors = [
            layer.module.conv.modulation(w_plus[:, layer.spec.w_index])  # type: ignore[union-attr]
            for layer in self._style_layers
        ]
        return StyleCode(self.style_specs, tensors)

    def make_noise(self, batch: int, mode: NoiseMode, device: torch.device,
                   generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        if mode == "none":
            return [None] * self.num_layers
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode != "random":
            raise ValueError(f"noise_mode must be const, random or none, got {mode!r}")
        out = []
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            out.append(torch.randn(batch, 1, res, res, device=device, generator=generator))
        return out

    def synthesize(
        self,
        style_code: StyleCode,
        noise_mode: NoiseMode = "const",
        max_res: int | None = None,
        noise: list[torch.Tensor | None] | None = None,
        fp16: bool = False,
        skips: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Render from a style code. max_res stops early and returns the skip-architecture
        RGB at that resolution (a cheap preview). fp16 uses autocast on CUDA only. If a
        list is given as `skips`, the RGB image of every resolution is appended to it
        (training recipes supervise each level)."""
        s = style_code.tensors
        if len(s) != len(self._style_layers):
            raise ValueError(f"style code has {len(s)} layers, generator has "
                             f"{len(self._style_layers)}")
        batch = s[0].shape[0]
        device = s[0].device
        stop = self.config.resolution if max_res is None else int(max_res)
        if stop < 4 or stop > self.config.resolution or stop & (stop - 1):
            raise ValueError(f"max_res must be a power of two in 4..{self.config.resolution}")
        if noise is None:
            noise = self.make_noise(batch, noise_mode, device)
        amp = (torch.autocast(device_type="cuda", dtype=torch.float16)
               if fp16 and device.type == "cuda" else contextlib.nullcontext())
        with amp:
            state = SynthesisState(self.input(batch), None)
            state = self.run_layers(style_code, state, 0, max_res=stop, noise=noise,
                                    skips=skips)
        return state.skip.float()

    def run_layers(
        self,
        style_code: StyleCode,
        state: SynthesisState,
        start: int,
        stop: int | None = None,
        max_res: int | None = None,
        noise: list[torch.Tensor | None] | None = None,
        skips: list[torch.Tensor] | None = None,
    ) -> SynthesisState:
        """Run style layers start..stop-1 (indices into style_specs) from an intermediate
        state. Methods that perturb one layer at a time (channel relevance) compute the
        state before that layer once and run only the rest."""
        s = style_code.tensors
        limit = self.config.resolution if max_res is None else max_res
        if noise is None:
            noise = self.make_noise(s[0].shape[0], "const", s[0].device)
        x, skip = state.x, state.skip
        for i in range(start, len(self._style_layers) if stop is None else stop):
            layer = self._style_layers[i]
            if layer.spec.resolution > limit:
                break
            if layer.spec.is_torgb:
                skip = layer.module(x, s[i], skip)
                if skips is not None:
                    skips.append(skip)
            else:
                x = layer.module(x, s[i], noise[layer.spec.noise_index])
        return SynthesisState(x, skip)

    def initial_state(self, batch: int) -> SynthesisState:
        return SynthesisState(self.input(batch), None)

    def forward(self, w_plus: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        return self.synthesize(self.styles(w_plus), noise_mode=noise_mode)

    def generate(self, z: torch.Tensor, psi: float = 1.0, noise_mode: NoiseMode = "const"
                 ) -> torch.Tensor:
        return self.synthesize(self.styles(self.mapping(z, psi)), noise_mode=noise_mode)


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent z for a seed, identical on every device (drawn on CPU)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, z_dim, generator=g)


def state_shapes(config: GeneratorConfig) -> dict[str, torch.Size]:
    """Name -> shape of every entry of a Generator's state dict, without allocating it (built
    on the meta device): what a checkpoint must hold, checked before the real build."""
    with torch.device("meta"):
        return {k: v.shape for k, v in Generator(config).state_dict().items()}
