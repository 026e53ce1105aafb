"""How style channels vary with a CLIP direction across the generator's own samples, and
relevance scores gated by it.

Global-direction relevance (StyleCLIP) measures what a channel does when pushed alone. On a
generator that spreads each attribute over many channels, pushing one channel can read like
a text direction without being what the generator changes to follow it: on the demo world
two thirds of a text edit's 20 channels belong to other attributes (benchmarks/meaning.py).
The sampled images tell the two apart: a channel the generator uses for the direction also
varies with it from image to image.

    cov = Covariation.from_samples(styles, embeddings)  # (N, C) codes, (N, D) unit embeddings
    corr = cov.correlation(direction)                   # corr(s_c, e . d) over the samples
    scores = gated_scores(relevance_scores, corr)       # r * |corr| where the signs agree

Only second moments are kept, so any direction's correlations cost one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Covariation:
    cross: torch.Tensor  # (C, D) Cov(s, e): style channels against embedding dimensions
    embedding_cov: torch.Tensor  # (D, D) Cov(e)
    style_std: torch.Tensor  # (C,)
    n_samples: int

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
