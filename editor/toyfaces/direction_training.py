"""Teach the demo generator that its style space is edited by global directions.

A global direction (StyleCLIP) adds one fixed style change to every face. Our generator is
trained on exact attribute one-hots only, so the style codes it has seen for an attribute
are a handful of points per face, and a fixed push from them lands off the training data:
the generator's own edit, averaged over faces into one direction, moved 7 of 34 edits to
their target with every other attribute kept at strength 1, and fewer at 1.5 (2) or 2 (1),
although asked face by face it makes 16.

Here part of each training batch is a face with such a push added to its style code, and
the regression target is the world's drawing of the face with the pushed attribute set to
the pushed value (the rest of the face unchanged). The push has the form a text edit has:
the averaged change of one attribute value, kept on its strongest channels only (a random
number of them, as a text edit keeps only those passing beta) and scaled so its largest
channel moves a random number of standard deviations (a text edit's alpha). Pushes toward
the value a face already has are included: the face must stay as it is.

Measured (2026-12-06, 2-core CPU): 3,000 steps with half of each batch pushed, continued
from the shipped generator (`--continue-from ... --grouped-styles --direction-pushes 0.5
--lr 4e-4`, 13 minutes). benchmarks.meaning against the shipped generator in its own
precompute: gated text edits (the default) 5/34 pass in both, mean "others unchanged where
reached" 85.3 % (shipped 83.2 %), mean "both" 57.5 % (56.2 %); ungated CLIP edits 3/34
(1/34); the generator asked per face 15/34 (16/34), averaged 6/34 (7/34). Too small a gain
to replace the shipped generator; the option stays for longer runs (a GPU makes them
minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from editor.core.generator import Generator
from editor.core.style_code import StyleCode
from editor.toyfaces import conditioning
from editor.toyfaces.attributes import ATTRIBUTES, Attributes, sample_attributes

Face = tuple[Attributes, int]  # attributes and jitter seed

FIT_FACES = 256  # faces the averaged changes are measured on
REFRESH_STEPS = 200  # the generator changes while it trains: re-measure this often
MIN_CHANNELS = 10  # fewest channels a push keeps (a text edit's auto-beta keeps 20)
STRENGTH_RANGE = (1.5, 4.5)  # the pushed channel furthest moved, in its std
NEGLIGIBLE = 1e-3  # |change| / std below this is float noise, not a channel of the edit


@dataclass
class AveragedChanges:
    """Per (attribute, value): the mean flat style change of faces asked for the value that
    they lack; and every channel's std over the faces."""

    changes: dict[tuple[str, str], torch.Tensor]
    std: torch.Tensor


def random_faces(rng: np.random.Generator, n: int) -> list[Face]:
    return [(sample_attributes(rng), int(rng.integers(2**31 - 1))) for _ in range(n)]


def encode_faces(faces: list[Face]) -> torch.Tensor:
    """(N, Z_DIM) latents of faces."""
    return torch.from_numpy(np.stack([conditioning.encode(a, j) for a, j in faces]))


def flat_styles(gen: Generator, faces: list[Face]) -> torch.Tensor:
    """(N, C) flat style codes of faces (untruncated, as training samples them)."""
    return gen.styles(gen.map_z(encode_faces(faces).to(gen.w_avg.device))).flat()


@torch.no_grad()
def averaged_changes(gen: Generator, faces: list[Face]) -> AveragedChanges:
    base = flat_styles(gen, faces)
    changes = {}
    for name, values in ATTRIBUTES.items():
        for value in values:
            lacking = [i for i, (a, _) in enumerate(faces) if getattr(a, name) != value]
            asked = flat_styles(gen, [(faces[i][0].replace(**{name: value}), faces[i][1])
                                      for i in lacking])
            changes[(name, value)] = (asked - base[lacking]).mean(0)
    return AveragedChanges(changes, base.std(0).clamp_min(1e-8))


def push(change: torch.Tensor, std: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A text-edit-shaped push along `change`: its k strongest channels (in std units; k at
    random between MIN_CHANNELS and all it moves), scaled so the strongest moves a random
    number of std within STRENGTH_RANGE."""
    score = change.abs() / std
    moved = int((score > NEGLIGIBLE).sum())
    if moved == 0:
        return torch.zeros_like(change)
    k = int(rng.integers(min(MIN_CHANNELS, moved), moved + 1))
    keep = torch.topk(score, k).indices
    out = torch.zeros_like(change)
    out[keep] = change[keep]
    strength = float(rng.uniform(*STRENGTH_RANGE))
    return out * (strength / float(score[keep].max()))


def choose_edit(face: Attributes, rng: np.random.Generator) -> tuple[str, str]:
    """An attribute and a value to push it toward (possibly the value it has)."""
    name = list(ATTRIBUTES)[int(rng.integers(len(ATTRIBUTES)))]
    values = ATTRIBUTES[name]
    return name, values[int(rng.integers(len(values)))]


class DirectionPushes:
    """The averaged changes of a training run, re-measured every REFRESH_STEPS steps from
    faces fixed by (seed, refresh index). They are measured on the generator as it is at
    the interval's first push and saved with the checkpoint (state_dict), so a resumed run
    pushes exactly as it would have: measured again at the resumed step, they differed."""

    def __init__(self, seed: int):
        self.seed = seed
        self._index: int | None = None
        self._changes: AveragedChanges | None = None

    def state_dict(self) -> dict:
        if self._changes is None:
            return {"index": -1}
        keys = list(self._changes.changes)
        return {"index": self._index, "keys": [list(k) for k in keys],
                "changes": torch.stack([self._changes.changes[k] for k in keys]).cpu(),
                "std": self._changes.std.cpu()}

    def load_state_dict(self, d: dict) -> None:
        if d["index"] < 0:
            self._index, self._changes = None, None
            return
        changes = {(name, value): row for (name, value), row in zip(d["keys"], d["changes"],
                                                                    strict=True)}
        self._index, self._changes = int(d["index"]), AveragedChanges(changes, d["std"])

    def changes(self, gen: Generator, step: int) -> AveragedChanges:
        index = step // REFRESH_STEPS
        if self._changes is None or self._index != index:
            faces = random_faces(np.random.default_rng([self.seed, index, 0xD1]), FIT_FACES)
            self._changes = averaged_changes(gen, faces)
            self._index = index
        device = gen.w_avg.device  # (restored from a checkpoint: on the CPU)
        if self._changes.std.device != device:
            self._changes = AveragedChanges({k: v.to(device) for k, v in
                                             self._changes.changes.items()},
                                            self._changes.std.to(device))
        return self._changes

    def apply(self, gen: Generator, step: int, code: StyleCode, faces: list[Face],
              fraction: float) -> tuple[StyleCode, list[Face]]:
        """Push a `fraction` of the batch: returns the pushed code and the faces each image
        must now show (the pushed attribute set to the pushed value)."""
        rng = np.random.default_rng([self.seed, step, 0xD2])
        chosen = rng.random(len(faces)) < fraction
        if not chosen.any():
            return code, faces
        averaged = self.changes(gen, step)
        flat = code.flat()
        pushes = torch.zeros_like(flat)
        targets = list(faces)
        for i in np.flatnonzero(chosen):
            attrs, jitter = faces[i]
            name, value = choose_edit(attrs, rng)
            pushes[i] = push(averaged.changes[(name, value)], averaged.std, rng)
            targets[i] = (attrs.replace(**{name: value}), jitter)
        return StyleCode.from_flat(gen.style_specs, flat + pushes), targets
