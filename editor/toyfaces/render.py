"""Drawing the demo-world faces: PIL at 4x the output size, box-downsampled (antialiasing).

Coordinates below are in 64-px units whatever the output size. Small features are drawn
big on purpose (eyes 10 px wide with white sclera, mouths 16-18 px wide with thick strokes,
glasses frames 2 px thick) so that a small generator and a small CLIP can learn them: a
prototype with 2-4 px features learned no eyes or mouths at all. Eyes, brows and mouth sit
at the same place on every face (round and long faces differ in width and chin), and the
jitter moves the whole face by at most a pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from editor.toyfaces.attributes import (
    STYLES,
    Attributes,
    Jitter,
    sample_attributes,
)

SUPERSAMPLE = 4
PIXEL_GRID = 32  # the pixel-art style shows a 32x32 grid of blocks (16 loses the mouths)
PIXEL_LEVELS = 8  # ... in an 8x8x8 colour palette

RGB = tuple[int, int, int]

SKIN: dict[str, RGB] = {
    "light": (250, 221, 194),
    "tan": (222, 172, 124),
    "brown": (164, 108, 70),
    "dark": (98, 62, 44),
}
HAIR: dict[str, RGB] = {
    "black": (36, 32, 34),
    "brown": (120, 72, 38),
    "blonde": (242, 204, 92),
    "red": (226, 80, 34),
    "grey": (172, 172, 176),
    "blue": (50, 96, 222),
}
BACKGROUND: dict[str, RGB] = {
    "white": (242, 242, 236),
    "pink": (248, 186, 206),
    "green": (176, 224, 166),
    "purple": (196, 178, 240),
    "teal": (96, 196, 194),
}

# Hats get hues no hair or background has, so a hat never reads as hair.
_FIXED: dict[str, RGB] = {
    "outline": (48, 32, 32),
    "ink": (34, 20, 20),
    "sclera": (255, 255, 255),
    "mouth_in": (118, 26, 42),
    "teeth": (255, 255, 250),
    "tongue": (236, 112, 124),
    "lips": (222, 104, 112),
    "frame": (18, 18, 24),
    "lens": (22, 26, 40),
    "glint": (200, 210, 230),
    "cap": (34, 124, 70),
    "cap_brim": (22, 86, 48),
    "beanie": (150, 44, 124),
    "beanie_band": (198, 92, 172),
    "pompom": (246, 236, 242),
    "shirt": (84, 94, 120),
}

# The pencil sketch: the same drawing with paper-white fills and pencil outlines. Hair,
# beard and hats get one light shading whatever their colour (colours are hidden in it).
_SKETCH: dict[str, RGB] = {
    "background": (255, 255, 255),
    "skin": (255, 255, 255),
    "skin_shade": (110, 110, 110),
    "shine": (255, 255, 255),
    "hair": (214, 214, 214),
    "outline": (58, 58, 62),
    "ink": (38, 38, 42),
    "sclera": (255, 255, 255),
    "mouth_in": (96, 96, 100),
    "teeth": (255, 255, 255),
    "tongue": (190, 190, 190),
    "lips": (255, 255, 255),
    "frame": (38, 38, 42),
    "lens": (72, 72, 78),
    "glint": (200, 200, 200),
    "cap": (236, 236, 236),
    "cap_brim": (200, 200, 200),
    "beanie": (236, 236, 236),
    "beanie_band": (200, 200, 200),
    "pompom": (255, 255, 255),
    "shirt": (246, 246, 246),
}


def _clip(c: Sequence[float]) -> RGB:
    return tuple(int(min(255, max(0, round(v)))) for v in c)  # type: ignore[return-value]


def palette(attrs: Attributes, jitter: Jitter, style: str = "normal") -> dict[str, RGB]:
    """Colour of every drawing role for one face."""
    if style == "sketch":
        return dict(_SKETCH)
    skin = np.add(SKIN[attrs.skin], jitter.skin)
    pal = dict(_FIXED)
    pal["skin"] = _clip(skin)
    pal["skin_shade"] = _clip(skin * 0.74)
    pal["shine"] = _clip(skin * 0.4 + 255 * 0.6)
    pal["hair"] = _clip(np.add(HAIR[attrs.hair_colour], jitter.hair))
    pal["background"] = _clip(np.add(BACKGROUND[attrs.background], jitter.background))
    return pal


# ---------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class FaceLayout:
    """Where things are, in 64-px units. Features share positions across face shapes."""

    cx: float
    cy: float
    rx: float
    ry: float
    eye_y: float = 32.0
    eye_dx: float = 9.0  # eye centres at cx +- eye_dx
    brow_y: float = 26.5
    mouth_y: float = 45.5
    hat_y: float = 23.0  # lower edge of a hat

    @property
    def top(self) -> float:
        return self.cy - self.ry

    @property
    def chin(self) -> float:
        return self.cy + self.ry

    def half_width(self, y: float) -> float:
        """Half the face width at height y (0 outside the face)."""
        t = (y - self.cy) / self.ry
        return self.rx * math.sqrt(max(0.0, 1.0 - t * t))


LAYOUTS: dict[str, FaceLayout] = {
    "round": FaceLayout(cx=32, cy=34, rx=19.5, ry=20),
    "long": FaceLayout(cx=32, cy=34.5, rx=15.5, ry=24.5),
}


# ---------------------------------------------------------------------------- painter


class _Painter:
    """ImageDraw in 64-px units, shifted by the jitter, at SUPERSAMPLE x the output size."""

    def __init__(self, img: Image.Image, size: int, jitter: Jitter, colours: dict[str, RGB]):
        self.draw = ImageDraw.Draw(img)
        self.k = size * SUPERSAMPLE / 64.0
        self.dx, self.dy = jitter.dx, jitter.dy
        self.c = colours

    def _pt(self, x: float, y: float) -> tuple[float, float]:
        return ((x + self.dx) * self.k, (y + self.dy) * self.k)

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [*self._pt(x0, y0), *self._pt(x1, y1)]

    def _w(self, width: float) -> int:
        return max(1, round(width * self.k))

    def _col(self, role: str | None) -> RGB | int | None:
        return None if role is None else self.c[role]

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: str | None,
                outline: str | None = "outline", width: float = 1.0) -> None:
        self.draw.ellipse(self._box(cx - rx, cy - ry, cx + rx, cy + ry), fill=self._col(fill),
                          outline=self._col(outline), width=self._w(width))

    def chord(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float,
              fill: str, outline: str | None = "outline", width: float = 1.0) -> None:
        self.draw.chord(self._box(cx - rx, cy - ry, cx + rx, cy + ry), start, end,
                        fill=self._col(fill), outline=self._col(outline), width=self._w(width))

    def arc(self, cx: float, cy: float, rx: float, ry: float, start: float, end: float,
            colour: str, width: float) -> None:
        self.draw.arc(self._box(cx - rx, cy - ry, cx + rx, cy + ry), start, end,
                      fill=self._col(colour), width=self._w(width))

    def polygon(self, pts: Sequence[tuple[float, float]], fill: str,
                outline: str | None = "outline", width: float = 1.0) -> None:
        self.draw.polygon([self._pt(x, y) for x, y in pts], fill=self._col(fill),
                          outline=self._col(outline), width=self._w(width))

    def line(self, pts: Sequence[tuple[float, float]], colour: str, width: float,
             round_ends: bool = False) -> None:
        self.draw.line([self._pt(x, y) for x, y in pts], fill=self._col(colour),
                       width=self._w(width), joint="curve")
        if round_ends:  # PIL has square caps only
            for x, y in (pts[0], pts[-1]):
                self.ellipse(x, y, width / 2, width / 2, colour, None)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str | None,
             outline: str | None = "outline", width: float = 1.0, radius: float = 0.0) -> None:
        self.draw.rounded_rectangle(self._box(x0, y0, x1, y1), radius=radius * self.k,
                                    fill=self._col(fill), outline=self._col(outline),
                                    width=self._w(width))


# ---------------------------------------------------------------------------- parts


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, t0: float, t1: float,
                    n: int = 32) -> list[tuple[float, float]]:
    """Points on an ellipse (angles in radians, y pointing down)."""
    ts = np.linspace(t0, t1, n)
    return list(zip((cx + rx * np.cos(ts)).tolist(), (cy + ry * np.sin(ts)).tolist(),
                    strict=True))


def _draw_body(p: _Painter, f: FaceLayout) -> None:
    p.ellipse(f.cx, 68, 27, 13, "shirt")
    p.rect(f.cx - 6, f.chin - 10, f.cx + 6, 58, "skin_shade", "outline")


def _draw_long_hair_back(p: _Painter, f: FaceLayout) -> None:
    """Long hair falls behind the face to the shoulders, wider than the face."""
    rx, bottom = f.rx + 5.0, 61.5
    dome = _ellipse_points(f.cx, f.cy, rx, f.ry + 3.5, math.pi, 2 * math.pi, 28)
    right = [(f.cx + rx + 1.2, bottom - 5), (f.cx + rx - 1.5, bottom)]
    left = [(f.cx - rx + 1.5, bottom), (f.cx - rx - 1.2, bottom - 5)]
    p.polygon(dome + right + left, "hair")


def _draw_ears(p: _Painter, f: FaceLayout) -> None:
    for side in (-1, 1):
        x = f.cx + side * (f.rx - 0.5)
        p.ellipse(x, 35, 3.2, 4.5, "skin")
        p.arc(x, 35, 1.6, 2.6, 90 - side * 90, 270 - side * 90, "skin_shade", 1.0)


def _draw_hair_top(p: _Painter, f: FaceLayout, long: bool) -> None:
    """Hair over the crown with a fringe, coming down the sides as sideburns (short) or
    side locks (long). The sides stay visible under a hat, which ends above the fringe."""
    puff = 3.0 if long else 1.6
    side_bottom = 42.0 if long else 37.0
    side_width = 4.6 if long else 4.2
    fringe_y = 24.5
    orx, ory = f.rx + puff, f.ry + puff + 0.5
    a = math.asin(min(1.0, (side_bottom - f.cy) / ory))
    outer = _ellipse_points(f.cx, f.cy, orx, ory, math.pi - a, 2 * math.pi + a, 40)
    ys = np.linspace(side_bottom, fringe_y, 8).tolist()
    right = [(f.cx + f.half_width(y) - side_width, y) for y in ys]
    inner_half = f.half_width(fringe_y) - side_width
    xs = np.linspace(f.cx + inner_half, f.cx - inner_half, 9).tolist()
    fringe = [(x, fringe_y - (0.0 if i % 2 else 2.2)) for i, x in enumerate(xs)]
    left = [(f.cx - f.half_width(y) + side_width, y) for y in reversed(ys)]
    inner = right + fringe[1:-1] + left
    if long:  # no outline across the locks: they run on into the hair behind the face
        p.polygon(outer + inner, "hair", None)
        p.line(inner, "outline", 1.0)
    else:
        p.polygon(outer + inner, "hair")


def _draw_bald_shine(p: _Painter, f: FaceLayout) -> None:
    p.arc(f.cx - 4, f.top + 7, 7, 5, 200, 260, "shine", 1.6)


def _draw_beard(p: _Painter, f: FaceLayout) -> None:
    """A full beard on the jaw and cheeks, with a bare patch around the mouth so the mouth
    always shows (see `visibility`)."""
    top = 36.0
    ory = f.ry + 3.5
    orx = f.rx + 1.2
    a = math.asin((top - f.cy) / ory)
    outer = _ellipse_points(f.cx, f.cy, orx, ory, -a, math.pi + a, 36)  # right -> chin -> left
    half = f.half_width(top)
    upper = [(f.cx - half + 0.5, top), (f.cx - 8, top + 1.5), (f.cx, top + 3.0),
             (f.cx + 8, top + 1.5), (f.cx + half - 0.5, top)]
    p.polygon(outer + upper, "hair")
    p.ellipse(f.cx, f.mouth_y - 0.3, 12.6, 7.6, "skin", "outline", 0.8)
    p.chord(f.cx, f.mouth_y - 4.4, 9.0, 3.6, 180, 360, "hair", "outline", 0.8)  # moustache


def _draw_cap(p: _Painter, f: FaceLayout) -> None:
    crown_top = f.top - 6.0
    ry = f.hat_y - crown_top
    p.chord(f.cx, f.hat_y, f.rx + 2.5, ry, 180, 360, "cap")
    p.arc(f.cx, f.hat_y, 4.0, ry, 240, 300, "cap_brim", 1.0)  # front seam
    p.ellipse(f.cx, crown_top + 0.8, 1.6, 1.2, "cap_brim")  # button
    # a visor across the forehead that juts out to one side: a silhouette no beanie has
    x0, x1 = f.cx - f.rx - 2.5, f.cx + f.rx + 2.5
    p.polygon([(x0, f.hat_y - 1.5), (x1 + 4, f.hat_y - 2.5), (x1 + 9.5, f.hat_y - 1.5),
               (x1 + 10, f.hat_y + 1.0), (x1 + 3, f.hat_y + 2.4), (f.cx, f.hat_y + 2.0),
               (x0, f.hat_y + 1.2)], "cap_brim")


def _draw_beanie(p: _Painter, f: FaceLayout) -> None:
    dome_top = f.top - 7.5
    band_top = f.hat_y - 6.0
    p.chord(f.cx, band_top + 1, f.rx + 2.5, band_top + 1 - dome_top, 180, 360, "beanie")
    p.ellipse(f.cx, dome_top - 1.0, 4.2, 4.0, "pompom")
    x0, x1 = f.cx - f.rx - 3.5, f.cx + f.rx + 3.5
    p.rect(x0, band_top, x1, f.hat_y, "beanie_band", radius=2.0)
    for x in np.arange(x0 + 3.5, x1 - 2, 3.5).tolist():  # knit ribs
        p.line([(x, band_top + 1.2), (x, f.hat_y - 1.2)], "beanie", 1.0)


def _draw_brows(p: _Painter, f: FaceLayout) -> None:
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        p.arc(ex, f.brow_y + 2.5, 6.2, 3.2, 205, 335, "ink", 2.2)


def _draw_eyes(p: _Painter, f: FaceLayout, state: str) -> None:
    for side in (-1, 1):
        ex, ey = f.cx + side * f.eye_dx, f.eye_y
        if state == "open":
            p.ellipse(ex, ey, 5.8, 4.9, "sclera", "ink", 1.1)
            p.ellipse(ex, ey + 0.3, 2.9, 2.9, "ink", None)
            p.ellipse(ex - 1.0, ey - 0.7, 0.9, 0.9, "sclera", None)
        else:  # a thick closed-lid curve with lashes
            p.arc(ex, ey - 1.4, 5.8, 3.8, 15, 165, "ink", 2.6)
            for dx in (-3.5, 0.0, 3.5):
                p.line([(ex + dx, ey + 2.0), (ex + dx * 1.25, ey + 4.0)], "ink", 1.1)


def _draw_nose(p: _Painter, f: FaceLayout) -> None:
    p.arc(f.cx, 37.2, 2.4, 2.0, 20, 160, "skin_shade", 1.3)


def _draw_mouth(p: _Painter, f: FaceLayout, mouth: str) -> None:
    cx, my = f.cx, f.mouth_y
    if mouth == "smile":  # a wide open grin: flat top, round bottom, teeth and tongue
        top = my - 3.8
        p.chord(cx, top - 0.2, 11.2, 10.0, 0, 180, "lips", None)
        p.chord(cx, top, 10.0, 8.6, 0, 180, "mouth_in", "ink", 1.2)
        p.rect(cx - 7.0, top + 0.5, cx + 7.0, top + 2.8, "teeth", None)
        p.chord(cx, top + 8.6, 5.0, 2.8, 180, 360, "tongue", None)
    elif mouth == "neutral":
        p.line([(cx - 9, my + 1.0), (cx + 9, my + 1.0)], "lips", 5.0, round_ends=True)
        p.line([(cx - 9, my + 1.0), (cx + 9, my + 1.0)], "ink", 2.6, round_ends=True)
    elif mouth == "frown":  # a thick arch, corners pulled down
        p.arc(cx, my + 5.0, 10.2, 9.0, 203, 337, "lips", 5.0)
        p.arc(cx, my + 5.0, 9.4, 8.0, 203, 337, "ink", 2.6)
    else:  # open: a round "O" with a tongue
        p.ellipse(cx, my, 7.0, 6.6, "lips", None)
        p.ellipse(cx, my, 5.8, 5.4, "mouth_in", "ink", 1.2)
        p.chord(cx, my + 5.4, 3.8, 2.9, 180, 360, "tongue", None)


def _draw_glasses(p: _Painter, f: FaceLayout, kind: str) -> None:
    """Thick dark frames around the eyes; sunglasses fill them with dark lenses."""
    y = f.eye_y
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        fill = "lens" if kind == "sunglasses" else None
        p.rect(ex - 7.3, y - 5.9, ex + 7.3, y + 5.9, fill, "frame", 2.2, radius=3.2)
        if kind == "sunglasses":
            p.line([(ex - 4.2, y - 1.5), (ex - 1.7, y - 3.8)], "glint", 1.2)
        outer = ex + side * 7.3
        p.line([(outer, y - 2.5), (f.cx + side * (f.half_width(y - 2.5) + 0.5), y - 3.2)],
               "frame", 1.5)
    p.arc(f.cx, y - 0.4, 2.0, 1.8, 200, 340, "frame", 1.8)  # bridge


# ---------------------------------------------------------------------------- render


def _draw_face(img: Image.Image, attrs: Attributes, size: int, jitter: Jitter,
               colours: dict[str, RGB]) -> None:
    p = _Painter(img, size, jitter, colours)
    f = LAYOUTS[attrs.shape]
    long_hair = attrs.hair_length == "long"
    _draw_body(p, f)
    if long_hair:
        _draw_long_hair_back(p, f)
    else:
        _draw_ears(p, f)
    p.ellipse(f.cx, f.cy, f.rx, f.ry, "skin")
    if attrs.beard == "beard":
        _draw_beard(p, f)
    if attrs.hair_length == "bald":
        if attrs.hat == "none":
            _draw_bald_shine(p, f)
    else:
        _draw_hair_top(p, f, long_hair)
    if attrs.hat == "cap":
        _draw_cap(p, f)
    elif attrs.hat == "beanie":
        _draw_beanie(p, f)
    _draw_brows(p, f)
    _draw_eyes(p, f, attrs.eyes)
    _draw_nose(p, f)
    _draw_mouth(p, f, attrs.mouth)
    if attrs.glasses != "none":
        _draw_glasses(p, f, attrs.glasses)


def _downsample(img: Image.Image) -> np.ndarray:
    return np.asarray(img.reduce(SUPERSAMPLE))


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _styled(img: Image.Image, size: int, style: str) -> np.ndarray:
    """The drawing at 4x size -> the output array in the style. Every style but the
    sketch (which has its own palette pass) is a transform of the normal drawing."""
    if style == "pixel":  # block means on a coarse grid, a small palette, hard edges
        if size % PIXEL_GRID:
            raise ValueError(f"the pixel style needs a size divisible by {PIXEL_GRID}")
        blocks = np.asarray(img.reduce(img.width // PIXEL_GRID), np.float32)
        step = 255.0 / (PIXEL_LEVELS - 1)
        q = Image.fromarray((np.rint(blocks / step) * step).astype(np.uint8))
        return np.asarray(q.resize((size, size), Image.Resampling.NEAREST))
    rgb = _downsample(img)
    if style == "grayscale":
        y = np.rint(rgb.astype(np.float32) @ _LUMA).astype(np.uint8)
        return np.repeat(y[..., None], 3, axis=2)
    if style == "inverted":
        return 255 - rgb
    return rgb


def render(attrs: Attributes, style: str = "normal", size: int = 64,
           jitter_seed: int | None = None) -> np.ndarray:
    """One face as a (size, size, 3) uint8 array. Deterministic in (attrs, style, size,
    jitter_seed); jitter_seed None draws the face without jitter."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    jitter = Jitter.from_seed(jitter_seed)
    colours = palette(attrs, jitter, style)
    img = Image.new("RGB", (size * SUPERSAMPLE,) * 2, colours["background"])
    _draw_face(img, attrs, size, jitter, colours)
    return _styled(img, size, style)


def feature_mask(attrs: Attributes, size: int = 64, jitter_seed: int | None = None) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 over the small features (eyes, brows, mouth and
    glasses), for a loss that weights those pixels. The eye and mouth boxes cover every
    value of those attributes, so the mask says where they can differ, not what is drawn."""
    jitter = Jitter.from_seed(jitter_seed)
    img = Image.new("L", (size * SUPERSAMPLE,) * 2, 0)
    p = _Painter(img, size, jitter, {"on": 255})  # type: ignore[dict-item]
    f = LAYOUTS[attrs.shape]
    for side in (-1, 1):
        ex = f.cx + side * f.eye_dx
        p.rect(ex - 8.3, f.eye_y - 6.9, ex + 8.3, f.eye_y + 6.9, "on", None, radius=3)
        p.rect(ex - 7.2, f.brow_y - 2.5, ex + 7.2, f.brow_y + 2.0, "on", None, radius=2)
    p.rect(f.cx - 12.0, f.mouth_y - 7.0, f.cx + 12.0, f.mouth_y + 7.0, "on", None, radius=4)
    if attrs.glasses != "none":
        p.rect(f.cx - 2.5, f.eye_y - 4, f.cx + 2.5, f.eye_y + 1, "on", None)
        for side in (-1, 1):
            edge = f.cx + side * (f.half_width(f.eye_y) + 1.0)
            x0, x1 = sorted((f.cx + side * 16.0, edge))
            p.rect(x0, f.eye_y - 5, x1, f.eye_y - 1, "on", None)
    return _downsample(img).astype(np.float32) / 255.0


class Batch(NamedTuple):
    images: np.ndarray  # (N, size, size, 3) uint8
    attrs: list[Attributes]
    styles: list[str]
    jitter_seeds: list[int | None]  # None where rendered without jitter
    masks: np.ndarray | None  # (N, size, size) float32 when asked for


def render_batch(n: int, seed: int, styles: Sequence[str] = ("normal",), size: int = 64,
                 masks: bool = False, jitter: bool = True) -> Batch:
    """n faces sampled from the prior, each in a style drawn uniformly from `styles`.
    Single-process on purpose: training shares two cores with everything else."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    mask_arr = np.empty((n, size, size), np.float32) if masks else None
    attrs: list[Attributes] = []
    chosen: list[str] = []
    jitters: list[int | None] = []
    for i in range(n):
        a = sample_attributes(rng)
        style = styles[int(rng.integers(len(styles)))]
        drawn = int(rng.integers(2**31 - 1))  # drawn even without jitter: same faces
        js = drawn if jitter else None
        images[i] = render(a, style, size, js)
        if mask_arr is not None:
            mask_arr[i] = feature_mask(a, size, js)
        attrs.append(a)
        chosen.append(style)
        jitters.append(js)
    return Batch(images, attrs, chosen, jitters, mask_arr)
