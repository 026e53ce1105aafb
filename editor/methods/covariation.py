"""How style channels vary with a CLIP direction across the generator's own samples, and
relevance scores gated by it.

Global-direction relevance (StyleCLIP) measures what a channel does when pushed alone. On a
generator that spreads each attribute over many channels, pushing one channel can read like
a text direction without being what the generator changes to follow it: on the demo world
two thirds of a text edit's 20 channels belong to other attributes (benchmarks/meaning.py).
The sampled images tell the two apart: a channel the generator uses for the direction also
varies with it from image to image.

    cov = covariation_of(gen, samples)                  # from iter_samples' Samples
    corr = cov.correlation(direction)                   # corr(s_c, e . d) over the samples
    scores = gated_scores(relevance_scores, corr)       # r * |corr| where the signs agree

Only second moments are kept, so any direction's correlations cost one matrix product.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from editor.core.generator import Generator

from . import global_directions as gd
from .global_directions import ImageTextEncoder, Progress, Relevance, WSampler, channel_scores


@dataclass
class Covariation:
    cross: torch.Tensor  # (C, D) Cov(s, e): style channels against embedding dimensions
    embedding_cov: torch.Tensor  # (D, D) Cov(e)
    style_std: torch.Tensor  # (C,)
    n_samples: int
    save_error: str | None = None  # why it could not be cached (it is still sound)

    @classmethod
    def from_samples(cls, styles: torch.Tensor, embeddings: torch.Tensor) -> Covariation:
        n = len(styles)
        if n < 2 or len(embeddings) != n:
            raise ValueError(f"co-variation needs >= 2 paired samples, got {n} codes and "
                             f"{len(embeddings)} embeddings")
        s = styles.double() - styles.double().mean(0)
        e = embeddings.double() - embeddings.double().mean(0)
        return cls((s.T @ e / (n - 1)).float(), (e.T @ e / (n - 1)).float(),
                   s.std(0).float(), n)

    def correlation(self, direction: torch.Tensor) -> torch.Tensor:
        """(C,) correlation over the samples between each channel and the coordinate e . d
        (0 for channels that do not vary, or a direction along which nothing varies)."""
        d = direction.to(self.cross).flatten()
        coordinate_sd = float(d @ self.embedding_cov @ d) ** 0.5
        varies = self.style_std > 1e-8
        if coordinate_sd < 1e-12:
            return torch.zeros_like(self.style_std)
        corr = (self.cross @ d) / (self.style_std.clamp_min(1e-8) * coordinate_sd)
        return torch.where(varies, corr, torch.zeros_like(corr))


def gated_scores(scores: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
    """Relevance scores kept where the channel also varies with the direction the same way
    (score * |corr| where their signs agree, else 0)."""
    agree = torch.sign(corr) == torch.sign(scores)
    return torch.where(agree, scores * corr.abs(), torch.zeros_like(scores))


def gated_channel_scores(relevance: Relevance, covariation: Covariation,
                         direction: torch.Tensor) -> torch.Tensor:
    """A text direction's relevance scores (one per relevance channel), gated."""
    corr = covariation.correlation(direction)[relevance.channels.cpu()]
    return gated_scores(channel_scores(relevance, direction).cpu(), corr)


# ------------------------------------------------------------------------ sampling


@dataclass
class Samples:
    w: torch.Tensor  # (N, w_dim)
    embeddings: torch.Tensor  # (N, D) unit CLIP image embeddings


def sample_w(gen: Generator, seeds: torch.Tensor, psi: float,
             sampler: WSampler | None) -> torch.Tensor:
    """(B, w_dim) latents for seeds: the pack's own sampler, or Gaussian z per seed."""
    device = gen.w_avg.device
    with torch.no_grad():
        if sampler is not None:
            w = sampler(seeds).to(device)
            return w[:, 0] if w.ndim == 3 else w
        z = torch.cat([torch.randn(1, gen.z_dim, generator=torch.Generator().manual_seed(
            int(s))) for s in seeds]).to(device)
        return gen.truncate(gen.map_z(z), psi)


class Sampling:
    """n images from seeds seed_base.. : iterating gives Progress per batch, then their
    Samples. `start` holds the first samples, drawn before (a resumed run): the sampling
    goes on after them. `drawn()` is what is drawn so far, to keep for a resume.

    Without a batch size, as many per call as the generator's resolution allows (64 at
    any size needed about 33 GB at 1024 px)."""

    def __init__(self, gen: Generator, clip: ImageTextEncoder, n: int, seed_base: int,
                 psi: float, sampler: WSampler | None, batch_size: int | None = None,
                 start: Samples | None = None):
        self.gen, self.clip, self.n, self.seed_base = gen, clip, n, seed_base
        self.psi, self.sampler = psi, sampler
        self.batch_size = batch_size or gd.suggested_batch_size(gen)
        self._ws = [start.w] if start is not None else []
        self._embs = [start.embeddings] if start is not None else []
        self.done = len(start.w) if start is not None else 0

    def drawn(self) -> Samples:
        if not self._ws:
            return Samples(torch.zeros(0, self.gen.w_dim), torch.zeros(0, 0))
        return Samples(torch.cat(self._ws), torch.cat(self._embs))

    def __iter__(self) -> Iterator[Progress | Samples]:
        gen = self.gen
        while self.done < self.n:
            b = min(self.batch_size, self.n - self.done)
            seeds = torch.arange(self.done, self.done + b) + self.seed_base
            w = sample_w(gen, seeds, self.psi, self.sampler)
            with torch.no_grad():
                img = gen.synthesize(gen.styles(w))
                self._embs.append(self.clip.encode_images(img, normalize=True).float().cpu())
            self._ws.append(w.float().cpu())
            self.done += b
            yield Progress(self.done, self.n, f"sampling: {self.done}/{self.n} images")
        yield self.drawn()


def iter_samples(gen: Generator, clip: ImageTextEncoder, n: int, seed_base: int, psi: float,
                 sampler: WSampler | None, batch_size: int | None = None
                 ) -> Iterator[Progress | Samples]:
    """n images from seeds seed_base.. : Progress per batch, then their w and embeddings."""
    yield from Sampling(gen, clip, n, seed_base, psi, sampler, batch_size)


def covariation_of(gen: Generator, samples: Samples) -> Covariation:
    """The co-variation of the generator's style channels with the samples' embeddings."""
    with torch.no_grad():
        styles = gen.styles(samples.w.to(gen.w_avg.device)).flat().float().cpu()
    return Covariation.from_samples(styles, samples.embeddings)
