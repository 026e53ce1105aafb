"""Which generator the editor shows: the bundled demo pack by default, or a user's file."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from editor.core.checkpoints import load_generator
from editor.core.errors import AtelierError, IncompatibleModelError
from editor.core.generator import Generator
from editor.core.paths import DEMO_MODELS_DIR
from editor.toyfaces import conditioning

from .session import ModelIdentity, Source

DEMO_GENERATOR = DEMO_MODELS_DIR / "generator.safetensors"


@dataclass
class ModelInfo:
    """What the UI may know about a loaded model (the generator stays opaque to it)."""

    name: str
    path: str
    resolution: int
    source_format: str
    content_hash: str
    generator: Generator
    z_for_seed: Callable[[int], torch.Tensor] | None = None  # None: z ~ N(0, I) from the seed
    sampler: str | None = None  # the name of z_for_seed's sampler, for cache keys

    @property
    def seed_psi(self) -> float:
        """The ψ a seed starts at, in the window and `atelier edit` alike: 1.0 for
        attribute-conditioned latents (the demo world, where truncation would blend faces),
        else the usual 0.7."""
        return 1.0 if self.z_for_seed is not None else Source.psi


# Generators that read something other than Gaussian z name their sampler in their metadata.
SAMPLERS: dict[str, Callable[[int], torch.Tensor]] = {
    conditioning.SAMPLER_NAME: conditioning.z_for_seed,
}


def sampler_for(metadata: dict) -> Callable[[int], torch.Tensor] | None:
    name = metadata.get("sampler")
    if name is None:
        return None
    if name not in SAMPLERS:
        raise IncompatibleModelError(f"this generator needs the latent sampler {name!r}, which "
                                     f"this version of Latent Atelier does not know")
    return SAMPLERS[name]


def default_generator_path() -> Path | None:
    return DEMO_GENERATOR if DEMO_GENERATOR.exists() else None


def demo_generator_hash() -> str | None:
    """The bundled demo generator's content hash (None: it is not here, or unreadable):
    a recipe made with the demo in another install names that install's path. Small
    (64 px): loaded in a fraction of a second, once for each state of its file (the
    toyfaces recipes may write it again while the window runs)."""
    try:
        info = DEMO_GENERATOR.stat()
    except OSError:
        return None
    return _demo_hash_of(info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=1)
def _demo_hash_of(_mtime_ns: int, _size: int) -> str | None:
    try:
        return load_generator(DEMO_GENERATOR).content_hash
    except (OSError, AtelierError):
        return None


def another_installs_demo(path: str | Path) -> bool:
    """Whether `path` is the bundled demo generator of another installation on this
    machine (a checkout's .venv and a `pip install`, two checkouts): they share the user's
    settings, and that file, opened as any generator, is a model without the demo's
    shipped directions and CLIP (the window asked for a precompute)."""
    try:
        here, there = DEMO_GENERATOR.resolve(), Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return there != here and there.parts[-5:] == here.parts[-5:]


def this_installs_model(path: str) -> str:
    """A remembered generator path, with another installation's demo taken as this one's."""
    return str(DEMO_GENERATOR) if another_installs_demo(path) and DEMO_GENERATOR.is_file() \
        else path


def local_generator(made: ModelIdentity) -> Path | None:
    """A file here that holds the generator a recipe names: this installation's demo where
    the recipe was made with the same demo (in another installation, whose file may be here
    too), else its own path where that file is here."""
    here = bool(made.path) and Path(made.path).is_file()
    if (not here or another_installs_demo(made.path)) and made.content_hash \
            and made.content_hash == demo_generator_hash():
        return DEMO_GENERATOR
    return Path(made.path) if here else None


def load_model_info(path: str | Path, device: torch.device | str = "cpu") -> ModelInfo:
    loaded = load_generator(path, device=device)
    return ModelInfo(
        name=loaded.metadata.get("name") or Path(path).stem,
        # absolute: a recipe records it, and a replay from another folder must find it
        path=os.path.abspath(path),
        resolution=loaded.generator.img_resolution,
        source_format=loaded.source_format,
        content_hash=loaded.content_hash,
        generator=loaded.generator,
        z_for_seed=sampler_for(loaded.metadata),
        sampler=loaded.metadata.get("sampler"),
    )
