"""StyleCLIP global directions: per-channel CLIP relevance of style space, and text edits.

Precompute (once per generator + CLIP pair):
  1. style statistics: per-channel mean and std of s over many sampled codes;
  2. relevance: for every editable (non-toRGB) channel c, over N base codes, set s_c to
     mean_c - k*std_c and mean_c + k*std_c, render both, CLIP-encode, normalise, take the
     difference, normalise, average over the images, normalise: one unit vector per channel.
Edit: dt = normalise(e(target) - e(neutral)); r = R dt; zero |r| < beta; r /= max|r|;
delta_s = r * std (toRGB channels stay 0); s' = s + alpha * delta_s.

The official code renders one channel and one image at a time. Here channels of one layer
are processed together over all base images in large batches, and the synthesis state
before that layer is computed once and reused, since a perturbation of layer l leaves
everything before l unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from editor.core.generator import Generator, SynthesisState
from editor.core.style_code import StyleCode, StyleLayerSpec, flat_offsets


class ImageTextEncoder(Protocol):
    """What global directions need from CLIP (editor.core.clip_model.ClipModel)."""

    def encode_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor: ...

    def text_embedding(self, text: str, templates: Sequence[str] | None = None
                       ) -> torch.Tensor: ...


class NoChannelsError(ValueError):
    """No style channel passes the disentanglement threshold beta."""


@dataclass
class Progress:
    done: int
    total: int
    message: str = ""


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
def compute_style_stats(
    gen: Generator, n_samples: int = 10_000, batch: int = 500, seed: int = 0, psi: float = 1.0,
    sample_w: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> StyleStats:
    """Mean/std of every style channel over codes of sampled latents. `sample_w(seeds)` may
    replace the default z ~ N(0, I) -> W+ sampling (the demo pack has its own sampler)."""
    device = gen.w_avg.device
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(sum(s.channels for s in gen.style_specs), dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    count = 0
    while count < n_samples:
        b = min(batch, n_samples - count)
        if sample_w is not None:
            w_plus = sample_w(torch.arange(count, count + b) + seed * 1_000_003).to(device)
        else:
            z = torch.randn(b, gen.z_dim, generator=g).to(device)
            w_plus = gen.mapping(z, psi=psi)
        flat = gen.styles(w_plus).flat().double().cpu()
        total += flat.sum(0)
        total_sq += (flat**2).sum(0)
        count += b
    mean = total / count
    var = (total_sq / count - mean**2).clamp_min(0) * count / max(count - 1, 1)
    return StyleStats(mean.float(), var.sqrt().float(), count)


# --------------------------------------------------------------------------- relevance


@dataclass
class RelevanceConfig:
    n_images: int = 100  # base codes (official: 100)
    k_sigma: float = 5.0  # perturbation size in standard deviations (official: 5)
    layers: tuple[str, ...] | None = None  # style layer names; None = every non-toRGB layer
    batch_size: int = 64  # renders per generator call
    seed: int = 0
    psi: float = 0.7

    def to_dict(self) -> dict:
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
    return [index[n] for n in names]


def base_codes(gen: Generator, n: int, seed: int, psi: float,
               sample_w: Callable[[torch.Tensor], torch.Tensor] | None = None) -> StyleCode:
    device = gen.w_avg.device
    if sample_w is not None:
        w_plus = sample_w(torch.arange(n) + 7_000_000 + seed).to(device)
    else:
        g = torch.Generator().manual_seed(10_000 + seed)
        w_plus = gen.mapping(torch.randn(n, gen.z_dim, generator=g).to(device), psi=psi)
    return gen.styles(w_plus)


def _channel_batches(n_channels: int, n_images: int, batch_size: int) -> Iterator[range]:
    """Channels per chunk so that a chunk's renders (2 per image) fill about batch_size."""
    per = max(1, batch_size // (2 * n_images))
    for start in range(0, n_channels, per):
        yield range(start, min(start + per, n_channels))


@torch.no_grad()
def relevance_for_layer(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, stats: StyleStats,
    layer: int, channels: Sequence[int], k_sigma: float, before: SynthesisState,
    batch_size: int,
) -> torch.Tensor:
    """Relevance vectors (len(channels), D) for channels of one style layer, given the
    synthesis state before that layer for the N base codes."""
    n = codes.batch_size
    offset = flat_offsets(codes.specs)[layer]
    layer_codes = codes.tensors[layer]
    chans = torch.as_tensor(list(channels))
    mean = stats.mean[offset + chans].to(layer_codes)
    std = stats.std[offset + chans].to(layer_codes)
    out = []
    for chunk in _channel_batches(len(chans), n, batch_size):
        m = len(chunk)
        # rows: channel-major, then sign (-, +), then image
        s_layer = layer_codes.repeat(m * 2, 1)
        rows = torch.arange(m * 2 * n)
        ch = chans[list(chunk)].repeat_interleave(2 * n)
        sign = torch.tensor([-1.0, 1.0]).repeat_interleave(n).repeat(m).to(s_layer)
        value = (mean[list(chunk)].repeat_interleave(2 * n)
                 + sign * k_sigma * std[list(chunk)].repeat_interleave(2 * n))
        s_layer[rows, ch] = value
        tensors = [t.repeat(m * 2, 1) if i != layer else s_layer
                   for i, t in enumerate(codes.tensors)]
        code = StyleCode(codes.specs, tensors)
        state = SynthesisState(before.x.repeat(m * 2, 1, 1, 1),
                               None if before.skip is None else before.skip.repeat(m * 2, 1, 1, 1))
        emb = _render_and_encode(gen, clip, code, state, layer, batch_size)
        emb = emb.view(m, 2, n, -1)
        diff = torch.nn.functional.normalize(emb[:, 1] - emb[:, 0], dim=-1)  # (m, n, D)
        out.append(torch.nn.functional.normalize(diff.mean(1), dim=-1))
    return torch.cat(out)


def _render_and_encode(gen: Generator, clip: ImageTextEncoder, code: StyleCode,
                       state: SynthesisState, layer: int, batch_size: int) -> torch.Tensor:
    total = code.batch_size
    embs = []
    for start in range(0, total, batch_size):
        sl = slice(start, min(start + batch_size, total))
        part = StyleCode(code.specs, [t[sl] for t in code.tensors])
        st = SynthesisState(state.x[sl], None if state.skip is None else state.skip[sl])
        img = gen.run_layers(part, st, layer).skip
        embs.append(clip.encode_images(img, normalize=True).float())
    return torch.cat(embs)


def compute_relevance(
    gen: Generator, clip: ImageTextEncoder, stats: StyleStats, config: RelevanceConfig,
    done: dict[int, torch.Tensor] | None = None,
    sample_w: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[Progress | Relevance]:
    """A job: yields Progress after each layer chunk and finally the Relevance.

    `done` maps layer index -> vectors already computed (resume); it is updated in place, so
    a caller that saves it after each Progress can resume an interrupted run."""
    done = {} if done is None else done
    specs = gen.style_specs
    layers = selected_layers(specs, config.layers)
    codes = base_codes(gen, config.n_images, config.seed, config.psi, sample_w)
    total = sum(specs[i].channels for i in layers)
    finished = sum(specs[i].channels for i in layers if i in done)
    yield Progress(finished, total, "starting")
    with torch.no_grad():
        for layer in layers:
            if layer in done:
                continue
            before = gen.run_layers(codes, gen.initial_state(codes.batch_size), 0, stop=layer)
            n_ch = specs[layer].channels
            per_step = max(1, config.batch_size // (2 * config.n_images)) * 8
            vecs = []
            for start in range(0, n_ch, per_step):
                chans = range(start, min(start + per_step, n_ch))
                vecs.append(relevance_for_layer(gen, clip, codes, stats, layer, chans,
                                                config.k_sigma, before, config.batch_size))
                finished += len(chans)
                yield Progress(finished, total, f"layer {specs[layer].name}")
            done[layer] = torch.cat(vecs).cpu()
    offsets = flat_offsets(specs)
    channels = torch.cat([torch.arange(specs[i].channels) + offsets[i] for i in layers])
    vectors = torch.cat([done[i] for i in layers])
    yield Relevance(channels, vectors, config.to_dict())


def relevance_single_channel(
    gen: Generator, clip: ImageTextEncoder, codes: StyleCode, stats: StyleStats, flat_index: int,
    k_sigma: float = 5.0,
) -> torch.Tensor:
    """The official loop shape: one channel, one image, batch 1, full synthesis. Used by the
    benchmark and tests as the reference the batched computation must agree with."""
    offsets = flat_offsets(codes.specs)
    layer = max(i for i, o in enumerate(offsets) if o <= flat_index)
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
            diffs.append(torch.nn.functional.normalize(embs[1] - embs[0], dim=0))
    return torch.nn.functional.normalize(torch.stack(diffs).mean(0), dim=0)


# --------------------------------------------------------------------------- text -> edit


def text_direction(clip: ImageTextEncoder, neutral: str, target: str,
                   templates: Sequence[str] | None = None) -> torch.Tensor:
    """dt = normalise(e(target) - e(neutral)) with prompt-template ensembles."""
    if not target.strip():
        raise ValueError("the target prompt is empty: describe what the image should become")
    e_t = clip.text_embedding(target, templates).float()
    e_n = clip.text_embedding(neutral or "", templates).float() if neutral.strip() else None
    d = e_t - e_n if e_n is not None else e_t
    norm = d.norm()
    if norm < 1e-8:
        raise ValueError("the neutral and target prompts mean the same to CLIP; nothing to edit")
    return d / norm


def channel_scores(relevance: Relevance, direction: torch.Tensor) -> torch.Tensor:
    """r = R dt: how much each channel moves the image along the text direction."""
    return relevance.vectors.float() @ direction.to(relevance.vectors.device).float()


def auto_beta(scores: torch.Tensor, min_channels: int = 10) -> float:
    """The largest beta that leaves at least `min_channels` channels."""
    mags = scores.abs().sort(descending=True).values
    k = min(max(min_channels, 1), len(mags))
    return float(mags[k - 1]) * (1 - 1e-6)


@dataclass
class EditDirection:
    delta: torch.Tensor  # (C_total,) flat style delta for alpha = 1
    n_channels: int  # how many channels pass beta
    max_score: float


def edit_direction(relevance: Relevance, stats: StyleStats, direction: torch.Tensor,
                   beta: float) -> EditDirection:
    """The style delta of a text direction at threshold beta (scale it by alpha)."""
    scores = channel_scores(relevance, direction)
    max_score = float(scores.abs().max()) if len(scores) else 0.0
    keep = scores.abs() >= beta
    n = int(keep.sum())
    if n == 0 or not math.isfinite(max_score):
        raise NoChannelsError(
            f"no style channel passes beta = {beta:.3f} (the strongest has |r| = "
            f"{max_score:.3f}); lower beta or use auto-beta"
        )
    r = torch.where(keep, scores, torch.zeros_like(scores))
    r = r / r.abs().max()
    delta = torch.zeros_like(stats.mean)
    delta[relevance.channels] = r * stats.std[relevance.channels].to(r)
    return EditDirection(delta, n, max_score)
