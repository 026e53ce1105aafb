"""Inversion: find the W+ latent whose image reproduces a given picture.

Optimisation in W+, as in the StyleGAN2 projector, with what this program has at hand:

- pixel loss (MSE) at several scales, so coarse layout and fine detail both pull;
- a perceptual loss: VGG16 features (LPIPS-like, channel-normalised) when torchvision's
  VGG16 weights are on this machine, otherwise the pack's CLIP image features; never a
  download in the middle of an inversion;
- optionally, a pull of the W+ rows toward their mean (latents far from W can edit poorly,
  e4e's observation); off by default: on the demo world it cost 0.7 dB and did not change
  how the inverted pictures edit;
- several starts: many random latents are scored against the target, the best few are
  optimised together and the best result per image is kept. Gradient descent rarely flips
  a discrete feature (a hat, glasses), so starting near the right one matters;
- the latent is optimised in units of the sampled w's spread (u = (w - mean) / std), so
  one learning rate suits any generator; noise is added to it early and decays (the
  projector's trick for escaping poor minima); the rate ramps up, then down (cosine).

`invert` yields `InversionProgress` (with a preview every few steps) and finally an
`InversionResult`; a set cancel token raises `Cancelled`. Encoder checkpoints (e4e,
ReStyle) would fit as another way to produce the starting latent (`initial_wplus`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Generator as Job
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from editor.core.errors import InversionDivergedError
from editor.core.generator import Generator
from editor.core.image_metrics import psnr, ssim
from editor.core.lazy_imports import import_heavy

from .global_directions import EtaClock, ImageTextEncoder, Progress, suggested_batch_size
from .inversion_settings import PERCEPTUAL_KINDS, InversionSettings
from .precompute import Cancelled, CancelToken, is_cancelled

CANDIDATE_RESOLUTION = 128  # the most the candidate search renders and scores
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights, as its cache names them


@dataclass
class InversionProgress(Progress):
    loss: float | None = None
    preview: torch.Tensor | None = None  # (B, 3, R, R) in [-1, 1], the best start per image


@dataclass(frozen=True)
class Quality:
    psnr_db: float
    ssim: float
    clip_similarity: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InversionResult:
    wplus: torch.Tensor             # (B, n_latent, w_dim), on the CPU
    images: torch.Tensor            # (B, 3, R, R) in [-1, 1], what the latents draw
    quality: list[Quality]
    perceptual: str                 # which perceptual loss was used
    seconds: float
    settings: InversionSettings = field(default_factory=InversionSettings)


# ----------------------------------------------------------------------------- losses

class PerceptualLoss:
    """Distance between images in a feature space: (B,) per image, differentiable in x."""

    name = "none"

    def prepare(self, target: torch.Tensor) -> None:
        """Called once with the targets (B, 3, H, W) in [-1, 1]."""

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x: images; index[i]: which target x[i] is compared with."""
        return self.distance(self.features(x), index)

    def features(self, x: torch.Tensor) -> object:
        """What `distance` compares, computed once per image (nothing, here)."""
        return None

    def prepared_for(self, target: torch.Tensor) -> PerceptualLoss:
        """This loss prepared on other targets (the same pictures at another size), sharing
        its network; `self` keeps its own targets."""
        other = copy.copy(self)  # prepare() rebinds `target`, never changes it in place
        other.prepare(target)
        return other

    def distance(self, fx, index: torch.Tensor, rows: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Per pair i: features row rows[i] (default i) against target index[i]."""
        return torch.zeros(len(index), device=index.device)


class ClipFeatureLoss(PerceptualLoss):
    """1 - cosine similarity of CLIP image embeddings."""

    name = "clip"

    def __init__(self, clip: ImageTextEncoder):
        self.clip = clip
        self.target: torch.Tensor | None = None

    def prepare(self, target: torch.Tensor) -> None:
        with torch.no_grad():
            self.target = self.clip.encode_images(target).float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_images(x).float()

    def distance(self, fx, index, rows=None):
        assert self.target is not None, "prepare() first"
        e = fx if rows is None else fx[rows]
        return 1 - (e * self.target.to(e.device)[index]).sum(-1)


class VggFeatureLoss(PerceptualLoss):
    """LPIPS without its learned weights: unit-normalised VGG16 activations at the five
    ReLU stages, squared differences averaged per stage, summed."""

    name = "vgg"
    STAGE_ENDS = (4, 9, 16, 23, 30)  # after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3

    def __init__(self, weights: str | Path, device: torch.device | str = "cpu"):
        # not a plain import: the render worker may be importing torchvision (its CLIP's)
        torchvision = import_heavy("torchvision")
        vgg = torchvision.models.vgg16()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        vgg.load_state_dict(state)
        # not `self.features`: that would hide the method features()
        self.net = vgg.features[: self.STAGE_ENDS[-1]].eval().requires_grad_(False)
        self.net.to(device)
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
        self.target: list[torch.Tensor] = []

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) * 0.5 - self.mean) / self.std
        if x.shape[-1] < 64:  # five poolings need room
            x = F.interpolate(x, size=64, mode="bilinear", align_corners=False)
        out, start = [], 0
        for end in self.STAGE_ENDS:
            x = self.net[start:end](x)
            out.append(x / (x.norm(dim=1, keepdim=True) + 1e-8))
            start = end
        return out

    def prepare(self, target: torch.Tensor) -> None:
        with torch.no_grad():
            self.target = self._stages(target)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._stages(x)

    def distance(self, fx, index, rows=None):
        if rows is None:
            return _stage_distances(fx, [t[index] for t in self.target])
        # One target at a time against every feature row, then the pairs picked out:
        # fx[rows] would copy each candidate's full-size maps once per target.
        total = torch.empty(len(index), device=index.device)
        for i in index.unique().tolist():
            pairs = (index == i).nonzero().squeeze(1)
            to_target = _stage_distances(fx, [t[i:i + 1] for t in self.target])
            total[pairs] = to_target[rows[pairs]]
        return total


def _stage_distances(fx: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Per feature row: squared differences to its target row (or to one target, which
    broadcasts) summed over channels, averaged over positions, summed over the stages."""
    total = torch.zeros(len(fx[0]), device=fx[0].device)
    for f, t in zip(fx, targets, strict=True):
        total = total + (f - t).square().sum(1).flatten(1).mean(1)
    return total


def local_vgg16_weights() -> Path | None:
    """torchvision's VGG16 weights if this machine has them (never downloads)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    return path if path.is_file() else None


def make_perceptual(kind: str, clip: ImageTextEncoder | None,
                    device: torch.device | str = "cpu") -> PerceptualLoss:
    """The perceptual loss to use: "auto" prefers VGG16 when its weights are here, then
    CLIP, then none."""
    if kind not in PERCEPTUAL_KINDS:
        raise ValueError(f"perceptual must be one of {PERCEPTUAL_KINDS}, got {kind!r}")
    vgg = local_vgg16_weights() if kind in ("auto", "vgg") else None
    if kind == "vgg" and vgg is None:
        raise FileNotFoundError(
            f"the VGG perceptual loss needs torchvision's VGG16 weights ({VGG16_FILE}) in "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'}; choose the CLIP loss instead")
    if vgg is not None:
        return VggFeatureLoss(vgg, device)
    if kind in ("auto", "clip") and clip is not None:
        return ClipFeatureLoss(clip)
    if kind == "clip":
        raise ValueError("the CLIP perceptual loss needs a CLIP model")
    return PerceptualLoss()


def pixel_loss(x: torch.Tensor, target: torch.Tensor, scales: Sequence[int]) -> torch.Tensor:
    """(B,) mean squared error averaged over the scales (downsampling factors)."""
    total = torch.zeros(x.shape[0], device=x.device)
    for s in scales:
        a, b = (x, target) if s == 1 else (F.avg_pool2d(x, s), F.avg_pool2d(target, s))
        total = total + (a - b).square().flatten(1).mean(1)
    return total / len(scales)


# ----------------------------------------------------------------------------- targets

def target_tensor(rgb, resolution: int) -> torch.Tensor:
    """A square (H, W, 3) uint8 array (or a batch of them) -> (B, 3, R, R) in [-1, 1]."""
    t = torch.as_tensor(rgb)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8:
        raise ValueError(f"images must be (H, W, 3) uint8, got {tuple(t.shape)} {t.dtype}")
    if t.shape[1] != t.shape[2]:
        raise ValueError(f"crop the image to a square first (it is {t.shape[2]}x{t.shape[1]})")
    x = t.permute(0, 3, 1, 2).float() / 127.5 - 1
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=resolution, mode="area" if x.shape[-1] > resolution
                          else "bicubic", align_corners=None if x.shape[-1] > resolution
                          else False).clamp(-1, 1)
    return x.contiguous()


# ----------------------------------------------------------------------------- optimisation

@dataclass
class _LatentScale:
    mean: torch.Tensor  # (w_dim,)
    std: torch.Tensor   # (w_dim,)


@torch.no_grad()
def _latent_scale(gen: Generator, n: int, seed: int) -> _LatentScale:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, gen.z_dim, generator=g).to(gen.w_avg.device)
    w = gen.map_z(z)
    return _LatentScale(w.mean(0), w.std(0).clamp_min(1e-6))


@torch.no_grad()
def _best_candidates(gen: Generator, target: torch.Tensor, perceptual: PerceptualLoss,
                     s: InversionSettings, cancel: CancelToken
                     ) -> Job[InversionProgress, None, torch.Tensor]:
    """(B, starts, w_dim): w_avg and random (truncated) latents ranked per target by the
    loss, scored at up to CANDIDATE_RESOLUTION so that big generators stay affordable.
    Yields progress after each chunk: at 1024 px on a CPU the search takes minutes, which
    the job showed as one unchanging line."""
    ws = [gen.w_avg[None].float()]
    if s.candidates:
        g = torch.Generator().manual_seed(s.seed + 1)
        z = torch.randn(s.candidates, gen.z_dim, generator=g).to(target.device)
        ws.append(gen.truncate(gen.map_z(z), s.candidate_psi))
    w = torch.cat(ws)
    res = min(gen.img_resolution, CANDIDATE_RESOLUTION)
    small_target = target if target.shape[-1] == res else F.interpolate(
        target, size=res, mode="area")
    if s.perceptual_weight and perceptual.name != "none" and res != target.shape[-1]:
        # The perceptual distance at the scoring size too, against the targets' features
        # at that size: 16 candidates upsampled to 1024 px took 16 GiB of VGG16 maps.
        perceptual = perceptual.prepared_for(small_target)
    scores, scored = [], 0
    for chunk in w.split(16):
        if is_cancelled(cancel):
            raise Cancelled()
        img = gen.synthesize(gen.styles(chunk), max_res=res)
        scores.append(_candidate_scores(img, small_target, perceptual, s))
        scored += len(chunk)
        yield InversionProgress(0, _steps_total(s), f"choosing starting points ({scored} "
                                                    f"of {len(w)} scored)")
    best = torch.cat(scores, 1).topk(min(s.starts, w.shape[0]), dim=1, largest=False).indices
    return w[best]  # (B, starts, w_dim)


def _candidate_scores(img: torch.Tensor, target: torch.Tensor, perceptual: PerceptualLoss,
                      s: InversionSettings) -> torch.Tensor:
    """(B, C): the loss of every candidate image against every target, both the same size;
    each candidate's features are computed once."""
    b, c = target.shape[0], img.shape[0]
    rows = torch.arange(c, device=target.device).repeat(b)
    idx = torch.arange(b, device=target.device).repeat_interleave(c)
    loss = pixel_loss(img[rows], target[idx], s.pixel_scales)
    if s.perceptual_weight and perceptual.name != "none":
        loss = loss + s.perceptual_weight * perceptual.distance(
            perceptual.features(img), idx, rows)
    return loss.view(b, c)


def suggested_pictures_per_batch(gen: Generator, starts: int, most: int = 16,
                                 budget_mb: int = 8192) -> int:
    """How many pictures to invert together when the user does not say: as many as one
    optimisation step fits in `budget_mb` (each picture optimises `starts` latents), at most
    `most`. A step keeps every layer's activations for the backward pass, two to three times
    what a render needs (measured at 1024 px: 1.9 GiB for one latent, 5.5 GiB for two), so
    this gives 16 at 64 px and 1 at 1024 px, where 16 pictures x 2 starts need tens of GB."""
    latents = suggested_batch_size(gen, budget_mb=budget_mb // 3, most=most * starts)
    return max(1, min(most, latents // starts))


def _steps_total(s: InversionSettings) -> int:
    """The total of the progress before the first step: with --steps 0 (the best start,
    not optimised) a total of 0 read as all done while the starts were still scored."""
    return max(1, s.steps)


def _lr_at(s: InversionSettings, t: float) -> float:
    ramp = min(1.0, (1 - t) / s.ramp_down) if s.ramp_down > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if s.ramp_up > 0:
        ramp *= min(1.0, t / s.ramp_up)
    return s.lr * ramp


def invert(
    gen: Generator,
    target: torch.Tensor,
    settings: InversionSettings | None = None,
    perceptual: PerceptualLoss | None = None,
    clip: ImageTextEncoder | None = None,
    initial_wplus: torch.Tensor | None = None,
    cancel: CancelToken = None,
) -> Iterator[InversionProgress | InversionResult]:
    """Invert a batch of targets (B, 3, R, R) in [-1, 1] at the generator's resolution.

    `perceptual` defaults to `make_perceptual(settings.perceptual, clip)`; `clip`, when
    given, also scores the result (CLIP similarity). `initial_wplus` (B, n_latent, w_dim)
    replaces the candidate search (an encoder's output, or a previous inversion)."""
    s = settings or InversionSettings()
    t0 = time.perf_counter()
    device = gen.w_avg.device
    R = gen.img_resolution
    if target.ndim != 4 or target.shape[1] != 3 or target.shape[-2:] != (R, R):
        raise ValueError(f"targets must be (B, 3, {R}, {R}) for this generator, got "
                         f"{tuple(target.shape)}")
    target = target.to(device=device, dtype=torch.float32)
    B = target.shape[0]
    if perceptual is None:
        perceptual = make_perceptual(s.perceptual, clip, device)
    perceptual.prepare(target)
    use_perceptual = s.perceptual_weight > 0 and perceptual.name != "none"
    scale = _latent_scale(gen, 4096, s.seed)

    yield InversionProgress(0, _steps_total(s), "choosing starting points")
    if initial_wplus is not None:
        if tuple(initial_wplus.shape) != (B, gen.n_latent, gen.w_dim):
            raise ValueError(f"initial W+ must be ({B}, {gen.n_latent}, {gen.w_dim})")
        start = initial_wplus.to(device).float()[:, None]  # (B, 1, L, D)
    else:
        start = yield from _best_candidates(gen, target, perceptual, s, cancel)
        start = start[:, :, None].expand(-1, -1, gen.n_latent, -1)  # (B, S, L, D)
    S = start.shape[1]
    index = torch.arange(B, device=device).repeat_interleave(S)
    u = ((start.reshape(B * S, gen.n_latent, gen.w_dim) - scale.mean) / scale.std).clone()
    u.requires_grad_(True)
    opt = torch.optim.Adam([u], lr=s.lr, betas=(0.9, 0.999))
    noise_gen = torch.Generator(device=device).manual_seed(s.seed + 2)
    tgt = target[index]

    def loss_of(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = gen.synthesize(gen.styles(w))
        loss = pixel_loss(img, tgt, s.pixel_scales)
        if use_perceptual:
            loss = loss + s.perceptual_weight * perceptual(img, index)
        return loss, img

    def wplus_of(u_: torch.Tensor) -> torch.Tensor:
        return scale.mean + u_ * scale.std

    clock = EtaClock(0, s.steps)
    last_loss = ""  # the loss as last read, kept in the message between reads
    for step in range(s.steps):
        if is_cancelled(cancel):
            raise Cancelled()
        t = step / max(1, s.steps)
        for group in opt.param_groups:
            group["lr"] = _lr_at(s, t)
        noise_strength = s.initial_noise * max(0.0, 1 - t / s.noise_ramp) ** 2 \
            if s.noise_ramp > 0 else 0.0
        # One draw per start, shared by every picture: a picture's result does not depend
        # on which others are inverted with it, or where it sits in the batch.
        noisy = u + noise_strength * torch.randn(
            (S, *u.shape[1:]), generator=noise_gen, device=device).repeat(B, 1, 1) \
            if noise_strength > 0 else u
        loss, img = loss_of(wplus_of(noisy))
        spread = (u - u.mean(1, keepdim=True)).square().mean((1, 2))
        total = loss + s.wplus_spread_weight * spread
        opt.zero_grad(set_to_none=True)
        total.sum().backward(inputs=[u])  # no gradients into the shared models
        opt.step()
        if (step + 1) % max(1, s.preview_every) == 0 or step + 1 == s.steps:
            _refuse_divergence(loss, u)  # checked where the loss is read anyway (no extra sync)
            best = loss.detach().view(B, S).argmin(1)
            preview = img.detach().view(B, S, *img.shape[1:])[torch.arange(B), best].cpu()
            mean_loss = float(loss.detach().view(B, S).min(1).values.mean())
            last_loss = f", loss {mean_loss:.4f}"
            yield InversionProgress(step + 1, s.steps, f"step {step + 1}/{s.steps}{last_loss}",
                                    eta_s=clock.eta_s(step + 1), loss=mean_loss,
                                    preview=preview)
        else:
            # the count alone (reading the loss would wait for a GPU): a 1024 px step takes
            # seconds on a CPU, where a bar moving only every preview_every steps sat still
            yield InversionProgress(step + 1, s.steps, f"step {step + 1}/{s.steps}{last_loss}",
                                    eta_s=clock.eta_s(step + 1))

    with torch.no_grad():
        w_all = wplus_of(u.detach())
        final_loss, img = loss_of(w_all)
        _refuse_divergence(final_loss, w_all)
        best = final_loss.view(B, S).argmin(1)
        pick = torch.arange(B, device=device) * S + best
        wplus, images = w_all[pick].cpu(), img[pick].cpu()
        quality = measure_quality(images, target.cpu(), clip)
    yield InversionResult(wplus=wplus, images=images, quality=quality,
                          perceptual=perceptual.name if use_perceptual else "none",
                          seconds=time.perf_counter() - t0, settings=s)


def _refuse_divergence(loss: torch.Tensor, latents: torch.Tensor) -> None:
    """Too high a learning rate sends the latents to inf or NaN: a clear error, rather than
    NaN pictures and latents no recipe can hold."""
    if not (torch.isfinite(loss).all() and torch.isfinite(latents).all()):
        # no advice here: the window has no learning rate to lower, the CLI adds its own
        raise InversionDivergedError("the inversion diverged (its loss became infinite or "
                                     "NaN)")


@torch.no_grad()
def measure_quality(images: torch.Tensor, target: torch.Tensor,
                    clip: ImageTextEncoder | None = None) -> list[Quality]:
    """PSNR, SSIM and (with a CLIP) the cosine similarity of CLIP embeddings, per image."""
    p, q = psnr(images, target), ssim(images, target)
    sim = None
    if clip is not None:
        a, b = clip.encode_images(images).float(), clip.encode_images(target).float()
        sim = (a * b).sum(-1).cpu()
    return [Quality(float(p[i]), float(q[i]), None if sim is None else float(sim[i]))
            for i in range(images.shape[0])]


def run_inversion(*args, **kwargs) -> InversionResult:
    """`invert` to its end, without progress (scripts and tests)."""
    result = None
    for item in invert(*args, **kwargs):
        if isinstance(item, InversionResult):
            result = item
    assert result is not None
    return result
