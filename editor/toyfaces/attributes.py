"""What a demo-world face is: the attribute table, the prior it is sampled from, which
attributes an image actually shows, and the tiny per-image jitter.

This module is the one place that lists attribute values; the renderer, the captions, the
evaluator and the training recipes all read `ATTRIBUTES` rather than spelling values out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# Attribute -> its values, in a fixed order (indices are what one-hot encodings use).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "skin": ("light", "tan", "brown", "dark"),
    "shape": ("round", "long"),
    "hair_colour": ("black", "brown", "blonde", "red", "grey", "blue"),
    "hair_length": ("bald", "short", "long"),
    "glasses": ("none", "glasses", "sunglasses"),
    "mouth": ("smile", "neutral", "frown", "open"),
    "eyes": ("open", "closed"),
    "beard": ("none", "beard"),
    "hat": ("none", "cap", "beanie"),
    "background": ("white", "pink", "green", "purple", "teal"),
}

# Sampling prior: attributes are independent (no correlation a model could shortcut through).
# Uniform, except that bald heads, sunglasses and hats are a little rarer, because each hides
# something (hair colour, eyes, the top of the hair) and we want most images to show it all.
PRIOR: dict[str, tuple[float, ...]] = {
    "skin": (0.25, 0.25, 0.25, 0.25),
    "shape": (0.5, 0.5),
    "hair_colour": (1 / 6,) * 6,
    "hair_length": (0.2, 0.4, 0.4),
    "glasses": (0.4, 0.3, 0.3),
    "mouth": (0.25, 0.25, 0.25, 0.25),
    "eyes": (0.5, 0.5),
    "beard": (0.5, 0.5),
    "hat": (0.4, 0.3, 0.3),
    "background": (0.2,) * 5,
}

STYLES: tuple[str, ...] = ("normal", "grayscale", "sketch", "inverted", "pixel")

# Attributes a rendering style cannot show. Grayscale keeps skin (four clearly different
# lightnesses) but not hair or background hue; a sketch is outlines on white paper.
STYLE_HIDES: dict[str, frozenset[str]] = {
    "normal": frozenset(),
    "grayscale": frozenset({"hair_colour", "background"}),
    "sketch": frozenset({"skin", "hair_colour", "background"}),
    "inverted": frozenset(),
    "pixel": frozenset(),
}

N_COMBINATIONS = int(np.prod([len(v) for v in ATTRIBUTES.values()]))


@dataclass(frozen=True)
class Attributes:
    """One face. Field names are the keys of `ATTRIBUTES`; values are checked on creation."""

    skin: str = "light"
    shape: str = "round"
    hair_colour: str = "brown"
    hair_length: str = "short"
    glasses: str = "none"
    mouth: str = "smile"
    eyes: str = "open"
    beard: str = "none"
    hat: str = "none"
    background: str = "white"

    def __post_init__(self) -> None:
        for name, values in ATTRIBUTES.items():
            value = getattr(self, name)
            if value not in values:
                raise ValueError(f"{name}={value!r} is not one of {values}")

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def replace(self, **changes: str) -> Attributes:
        return dataclasses.replace(self, **changes)

    def indices(self) -> dict[str, int]:
        return {name: ATTRIBUTES[name].index(getattr(self, name)) for name in ATTRIBUTES}

    @classmethod
    def from_indices(cls, indices: dict[str, int]) -> Attributes:
        return cls(**{name: ATTRIBUTES[name][int(i)] for name, i in indices.items()})


assert tuple(f.name for f in dataclasses.fields(Attributes)) == tuple(ATTRIBUTES)


def sample_attributes(rng: np.random.Generator) -> Attributes:
    """One face from `PRIOR` (attributes independent)."""
    return Attributes(**{
        name: values[rng.choice(len(values), p=PRIOR[name])]
        for name, values in ATTRIBUTES.items()
    })


def visibility(attrs: Attributes, style: str = "normal") -> dict[str, bool]:
    """Which attributes the rendered image shows; downstream scores an attribute only where
    it is visible. The drawing is built to match these rules:

    - sunglasses (filled dark lenses) hide the eyes; clear glasses do not;
    - a bald head has no hair colour, unless it has a beard: beards are drawn in the hair
      colour, so a bald bearded face shows its hair colour on the jaw;
    - hats hide nothing that is an attribute: they cover the crown only, and short hair
      keeps visible sideburns (and long hair its sides) below the hat, so hair length and
      hair colour still read under a cap or a beanie (a bald head under a hat reads as no
      hair at the sides and ears);
    - beards leave a bare patch around the mouth, so the mouth is always visible;
    - styles hide colours as listed in `STYLE_HIDES`.
    """
    if style not in STYLE_HIDES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    vis = {name: True for name in ATTRIBUTES}
    if attrs.glasses == "sunglasses":
        vis["eyes"] = False
    if attrs.hair_length == "bald" and attrs.beard == "none":
        vis["hair_colour"] = False
    for name in STYLE_HIDES[style]:
        vis[name] = False
    return vis


@dataclass(frozen=True)
class Jitter:
    """The small per-image nuisance: a shift of up to a pixel (in 64-px units) and a colour
    offset (RGB, 0-255 units) on the skin, hair and background."""

    dx: float = 0.0
    dy: float = 0.0
    skin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hair: tuple[float, float, float] = (0.0, 0.0, 0.0)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)

    MAX_SHIFT = 1.0
    MAX_COLOUR = 8.0

    @classmethod
    def from_seed(cls, seed: int | None) -> Jitter:
        """Deterministic jitter from a seed; None means no jitter at all."""
        if seed is None:
            return cls()
        rng = np.random.default_rng([int(seed), 0x7F4A])  # own stream, apart from sampling
        shift = rng.uniform(-cls.MAX_SHIFT, cls.MAX_SHIFT, 2)
        colour = rng.uniform(-cls.MAX_COLOUR, cls.MAX_COLOUR, (3, 3))
        return cls(float(shift[0]), float(shift[1]),
                   *(tuple(float(c) for c in row) for row in colour))

    def vector(self) -> np.ndarray:
        """11 numbers in [-1, 1], e.g. to condition a generator on the nuisance."""
        colours = np.array([self.skin, self.hair, self.background]).ravel() / self.MAX_COLOUR
        shift = np.array([self.dx, self.dy]) / self.MAX_SHIFT
        return np.concatenate([shift, colours]).astype(np.float32)
