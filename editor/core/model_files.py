"""What a model file is: a StyleGAN2 generator or CLIP weights, found by reading it the way
each is loaded (nothing in it is run). Used before a file is copied into the model cache,
so that an import never records a file the editor cannot open."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoints import DamagedFileError, load_generator
from .clip_model import (
    check_architecture,
    describes_itself,
    is_stored_constant,
    matching_architectures,
    missing_tokenizer_package,
    read_weights,
)
from .errors import AtelierError, CheckpointError, ClipError, UnsafePickleError

# Names every open_clip / OpenAI CLIP state dict has, in one tower or the other.
_CLIP_IMAGE_KEYS = ("visual.conv1.weight", "visual.proj", "visual.trunk.")
_CLIP_TEXT_KEYS = ("token_embedding.weight", "text_projection", "text.")


@dataclass(frozen=True)
class ModelFile:
    kind: str  # "generator" | "clip"
    resolution: int | None = None  # generators
    # CLIP weights: the open_clip architecture they are loaded as; None for a CLIP file
    # saved by this program, which carries its own config
    arch: str | None = None


def identify_model_file(path: str | Path, clip_arch: str | None = None,
                        stopped: Callable[[], bool] | None = None) -> ModelFile:
    """Read `path` as a generator, else as CLIP weights; AtelierError saying why it is
    neither (the generator's reason first: most imported files are generators).

    CLIP weights are matched to the open_clip architecture whose names and shapes they fit
    (`clip_arch`, when given, is checked instead of searched for): weights no architecture
    fits could never be loaded, and are refused. The search (up to half a minute) ends
    early, with an AtelierError, once `stopped()` says so."""
    path = Path(path)
    try:
        loaded = load_generator(path)
    except (UnsafePickleError, DamagedFileError):  # neither could be read as CLIP either
        raise
    except AtelierError as e:
        generator_error = e
    else:
        if clip_arch is not None:
            raise CheckpointError(f"{path.name} is a StyleGAN2 generator, not CLIP weights "
                                  f"of {clip_arch}")
        return ModelFile("generator", loaded.generator.config.resolution)
    try:
        state = read_weights(path)
    except AtelierError:
        raise CheckpointError(f"{path.name} is not a model file this program can open: "
                              f"{generator_error}") from generator_error
    if not _looks_like_clip(state):
        raise CheckpointError(f"{path.name} is neither a StyleGAN2 generator nor CLIP weights "
                              f"({generator_error})")
    # a TorchScript file's attention masks hold -inf by design, and are never loaded
    bad = [k for k, t in state.items() if t.is_floating_point() and not is_stored_constant(k)
           and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{path.name}: {bad[0]} holds NaN or infinite values; the file "
                              "is damaged")
    return ModelFile("clip", arch=_clip_architecture(path, state, clip_arch, stopped))


def _clip_architecture(path: Path, state: dict[str, torch.Tensor], asked: str | None,
                       stopped: Callable[[], bool] | None = None) -> str | None:
    arch = _fitting_architecture(path, state, asked, stopped)
    if arch is not None and (package := missing_tokenizer_package(arch)):
        raise CheckpointError(
            f"{path.name} holds {arch} weights, whose tokenizer needs the Python package "
            f"{package}, which is not installed (pip install {package}): without it no "
            f"prompt could be read")
    return arch


def _fitting_architecture(path: Path, state: dict[str, torch.Tensor], asked: str | None,
                          stopped: Callable[[], bool] | None = None) -> str | None:
    if asked is not None:
        try:
            return check_architecture(asked, state, path.name)
        except ClipError as e:
            raise CheckpointError(str(e)) from e
    if describes_itself(path):
        return None
    try:
        found = matching_architectures(state, stopped)
    except ClipError as e:
        raise CheckpointError(f"{path.name}: {e}") from e
    if not found:
        raise CheckpointError(
            f"{path.name} holds CLIP weights, but of no architecture open_clip builds "
            "(their names and shapes fit none); a CLIP with a Hugging Face text tower is "
            "not supported")
    if len(found) > 1:  # twins differ in what shapes do not show (the input size, say)
        raise CheckpointError(
            f"{path.name} holds CLIP weights that fit {len(found)} open_clip architectures "
            f"({', '.join(found)}), which differ in settings the weights do not show; say "
            f"which: atelier models import {path.name} --clip-arch {found[0]}")
    return found[0]


def _looks_like_clip(state: dict[str, torch.Tensor]) -> bool:
    keys = list(state)
    return (any(k.startswith(_CLIP_IMAGE_KEYS) for k in keys)
            and any(k.startswith(_CLIP_TEXT_KEYS) for k in keys))
