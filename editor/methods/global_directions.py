"""StyleCLIP global directions: per-channel CLIP relevance of style space, and text edits.

Precompute (once per generator + CLIP pair):
  1. style statistics: per-channel mean and std of s over many sampled codes;
  2. relevance: for every editable (non-toRGB) channel c, over N base codes, set s_c to
     mean_c - k*std_c and mean_c + k*std_c, render both, CLIP-encode, normalise, take the
     difference, normalise, average over the images, normalise: one unit vector per channel.
Edit: dt = normalise(e(target) - e(neutral)); r = R dt; zero |r| < beta; r /= max|r|;
delta_s = r * std (toRGB channels stay 0); s' = s + alpha * delta_s.

The official code renders one channel and one image at a time. Here channels of one layer
are processed together over the base images in large batches, and the synthesis state
before that layer is computed once per image and reused, since a perturbation of layer l
leaves everything before l unchanged. Images are taken in chunks whose saved state fits a
memory budget (at 1024 px the state before a late layer is hundreds of MB per image).

Both computations are jobs (generators of Progress, then the result) that keep their
progress in a plain state object, so a caller can save it and resume after a stop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from editor.core.generator import MAX_RESOLUTION, Generator, SynthesisState, style_layer_names
from editor.core.style_code import StyleCode, StyleLayerSpec, flat_offsets, layer_of

WSampler = Callable[[torch.Tensor], torch.Tensor]


class ImageTextEncoder(Protocol):
    """What global directions need from CLIP (editor.core.clip_model.ClipModel)."""

    def encode_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor: ...

    def text_embedding(self, text: str, templates: Sequence[str] | None = None
                       ) -> torch.Tensor: ...


class NoChannelsError(ValueError):
    """No style channel passes the disentanglement threshold beta."""


class NonFiniteRelevance(ValueError):
    """A relevance step gave NaN or infinity (a perturbation that overflows float32)."""


@dataclass
class Progress:
    done: int
    total: int
    message: str = ""
    eta_s: float | None = None  # seconds left at the rate of this run so far

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


class EtaClock:
    """Estimates time left from the work done since this run started (resumed work, done
    before the clock started, does not count toward the rate)."""

    def __init__(self, done: float, total: float):
        self.start_done, self.total = done, total
        self.t0 = time.monotonic()

    def eta_s(self, done: float) -> float | None:
        ran = done - self.start_done
        elapsed = time.monotonic() - self.t0
        return (self.total - done) * elapsed / ran if ran > 0 and elapsed > 0 else None

    def progress(self, done: int, message: str) -> Progress:
        return Progress(done, self.total, message, self.eta_s(done))


class JobPhases:
    """One progress for a job of several phases (statistics, relevance, co-variation): a
    fraction of the whole job that never goes back, "step i of n: " in the message, and
    time left for the whole job.

    Each phase has a size in render-equivalents (one generator render plus one CLIP
    encode), which weighs it on the bar. A phase that reports its own time left measures
    the seconds per render-equivalent; the time left is then this phase's own plus the
    later phases' sizes at that rate (None until some phase has measured it). `guessed`
    phases (their size is an estimate, not a count of renders) do not measure it, but a
    time left they measure of their own is theirs (a discovery's labelling, guessed at
    the sampling's rate, sat at "about 20 s left" for minutes)."""

    SCALE = 10_000  # Progress.total of the whole job

    def __init__(self, phases: dict[str, float], guessed: set[str] | frozenset = frozenset()):
        self.units = {name: max(0.0, float(u)) for name, u in phases.items()}
        self.guessed = set(guessed)
        self.rate: float | None = None  # seconds per render-equivalent
        self.last = 0.0

    def add(self, name: str, units: float, guessed: bool = False) -> None:
        self.units[name] = max(0.0, float(units))
        if guessed:
            self.guessed.add(name)

    def skip(self, name: str) -> None:
        """The phase has nothing to do (its result was cached)."""
        self.units[name] = 0.0

    def report(self, name: str, p: Progress) -> Progress:
        names = list(self.units)
        i = names.index(name)
        total = sum(self.units.values())
        size = self.units[name]
        here = min(1.0, max(0.0, p.fraction))
        before = sum(self.units[n] for n in names[:i])
        fraction = (before + size * here) / total if total else 1.0
        self.last = max(self.last, min(1.0, fraction))  # never backwards
        return Progress(round(self.last * self.SCALE), self.SCALE, self._message(name, p),
                        self._eta(name, p, size * (1 - here), names[i + 1:]))

    def _message(self, name: str, p: Progress) -> str:
        steps = [n for n, u in self.units.items() if u > 0 or n == name]
        if len(steps) < 2:
            return p.message
        return f"step {steps.index(name) + 1} of {len(steps)}: {p.message}"

    def _eta(self, name: str, p: Progress, left_here: float, later: list[str]
             ) -> float | None:
        if p.eta_s is not None and name not in self.guessed and left_here > 0:
            self.rate = p.eta_s / left_here
        rate = self.rate
        if rate is None and p.eta_s is not None and left_here > 0:
            # no counted phase has measured (its work was cached: a discovery's kept
            # samples): the later phases at this one's own rate, a guess by a guess
            rate = p.eta_s / left_here
        later_units = sum(self.units[n] for n in later)
        if rate is None and (p.eta_s is None or later_units > 0):
            return None
        here = p.eta_s if p.eta_s is not None else left_here * rate
        return here + later_units * (rate or 0.0)


# --------------------------------------------------------------------------- statistics


@dataclass
class StyleStats:
    mean: torch.Tensor  # (C,) flat over all style layers
    std: torch.Tensor  # (C,)
    n_samples: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std,
                "n_samples": torch.tensor(self.n_samples)}

    @classmethod
    def from_dict(cls, d: dict) -> StyleStats:
        return cls(d["mean"], d["std"], int(d["n_samples"]))


@torch.no_grad()
def _sample_codes(gen: Generator, start: int, b: int, seed: int, psi: float,
                  g: torch.Generator, sample_w: WSampler | None) -> torch.Tensor:
    device = gen.w_avg.device
    if sample_w is not None:
        w_plus = sample_w(torch.arange(start, start + b) + seed * 1_000_003).to(device)
    else:
        z = torch.randn(b, gen.z_dim, generator=g).to(device)
        w_plus = gen.mapping(z, psi=psi)
    return gen.styles(w_plus).flat().double().cpu()


def iter_style_stats(
    gen: Generator, n_samples: int = 10_000, batch: int = 500, seed: int = 0, psi: float = 1.0,
    sample_w: WSampler | None = None,
) -> Iterator[Progress | StyleStats]:
    """compute_style_stats as a job: Progress after each batch, then the StyleStats."""
    if n_samples < 2:
        raise ValueError(f"style statistics need at least 2 samples, got {n_samples}")
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(sum(s.channels for s in gen.style_specs), dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    count = 0
    clock = EtaClock(0, n_samples)
    while count < n_samples:
        b = min(batch, n_samples - count)
        flat = _sample_codes(gen, count, b, seed, psi, g, sample_w)
        total += flat.sum(0)
        total_sq += (flat**2).sum(0)
        count += b
        yield clock.progress(count, f"style statistics: {count}/{n_samples} samples")
    mean = total / count
    var = (total_sq / count - mean**2).clamp_min(0) * count / (count - 1)
    yield StyleStats(mean.float(), var.sqrt().float(), count)


def compute_style_stats(
    gen: Generator, n_samples: int = 10_000, batch: int = 500, seed: int = 0, psi: float = 1.0,
    sample_w: WSampler | None = None,
) -> StyleStats:
    """Mean/std of every style channel over codes of sampled latents. `sample_w(seeds)` may
    replace the default z ~ N(0, I) -> W+ sampling (the demo pack has its own sampler)."""
    for item in iter_style_stats(gen, n_samples, batch, seed, psi, sample_w):
        if isinstance(item, StyleStats):
            return item
    raise AssertionError("iter_style_stats ended without a result")


# --------------------------------------------------------------------------- relevance


OFFICIAL_PSI = 0.7  # official StyleCLIP samples its statistics and base images at psi 0.7


# every style layer name any generator this program opens can have, in generator order
_LAYER_ORDER = {name: i for i, name in enumerate(
    style_layer_names(MAX_RESOLUTION.bit_length() - 3))}


def canonical_layers(names: Sequence[str]) -> tuple[str, ...]:
    """Style layer names in generator order, each once (a stable sort: unknown names keep
    their typed order, after the known ones; selected_layers refuses them later)."""
    unique = list(dict.fromkeys(str(n) for n in names))
    return tuple(sorted(unique, key=lambda name: _LAYER_ORDER.get(name, len(_LAYER_ORDER))))


@dataclass
class RelevanceConfig:
    n_images: int = 100  # base codes (official: 100)
    k_sigma: float = 5.0  # perturbation size in standard deviations (official: 5)
    layers: tuple[str, ...] | None = None  # style layer names; None = every non-toRGB layer
    # renders per generator call (speed and memory only); None: as many as the generator's
    # resolution allows (64 at any size needed about 33 GB at 1024 px)
    batch_size: int | None = None
    seed: int = 0
    psi: float = OFFICIAL_PSI  # truncation of the base images and of the style statistics
    state_budget_mb: int = 1024  # memory for the reused pre-layer states (speed only)

    def __post_init__(self) -> None:
        # a NaN or zero k would write a pack of NaN or zero vectors and call it finished
        if not (math.isfinite(self.k_sigma) and self.k_sigma > 0):
            raise ValueError(f"k_sigma must be a finite number above 0, got {self.k_sigma}")
        if self.n_images < 1 or (self.batch_size is not None and self.batch_size < 1):
            raise ValueError("n_images and batch_size must be at least 1")
        if not 0 <= self.seed <= 2**62:  # offset within int64 when sampling
            raise ValueError(f"seed must be from 0 to 2**62, got {self.seed}")
        if not math.isfinite(self.psi):
            raise ValueError(f"psi must be a finite number, got {self.psi}")
        if self.psi == 0:  # every base image the average face: zero spread, zero directions
            raise ValueError("psi 0 makes every base image the average face; every "
                             "direction would come out zero")
        if self.layers is not None:
            # One spelling per selection, whatever the order or repetition typed: the
            # cache keys come from it, and `--layers convs.0 conv1` must resume what
            # `--layers conv1 convs.0` saved. A selection already in generator order
            # without repeats (and None, every layer) keeps the key it always had.
            self.layers = canonical_layers(self.layers)

    def to_dict(self) -> dict:
        """What decides the result (for cache keys): batch size and memory budget do not."""
        return {"n_images": self.n_images, "k_sigma": self.k_sigma,
                "layers": list(self.layers) if self.layers else None,
                "seed": self.seed, "psi": self.psi}


@dataclass
class Relevance:
    """Unit CLIP-space vectors, one per selected style channel."""

    channels: torch.Tensor  # (M,) long: indices into the flat style code
    vectors: torch.Tensor  # (M, D)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"channels": self.channels, "vectors": self.vectors}


@dataclass(frozen=True)
class LayerProgress:
    """An unfinished layer. `acc` sums the unit differences of every channel over images
    [0, images_done) and, for channels [0, channels_done), also over the next image chunk.
    Frozen and replaced whole, so an interrupt never leaves it half updated."""

    layer: int
    acc: torch.Tensor  # (channels of the layer, D)
    images_done: int
    channels_done: int
    image_chunk: int


@dataclass
class RelevanceState:
    """Resumable progress of compute_relevance: finished layers and the layer under way."""

    done: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> (C_l, D) unit
    current: LayerProgress | None = None


def selected_layers(specs: Sequence[StyleLayerSpec], names: Sequence[str] | None
                    ) -> list[int]:
    if names is None:
        return [i for i, s in enumerate(specs) if not s.is_torgb]
    index = {s.name: i for i, s in enumerate(specs)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(f"unknown style layers: {unknown}")
    torgb = [n for n in names if specs[index[n]].is_torgb]
    if torgb:
        raise ValueError(f"toRGB layers cannot be edited: {torgb}")
    return list(dict.fromkeys(index[n] for n in names))  # a layer named twice counts once


@torch.no_grad()
def base_codes(gen: Generator, n: int, seed: int, psi: float,
               sample_w: WSampler | None = None) -> StyleCode:
    device = gen.w_avg.device
    if sample_w is not None:
        w_plus = sample_w(torch.arange(n) + 7_000_000 + seed).to(device)
    else:
        g = torch.Generator().manual_seed(10_000 + seed)
        w_plus = gen.mapping(torch.randn(n, gen.z_dim, generator=g).to(device), psi=psi)
    return gen.styles(w_plus)


def _slice_code(codes: StyleCode, sl: slice) -> StyleCode:
    return StyleCode(codes.specs, [t[sl] for t in codes.tensors])


@torch.no_grad()
def state_before(gen: Generator, codes: StyleCode, layer: int) -> SynthesisState:
    """The synthesis state just before style layer `layer` (shared by all perturbations
    of that layer's channels)."""
    return gen.run_layers(codes, gen.initial_state(codes.batch_size), 0, stop=layer)


def _state_bytes_per_image(gen: Generator, codes: StyleCode, layer: int) -> int:
    st = state_before(gen, _slice_code(codes, slice(0, 1)), layer)
    skip = 0 if st.skip is None else st.skip.numel() * st.skip.element_size()
    return st.x.numel() * st.x.element_size() + skip


def _image_chunk(gen: Generator, codes: StyleCode, layer: int, budget_mb: int) -> int:
    """How many images' pre-layer states to hold at once: all of them when they fit."""
    per_image = _state_bytes_per_image(gen, codes, layer)
    return max(1, min(codes.batch_size, budget_mb * 2**20 // max(per_image, 1)))


def _even_slices(total: int, max_size: int) -> Iterator[slice]:
    """Split range(total) into the fewest slices of at most max_size, of near-equal size
    (no small tail batch, which would run at a poor rate)."""
    parts = max(1, math.ceil(total / max(max_size, 1)))
    bounds = [round(i * total / parts) for i in range(parts + 1)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a:
            yield slice(a, b)


@torch.no_grad()
def _unit_difference_sums(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, before: SynthesisState,
    layer: int, chans: torch.Tensor, low: torch.Tensor, high: torch.Tensor, batch_size: int,
) -> torch.Tensor:
    """(m, D): for each channel, the sum over the images of normalise(e(high) - e(low)),
    where s_c is set to `low` / `high`. Rows run channel-major, then sign, then image;
    each generator call gathers only its own rows' states, so memory stays at batch_size
    renders whatever the number of channels and images."""
    n, m = codes.batch_size, len(chans)
    rows = 2 * m * n
    row_image = torch.arange(rows) % n
    row_channel = chans.repeat_interleave(2 * n)
    row_value = torch.stack([low, high], 1).repeat_interleave(n, dim=1).reshape(-1)
    device = codes.tensors[layer].device
    embs = []
    for sl in _even_slices(rows, batch_size):
        idx = row_image[sl].to(device)
        b = len(idx)
        # Layers before `layer` are not run; any tensor of the right shape will do.
        tensors = [t[:1].expand(b, -1) if i < layer else t.index_select(0, idx)
                   for i, t in enumerate(codes.tensors)]
        tensors[layer][torch.arange(b, device=device), row_channel[sl].to(device)] = (
            row_value[sl].to(tensors[layer]))
        state = SynthesisState(
            before.x.index_select(0, idx),
            None if before.skip is None else before.skip.index_select(0, idx))
        img = gen.run_layers(StyleCode(codes.specs, tensors), state, layer).skip
        embs.append(clip.encode_images(img, normalize=True).float())
    emb = torch.cat(embs).view(m, 2, n, -1)
    return F.normalize(emb[:, 1] - emb[:, 0], dim=-1).sum(1).cpu()


def _perturbation(stats: StyleStats, flat: torch.Tensor, k_sigma: float
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two values a channel is set to: mean -/+ k std (official: k = 5)."""
    mean, std = stats.mean[flat].float(), stats.std[flat].float()
    return mean - k_sigma * std, mean + k_sigma * std


def relevance_for_layer(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, stats: StyleStats,
    layer: int, channels: Sequence[int], k_sigma: float, before: SynthesisState,
    batch_size: int,
) -> torch.Tensor:
    """Relevance vectors (len(channels), D) for channels of one style layer, given the
    synthesis state before that layer for the N base codes."""
    chans = torch.as_tensor(list(channels), dtype=torch.long)
    low, high = _perturbation(stats, flat_offsets(codes.specs)[layer] + chans, k_sigma)
    sums = _unit_difference_sums(gen, clip, codes, before, layer, chans, low, high, batch_size)
    return F.normalize(sums, dim=-1)


CPU_BUDGET_MB = 2048  # a CPU gains little from wider calls; its memory is the user's too
GPU_BUDGET_SHARE = 0.5  # of the GPU memory free when a job starts (renders share it)
GPU_BUDGET_MAX_MB = 32768


def default_budget_mb(device: torch.device) -> int:
    """Memory a job's generator calls may fill on `device`: on a GPU half of what is free
    now (a 1024 px call of 2 renders, as the CPU's fixed 2 GB gives, leaves an H100 idle
    between calls), never less than the CPU's."""
    if device.type != "cuda":
        return CPU_BUDGET_MB
    try:
        free, _total = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):  # no answer from the driver: the safe size
        return CPU_BUDGET_MB
    return int(min(GPU_BUDGET_MAX_MB, max(CPU_BUDGET_MB, GPU_BUDGET_SHARE * free / 2**20)))


def suggested_batch_size(gen: Generator, budget_mb: int | None = None, most: int = 64) -> int:
    """Renders per generator call for a memory budget (default_budget_mb of the
    generator's device when None): the widest activation at the top resolution, times the
    few temporaries a styled conv keeps alive. On the 64 px demo generator (2-core CPU) 64
    rows per call was fastest (12 ms per render + encode, 15 ms at 32, 19 ms at 8); beyond
    that it gains nothing."""
    if budget_mb is None:
        budget_mb = default_budget_mb(gen.w_avg.device)
    cfg = gen.config
    widest = max(cfg.channels_at(2**i) * 4**i for i in range(2, cfg.log_size + 1))
    per_image = widest * 4 * 8  # fp32 bytes x live temporaries
    return max(1, min(most, budget_mb * 2**20 // per_image))


def _channels_per_step(n_images: int, batch_size: int) -> int:
    """Channels per progress step: enough that a step fills at least one generator call."""
    return max(1, batch_size // (2 * n_images))


# --------------------------------------------------------------------------- time left
#
# A (channel, image) pair of layer l renders the synthesis from l on (the state before l is
# reused) and CLIP-encodes the picture, twice. At 1024 px a pair of conv1 runs nearly the
# whole generator and one of convs.15 only its last layers: about 16.7 s against 4.3 s on
# a CPU, so a time left measured in pairs at conv1 came out hours too long (2,800 h). The
# clock counts each pair at an estimate of its cost instead: the multiply-adds of the
# layers from l on (an upsampling conv's at its input resolution), plus ELEMENT_MACS per
# output value for the memory-bound work around them (noise, activation, blur), plus the
# CLIP encode. Only the ratios matter: the rate itself is measured. On the 1024 px
# config-f generator with a ViT-B/32 (2-core CPU) the estimate is 1 : 0.94 : 0.65 : 0.21
# for a pair of conv1, convs.7, convs.11 and convs.15, the time measured 1 : 0.92 : 0.66 :
# 0.22 (a time left in plain pairs assumed 1 : 1 : 1 : 1).
ELEMENT_MACS = 300
RELEVANCE_RENDERS = 2  # a (channel, image) pair renders and encodes twice: +kσ and -kσ
CLIP_TOKENS = 50  # an image's tokens where the vision tower does not say (ViT-B/32: 50)


def _style_layer_cost(gen: Generator, spec: StyleLayerSpec) -> float:
    conv = getattr(gen.style_layer(spec.name), "conv", None)
    inp = getattr(conv, "in_channel", spec.channels)
    out = getattr(conv, "out_channel", 3 if spec.is_torgb else spec.channels)
    k = getattr(conv, "kernel_size", 1 if spec.is_torgb else 3)
    pixels = spec.resolution**2
    conv_pixels = pixels // 4 if getattr(conv, "upsample", False) else pixels
    return float(out * (inp * k * k * conv_pixels + ELEMENT_MACS * pixels))


def _encode_cost(clip: ImageTextEncoder) -> float:
    """Multiply-adds of one CLIP image encode, roughly (a transformer's weights once per
    token); 0 for an encoder that shows no vision tower (the generator's part decides)."""
    visual = getattr(getattr(clip, "model", None), "visual", None)
    if not isinstance(visual, torch.nn.Module):
        return 0.0
    grid = getattr(visual, "grid_size", None)
    tokens = CLIP_TOKENS
    if isinstance(grid, tuple) and len(grid) == 2 and all(isinstance(g, int) for g in grid):
        tokens = grid[0] * grid[1] + 1
    return float(sum(p.numel() for p in visual.parameters()) * tokens)


def pair_costs(gen: Generator, clip: ImageTextEncoder, layers: Sequence[int]
               ) -> dict[int, float]:
    """The relative cost of one (channel, image) pair of each of `layers` (see above)."""
    specs = gen.style_specs
    per_layer = [_style_layer_cost(gen, s) for s in specs]
    encode = _encode_cost(clip)
    return {i: sum(per_layer[i:]) + encode for i in layers}


def relevance_seconds(gen: Generator, clip: ImageTextEncoder, config: RelevanceConfig,
                      render_s: float) -> float:
    """A guess, before any of it runs, of the relevance's time from how long one picture
    takes on this device: every pair's cost (two renders and encodes) as a share of a
    whole render's. On a CPU a 1024 px pack is weeks of work, not "a while"."""
    specs = gen.style_specs
    layers = selected_layers(specs, config.layers)
    costs = pair_costs(gen, clip, layers)
    render = sum(_style_layer_cost(gen, s) for s in specs)
    pairs = sum(specs[i].channels * costs[i] for i in layers) * config.n_images
    return RELEVANCE_RENDERS * pairs / render * render_s


def relevance_work(gen: Generator, config: RelevanceConfig) -> int:
    """How many (channel, image) pairs the relevance of `config` computes (two renders
    and two CLIP encodes each); the relevance job's Progress counts them."""
    specs = gen.style_specs
    return sum(specs[i].channels for i in selected_layers(specs, config.layers)) \
        * config.n_images


def _resume_point(state: RelevanceState, layer: int, chunk: int, n_channels: int
                  ) -> LayerProgress | None:
    cur = state.current
    if cur is None or cur.layer != layer or cur.image_chunk != chunk:
        return None  # another layer, or saved with other image chunks: start the layer over
    if cur.acc.ndim != 2 or cur.acc.shape[0] != n_channels:
        return None
    return cur


def _layer_job(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, stats: StyleStats,
    layer: int, config: RelevanceConfig, state: RelevanceState,
) -> Iterator[int]:
    """Relevance of every channel of one layer; yields the number of (channel, image)
    pairs finished after each step and keeps `state.current` up to date."""
    n = codes.batch_size
    n_ch = codes.specs[layer].channels
    offset = flat_offsets(codes.specs)[layer]
    batch_size = config.batch_size or suggested_batch_size(gen)
    fits = _image_chunk(gen, codes, layer, config.state_budget_mb)
    # A step (a channel over a chunk of images, both signs) is then one generator call:
    # over 100 images it was 200 renders, minutes on a CPU before cancel was seen.
    chunk = min(fits, max(1, batch_size // 2))
    saved = state.current
    if saved is not None and saved.layer == layer and 1 <= saved.image_chunk <= fits:
        chunk = saved.image_chunk  # resumed as saved (another batch size would lose it)
    cur = _resume_point(state, layer, chunk, n_ch)
    images_done = cur.images_done if cur else 0
    channels_done = cur.channels_done if cur else 0
    acc = cur.acc if cur else None
    for img_start in range(images_done, n, chunk):
        sub = _slice_code(codes, slice(img_start, min(img_start + chunk, n)))
        before = state_before(gen, sub, layer)
        per = _channels_per_step(sub.batch_size, batch_size)
        for start in range(channels_done, n_ch, per):
            chans = torch.arange(start, min(start + per, n_ch))
            low, high = _perturbation(stats, offset + chans, config.k_sigma)
            sums = _unit_difference_sums(gen, clip, sub, before, layer, chans, low, high,
                                         batch_size)
            if not bool(torch.isfinite(sums).all()):  # at once, not hours later at the end
                raise NonFiniteRelevance(
                    f"the relevance came out as NaN or infinity (layer {codes.specs[layer].name}"
                    f"): the pictures or CLIP features overflowed (k_sigma {config.k_sigma:g})")
            acc = torch.zeros(n_ch, sums.shape[1]) if acc is None else acc
            acc = acc.index_add(0, chans, sums)  # out of place: the saved state stays whole
            last = start + len(chans) == n_ch
            if last and img_start + sub.batch_size == n:  # the layer is finished
                state.done[layer] = F.normalize(acc, dim=-1)
                state.current = None
            else:
                state.current = LayerProgress(
                    layer, acc, img_start + sub.batch_size if last else img_start,
                    0 if last else start + len(chans), chunk)
            yield len(chans) * sub.batch_size
        channels_done = 0
    if layer not in state.done:  # resumed with every image already summed
        assert acc is not None
        state.done[layer] = F.normalize(acc, dim=-1)
        state.current = None


def units_done(state: RelevanceState, specs: Sequence[StyleLayerSpec], layers: list[int],
               n_images: int, cost: Mapping[int, float] | None = None) -> int | float:
    """How many (channel, image) pairs of `layers` the state holds (with `cost`, a pair of
    layer l counts cost[l]: the work done, as pair_costs weighs it)."""
    def weight(layer: int) -> float:
        return 1 if cost is None else cost[layer]

    done = sum(specs[i].channels * n_images * weight(i) for i in layers if i in state.done)
    cur = state.current
    if cur is not None and cur.layer in layers and cur.layer not in state.done:
        pairs = specs[cur.layer].channels * cur.images_done
        pairs += cur.channels_done * min(cur.image_chunk, n_images - cur.images_done)
        done += pairs * weight(cur.layer)
    return done


def compute_relevance(
    gen: Generator, clip: ImageTextEncoder, stats: StyleStats, config: RelevanceConfig,
    done: dict[int, torch.Tensor] | None = None,
    sample_w: WSampler | None = None,
    state: RelevanceState | None = None,
) -> Iterator[Progress | Relevance]:
    """A job: yields Progress after each step (a few channels over one chunk of images) and
    finally the Relevance. Progress counts (channel, image) pairs.

    Resume: `state` (or just `done`, layer index -> finished vectors) is updated in place
    after every step, so a caller that saves it can continue an interrupted run from the
    last finished step. Nothing is held across a yield but tensors: no grad mode, no lock."""
    if config.n_images < 1:
        raise ValueError(f"relevance needs at least one base image, got {config.n_images}")
    state = state if state is not None else RelevanceState(done if done is not None else {})
    specs = gen.style_specs
    layers = selected_layers(specs, config.layers)
    codes = base_codes(gen, config.n_images, config.seed, config.psi, sample_w)
    total = relevance_work(gen, config)
    finished = units_done(state, specs, layers, config.n_images)
    # The time left counts the pairs at their cost (pair_costs): a late layer's are cheap.
    cost = pair_costs(gen, clip, layers)
    work = units_done(state, specs, layers, config.n_images, cost)
    clock = EtaClock(work, sum(specs[i].channels * config.n_images * cost[i] for i in layers))
    yield Progress(finished, total, "relevance: starting" if finished == 0
                   else "relevance: resuming", clock.eta_s(work))
    for pos, layer in enumerate(layers):
        if layer in state.done:
            continue
        name = f"relevance: layer {specs[layer].name} ({pos + 1}/{len(layers)})"
        for units in _layer_job(gen, clip, codes, stats, layer, config, state):
            finished += units
            work += units * cost[layer]
            yield Progress(finished, total, name, clock.eta_s(work))
    offsets = flat_offsets(specs)
    channels = torch.cat([torch.arange(specs[i].channels) + offsets[i] for i in layers])
    vectors = torch.cat([state.done[i] for i in layers])
    yield Relevance(channels, vectors, config.to_dict())


def relevance_single_channel(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, stats: StyleStats, flat_index: int,
    k_sigma: float = 5.0,
) -> torch.Tensor:
    """The official loop shape: one channel, one image, batch 1, full synthesis. Used by the
    benchmark and tests as the reference the batched computation must agree with."""
    offsets = flat_offsets(codes.specs)
    layer = layer_of(offsets, flat_index)
    c = flat_index - offsets[layer]
    diffs = []
    with torch.no_grad():
        for i in range(codes.batch_size):
            embs = []
            for sign in (-1.0, 1.0):
                one = [t[i:i + 1].clone() for t in codes.tensors]
                one[layer][0, c] = stats.mean[flat_index] + sign * k_sigma * stats.std[flat_index]
                img = gen.synthesize(StyleCode(codes.specs, one))
                embs.append(clip.encode_images(img, normalize=True)[0].float())
            diffs.append(F.normalize(embs[1] - embs[0], dim=0))
    return F.normalize(torch.stack(diffs).mean(0), dim=0).cpu()  # as relevance_for_layer


# --------------------------------------------------------------------------- text -> edit


def text_direction(clip: ImageTextEncoder, neutral: str, target: str,
                   templates: Sequence[str] | None = None) -> torch.Tensor:
    """dt = normalise(e(target) - e(neutral)) with prompt-template ensembles. Without a
    neutral, dt = e(target): official StyleCLIP subtracts the templates filled with an
    empty string instead, so an edit with an empty neutral differs from theirs."""
    target, neutral = (target or "").strip(), (neutral or "").strip()
    if not target:
        raise ValueError("the target prompt is empty: describe what the image should become")
    e_t = clip.text_embedding(target, templates).float()
    e_n = clip.text_embedding(neutral, templates).float() if neutral else None
    d = e_t - e_n if e_n is not None else e_t
    norm = d.norm()
    if norm < 1e-8:
        raise ValueError("the neutral and target prompts mean the same to CLIP; nothing to edit")
    return d / norm


def channel_scores(relevance: Relevance, direction: torch.Tensor) -> torch.Tensor:
    """r = R dt: how much each channel moves the image along the text direction."""
    return relevance.vectors.float() @ direction.to(relevance.vectors.device).float()


def auto_beta(scores: torch.Tensor, min_channels: int = 10) -> float:
    """The largest beta that leaves at least `min_channels` channels (all non-zero ones when
    there are fewer). Exact: edit_direction keeps |r| >= beta, and the scores it computes
    with channel_scores are the same numbers."""
    mags = scores.detach().abs().float().flatten()
    mags = mags[torch.isfinite(mags) & (mags > 0)].sort(descending=True).values
    if len(mags) == 0:
        raise NoChannelsError("no style channel responds to this text direction "
                              "(every relevance score is zero)")
    k = min(max(min_channels, 1), len(mags))
    return float(mags[k - 1])


@dataclass
class EditDirection:
    delta: torch.Tensor  # (C_total,) flat style delta for alpha = 1
    n_channels: int  # how many channels pass beta
    max_score: float
    beta: float | None = None  # the threshold used (auto-beta picks its own)


def edit_direction(relevance: Relevance, stats: StyleStats, direction: torch.Tensor,
                   beta: float) -> EditDirection:
    """The style delta of a text direction at threshold beta (scale it by alpha)."""
    return scored_edit(relevance, stats, channel_scores(relevance, direction), beta)


def thresholded_edit(relevance: Relevance, stats: StyleStats, scores: torch.Tensor,
                     beta: float | None, min_channels: int = 10) -> EditDirection:
    """scored_edit at beta, or at auto-beta keeping `min_channels` when beta is None."""
    if beta is None:
        beta = auto_beta(scores, min_channels)
    return scored_edit(relevance, stats, scores, beta)


def scored_edit(relevance: Relevance, stats: StyleStats, scores: torch.Tensor, beta: float
                ) -> EditDirection:
    """The style delta for per-channel scores (one per relevance channel) at threshold beta:
    channels with |score| >= beta move, the strongest by one standard deviation."""
    scores = scores.cpu()
    finite = bool(torch.isfinite(scores).all()) if len(scores) else True
    if not finite:
        raise NoChannelsError("the relevance scores contain NaN or infinity: the model pack "
                              "is damaged; recompute it")
    max_score = float(scores.abs().max()) if len(scores) else 0.0
    # |r| > 0 as well: with beta <= 0 a zero score would pass and max|r| could be 0 (NaN).
    keep = (scores.abs() >= beta) & (scores != 0)
    n = int(keep.sum())
    if n == 0 and max_score == 0:
        raise NoChannelsError("no style channel responds to this text direction (every "
                              "relevance score is zero)")
    if n == 0:
        raise NoChannelsError(
            f"no style channel passes beta = {beta:.3g} (the strongest has |r| = "
            f"{max_score:.3f}); lower beta below {max_score:.3f} or use auto-beta"
        )
    r = torch.where(keep, scores, torch.zeros_like(scores))
    r = r / r.abs().max()
    delta = torch.zeros_like(stats.mean, device="cpu", dtype=torch.float32)
    idx = relevance.channels.cpu()
    delta[idx] = r * stats.std.cpu().float()[idx]
    return EditDirection(delta, n, max_score, beta)
