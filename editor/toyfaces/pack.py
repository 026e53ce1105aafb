"""The demo pack: the demo world's generator, CLIP and evaluator, loaded together.

    from editor.toyfaces.pack import load_demo_pack
    pack = load_demo_pack()
    img = pack.generator.generate(pack.z_for_seed(7))

Each model is a safetensors file with a JSON card beside it (written by its recipe,
`python -m editor.toyfaces.train {generator,clip,evaluator}`). A missing file raises
`DemoPackMissingError` naming the command that makes it; a file that does not match its
card (sha256) or a generator trained for another latent sampler raises `DemoPackError`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from editor.core.checkpoints import load_generator
from editor.core.clip_model import ClipModel
from editor.core.errors import AtelierError
from editor.core.generator import Generator
from editor.core.hashing import file_sha256
from editor.core.paths import DEMO_MODELS_DIR
from editor.toyfaces import conditioning
from editor.toyfaces.evaluator import Evaluator

MODELS: tuple[str, ...] = ("generator", "clip", "evaluator")


class DemoPackError(AtelierError):
    """The demo pack's files are there but unusable (damaged, or not what the card says)."""


class DemoPackMissingError(DemoPackError, FileNotFoundError):
    """A demo-pack file has not been made yet; the message names the recipe that makes it."""


@dataclass
class DemoPack:
    generator: Generator
    clip: ClipModel
    evaluator: Evaluator
    paths: dict[str, Path]  # model name -> weights file
    cards: dict[str, dict]  # model name -> its JSON card
    folder: Path
    device: str = "cpu"
    # seed -> z (1, Z_DIM): the conditioned generator's replacement for torch.randn
    z_for_seed: Callable[[int], torch.Tensor] = field(default=conditioning.z_for_seed)


def recipe_command(model: str, folder: Path | None = None) -> str:
    """The command that makes `model`'s files in `folder` (default: the bundled pack's:
    without --out, the recipe writes there, not into the folder asked for)."""
    out = "" if folder is None or folder.resolve() == DEMO_MODELS_DIR.resolve() \
        else f" --out {shlex.quote(str(folder))}"  # pasted into a shell
    return f"python -m editor.toyfaces.train {model}{out}"


def pack_paths(folder: str | Path | None = None) -> dict[str, tuple[Path, Path]]:
    """model name -> (weights file, card file)."""
    folder = Path(folder) if folder is not None else DEMO_MODELS_DIR
    return {m: (folder / f"{m}.safetensors", folder / f"{m}.json") for m in MODELS}


def missing_files(folder: str | Path | None = None) -> list[Path]:
    """The pack's files that do not exist (empty when the pack is complete)."""
    return [p for pair in pack_paths(folder).values() for p in pair if not p.is_file()]


def _read_card(model: str, weights: Path, card_path: Path, verify: bool) -> dict:
    folder = weights.parent
    for p in (weights, card_path):
        if not p.is_file():
            raise DemoPackMissingError(
                f"the demo {model} is not trained yet: {p} is missing. Make it with "
                f"`{recipe_command(model, folder)}` (it resumes if interrupted).")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DemoPackError(f"{card_path.name} is not a readable model card ({e}); run "
                            f"`{recipe_command(model, folder)}` again") from e
    # the card is written after the weights: a mismatch means an interrupted export or a
    # file replaced by hand, and the gates/benchmarks quoted in the card would not apply
    if verify and card.get("sha256") != file_sha256(weights):
        raise DemoPackError(f"{weights.name} does not match the sha256 in {card_path.name}; "
                            f"run `{recipe_command(model, folder)}` again to re-export it")
    return card


def load_demo_pack(device: str = "cpu", folder: str | Path | None = None,
                   verify: bool = True) -> DemoPack:
    """Load the demo generator, CLIP and evaluator from `folder` (default:
    editor/resources/models/toyfaces). `verify` checks each file against its card's sha256."""
    paths = pack_paths(folder)
    cards = {m: _read_card(m, w, c, verify) for m, (w, c) in paths.items()}
    weights = {m: w for m, (w, _) in paths.items()}
    loaded = load_generator(weights["generator"], device=device)
    sampler = loaded.metadata.get("sampler")
    if sampler != conditioning.SAMPLER_NAME:
        raise DemoPackError(
            f"{weights['generator'].name} was trained for latent sampler {sampler!r}, this "
            f"program samples with {conditioning.SAMPLER_NAME!r}; run "
            f"`{recipe_command('generator', weights['generator'].parent)}` again")
    clip = ClipModel.load(weights["clip"], device=device)
    evaluator = Evaluator.load(weights["evaluator"], device=device)
    return DemoPack(loaded.generator, clip, evaluator, weights, cards,
                    weights["generator"].parent, device)


def timed_load(device: str = "cpu", folder: str | Path | None = None,
               verify: bool = True) -> tuple[DemoPack, float]:
    """The pack and the seconds loading took (module imports excluded: they are part of
    program start-up, which the app pays once whatever it loads)."""
    t0 = time.perf_counter()
    pack = load_demo_pack(device, folder, verify)
    return pack, time.perf_counter() - t0
