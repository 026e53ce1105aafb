"""Model packs: a generator, a CLIP model and what was precomputed for the pair.

The bundled demo pack (resources/models/toyfaces) is the default. Opening a pack loads both
models; its global-direction data comes from the cache, or from the precompute job, which
callers run with progress and cancel (the CLI prints it, the GUI shows it in a job panel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from editor.core.clip_model import ClipModel
from editor.core.errors import ClipError
from editor.methods import precompute as pc
from editor.methods.global_directions import Progress, RelevanceConfig

from .compose import EditingContext
from .models import RESOURCES, ModelInfo, load_model_info
from .session import ModelIdentity

DEMO_DIR = RESOURCES / "models" / "toyfaces"
DEMO_CLIP = DEMO_DIR / "clip.safetensors"
# The demo pack's global directions: the paper's settings, on its 928 style channels.
DEMO_RELEVANCE = RelevanceConfig(n_images=100, k_sigma=5.0, psi=1.0)
DEMO_STATS_SAMPLES = 10_000


@dataclass(frozen=True)
class ClipSource:
    """Where a CLIP model comes from: our/open_clip file, or an open_clip (arch, tag)."""

    path: str | None = None
    arch: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        return self.path or f"{self.arch}/{self.tag}"


def demo_clip_source() -> ClipSource:
    return ClipSource(path=str(DEMO_CLIP))


def load_clip(source: ClipSource, device: str | torch.device = "cpu") -> ClipModel:
    if source.path:
        path = Path(source.path)
        if path.suffix == ".safetensors":
            try:
                return ClipModel.load(path, device=device)
            except ClipError:  # not our format: try it as an open_clip checkpoint
                if not source.arch:
                    raise
        return ClipModel.from_checkpoint(source.arch, path, device=device)
    if not (source.arch and source.tag):
        raise ValueError("a CLIP source needs a file or an (architecture, tag) pair")
    return ClipModel.from_pretrained(source.arch, source.tag, device=device)


@dataclass
class OpenPack:
    model: ModelInfo
    clip: ClipModel
    relevance_config: RelevanceConfig
    stats_samples: int
    data: pc.PackData | None = None

    @property
    def sampler(self) -> str | None:
        return self.model.sampler

    def sample_w(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Seeds -> W+ with the generator's own sampler (None for Gaussian z)."""
        z_for_seed = self.model.z_for_seed
        if z_for_seed is None:
            return None
        gen = self.model.generator

        def sample(seeds: torch.Tensor) -> torch.Tensor:
            z = torch.cat([z_for_seed(int(s)) for s in seeds]).to(gen.w_avg.device)
            return gen.mapping(z, psi=1.0)

        return sample

    def cached_data(self) -> pc.PackData | None:
        self.data = pc.load_pack_data(
            self.model.content_hash, self.clip.content_hash, self.stats_samples,
            self.relevance_config, sampler=self.sampler or pc.DEFAULT_SAMPLER)
        return self.data

    def precompute(self, cancel=None) -> Iterator[Progress | pc.PackData]:
        """The precompute job (resumable); the final item is the PackData."""
        for item in pc.precompute_pack(
                self.model.generator, self.clip, self.model.content_hash,
                self.clip.content_hash, self.stats_samples, self.relevance_config,
                sample_w=self.sample_w(), cancel=cancel, sampler=self.sampler):
            if isinstance(item, pc.PackData):
                self.data = item
            yield item

    def context(self) -> EditingContext:
        return EditingContext(
            self.model.generator, self.clip,
            self.data.stats if self.data else None,
            self.data.relevance if self.data else None,
            z_for_seed=self.model.z_for_seed,
        )

    def identities(self) -> tuple[ModelIdentity, ModelIdentity]:
        return (ModelIdentity(self.model.name, self.model.content_hash, self.model.path),
                ModelIdentity(self.clip.name, self.clip.content_hash, ""))


def open_pack(generator_path: str | Path, clip_source: ClipSource,
              device: str | torch.device = "cpu",
              relevance_config: RelevanceConfig | None = None,
              stats_samples: int | None = None) -> OpenPack:
    model = load_model_info(generator_path, device)
    clip = load_clip(clip_source, device)
    is_demo = Path(generator_path).resolve().parent == DEMO_DIR.resolve()
    pack = OpenPack(model, clip,
                    relevance_config or (DEMO_RELEVANCE if is_demo else RelevanceConfig()),
                    stats_samples or DEMO_STATS_SAMPLES)
    pack.cached_data()
    return pack
