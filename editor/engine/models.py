"""Which generator the editor shows: the bundled demo pack by default, or a user's file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from editor.core.checkpoints import load_generator
from editor.core.generator import Generator

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEMO_GENERATOR = RESOURCES / "models" / "toyfaces" / "generator.safetensors"


@dataclass
class ModelInfo:
    """What the UI may know about a loaded model (the generator stays opaque to it)."""

    name: str
    path: str
    resolution: int
    source_format: str
    content_hash: str
    generator: Generator


def default_generator_path() -> Path | None:
    return DEMO_GENERATOR if DEMO_GENERATOR.exists() else None


def load_model_info(path: str | Path, device: torch.device | str = "cpu") -> ModelInfo:
    loaded = load_generator(path, device=device)
    return ModelInfo(
        name=Path(path).stem,
        path=str(path),
        resolution=loaded.generator.img_resolution,
        source_format=loaded.source_format,
        content_hash=loaded.content_hash,
        generator=loaded.generator,
    )
