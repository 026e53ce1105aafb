"""Captions for demo-world faces, and prompts in the captions' own words.

A caption is a head naming the style and face shape, then one short item per other visible
attribute, in random order, with synonyms:

    a round cartoon face with pale skin, short ginger hair, closed eyes, a grin,
    spectacles, no beard, a beanie and teal background

Every visible attribute is always named (negatives too: "no glasses"), hidden ones never
(see `visibility`). The vocabulary is small (~80 words) and every caption fits
`CONTEXT_LENGTH` tokens of open_clip's tokenizer, start and end tokens included: items are
1-3 tokens and heads are shorter for styles that show every attribute; the tests check
the worst case over all combinations. Zero-shot and editing prompts reuse the same phrases,
since a small CLIP only knows the phrasings it was trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from editor.toyfaces.attributes import ATTRIBUTES, STYLES, Attributes, visibility

CONTEXT_LENGTH = 32

# Style -> caption heads; "{shape}" takes a face-shape word. The first is the canonical one.
HEADS: dict[str, tuple[str, ...]] = {
    "normal": ("a {shape} cartoon face", "a cartoon {shape} face", "a drawn {shape} face"),
    "grayscale": ("a grayscale {shape} cartoon face", "a black and white {shape} face",
                  "a monochrome {shape} cartoon face"),
    "sketch": ("a pencil sketch of a {shape} face", "a sketch of a {shape} face",
               "a line drawing of a {shape} face"),
    "inverted": ("an inverted {shape} face", "a negative {shape} face",
                 "a {shape} negative face"),
    "pixel": ("a pixel {shape} face", "a {shape} pixel face", "a mosaic {shape} face"),
}

SHAPE_WORDS: dict[str, tuple[str, ...]] = {"round": ("round", "chubby"), "long": ("long", "narrow")}

COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "brown": ("brown", "brunette"),
    "blonde": ("blonde", "blond", "golden"),
    "red": ("red", "ginger"),
    "grey": ("grey", "gray", "silver"),
    "blue": ("blue",),
}

BALD: tuple[str, ...] = ("bald head", "bald")

# Attribute -> value -> phrases (first = canonical), for the attributes with an item of
# their own. Hair colour and length share the hair item; beards may name the colour.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "skin": {
        "light": ("pale skin", "fair skin", "light skin"),
        "tan": ("tan skin", "olive skin"),
        "brown": ("brown skin",),
        "dark": ("dark skin",),
    },
    "eyes": {
        "open": ("open eyes", "eyes open"),
        "closed": ("closed eyes", "eyes closed", "shut eyes"),
    },
    "mouth": {
        "smile": ("a smile", "smiling", "a grin", "grinning"),
        "neutral": ("neutral mouth", "straight mouth"),
        "frown": ("a frown", "sad mouth"),
        "open": ("open mouth", "mouth open"),
    },
    "glasses": {
        "none": ("no glasses",),
        "glasses": ("glasses", "spectacles", "eyeglasses"),
        "sunglasses": ("sunglasses", "shades"),
    },
    "beard": {
        "none": ("no beard", "beardless"),
        "beard": ("a beard", "bearded"),
    },
    "hat": {
        "none": ("no hat", "hatless", "bareheaded"),
        "cap": ("a cap", "baseball cap"),
        "beanie": ("a beanie", "woolly hat", "knit hat"),
    },
    "background": {
        "white": ("white background",),
        "pink": ("pink background",),
        "green": ("green background", "mint background"),
        "purple": ("purple background", "lavender background"),
        "teal": ("teal background", "turquoise background"),
    },
}

_ITEM_ORDER = ("skin", "hair", "eyes", "mouth", "glasses", "beard", "hat", "background")
_STOPWORDS = frozenset({"a", "an", "of", "with", "and"})


def _hair_options(attrs: Attributes, vis: dict[str, bool]) -> tuple[str, ...]:
    if attrs.hair_length == "bald":
        return BALD
    if not vis["hair_colour"]:
        return (f"{attrs.hair_length} hair",)
    return tuple(f"{attrs.hair_length} {c} hair" for c in COLOUR_WORDS[attrs.hair_colour])


def _beard_options(attrs: Attributes, vis: dict[str, bool]) -> tuple[str, ...]:
    plain = PHRASES["beard"][attrs.beard]
    if attrs.beard == "none" or not vis["hair_colour"]:
        return plain
    coloured = tuple(f"{c} beard" for c in COLOUR_WORDS[attrs.hair_colour])
    # a bald head names its hair colour through the beard, so the beard must say it
    return coloured if attrs.hair_length == "bald" else plain + coloured


def caption_slots(attrs: Attributes, style: str = "normal") -> tuple[tuple[str, ...],
                                                                     list[tuple[str, ...]]]:
    """The head options and, per named item, its phrase options (canonical first)."""
    vis = visibility(attrs, style)
    heads = tuple(h.format(shape=w) for h in HEADS[style] for w in SHAPE_WORDS[attrs.shape])
    items: list[tuple[str, ...]] = []
    for slot in _ITEM_ORDER:
        if slot == "hair":
            items.append(_hair_options(attrs, vis))
        elif slot == "beard":
            items.append(_beard_options(attrs, vis))
        elif vis[slot]:
            items.append(PHRASES[slot][getattr(attrs, slot)])
    return heads, items


JOINING_MARKS = (",",)  # what captions put between their items, besides words


def _join(head: str, items: list[str], with_word: bool, and_last: bool) -> str:
    body = ", ".join(items[:-1]) + (" and " if and_last else ", ") + items[-1]
    return f"{head} with {body}" if with_word else f"{head}, {body}"


def caption(attrs: Attributes, style: str = "normal",
            rng: np.random.Generator | None = None) -> str:
    """A caption naming every visible attribute. Without rng: the canonical wording and
    order; with rng: random synonyms, item order and joining words."""
    heads, slots = caption_slots(attrs, style)
    if rng is None:
        return _join(heads[0], [s[0] for s in slots], True, False)
    head = heads[int(rng.integers(len(heads)))]
    items = [s[int(rng.integers(len(s)))] for s in slots]
    items = [items[i] for i in rng.permutation(len(items))]
    return _join(head, items, bool(rng.random() < 0.7), bool(rng.random() < 0.5))


# ---------------------------------------------------------------------------- reading back


def _item_table() -> dict[str, dict[str, str]]:
    """Every item phrase -> the attribute values it names."""
    table: dict[str, dict[str, str]] = {}
    for name, values in PHRASES.items():
        for value, phrases in values.items():
            for p in phrases:
                table[p] = {name: value}
    for p in BALD:
        table[p] = {"hair_length": "bald"}
    for colour, words in COLOUR_WORDS.items():
        for w in words:
            table[f"{w} beard"] = {"beard": "beard", "hair_colour": colour}
            for length in ("short", "long"):
                table[f"{length} {w} hair"] = {"hair_length": length, "hair_colour": colour}
    for length in ("short", "long"):
        table[f"{length} hair"] = {"hair_length": length}
    return table


def _head_table() -> dict[str, tuple[str, str]]:
    return {h.format(shape=w): (style, shape)
            for style, heads in HEADS.items() for h in heads
            for shape, words in SHAPE_WORDS.items() for w in words}


ITEM_PHRASES = _item_table()  # item phrase -> {attribute: value} it names
HEAD_PHRASES = _head_table()  # head -> (style, shape)


def parse_caption(text: str) -> tuple[str, dict[str, str]]:
    """(style, attribute values named) of a caption made by `caption`; raises ValueError on
    text it did not make. Used to check captions, and by evaluation code to read them."""
    head = max((h for h in HEAD_PHRASES if text.startswith(h)), key=len, default=None)
    if head is None:
        raise ValueError(f"no known caption head in {text!r}")
    style, shape = HEAD_PHRASES[head]
    rest = text[len(head):]
    for lead in (" with ", ", "):
        if rest.startswith(lead):
            rest = rest[len(lead):]
            break
    else:
        raise ValueError(f"unexpected text after the head in {text!r}")
    named = {"shape": shape}
    for item in re.split(r", | and ", rest):
        if item not in ITEM_PHRASES:
            raise ValueError(f"unknown caption item {item!r} in {text!r}")
        named.update(ITEM_PHRASES[item])
    return style, named


# ---------------------------------------------------------------------------- prompts


def style_prompt(style: str = "normal") -> str:
    """The plain face of a style: "a cartoon face", "a pencil sketch of a face", ..."""
    return HEADS[style][0].replace("{shape} ", "")


def _with(style: str, phrase: str) -> str:
    return f"{style_prompt(style)} with {phrase}"


def _value_phrases(attribute: str, value: str) -> tuple[str, ...]:
    if attribute == "hair_colour":
        return tuple(f"{length} {c} hair" for c in COLOUR_WORDS[value]
                     for length in ("short", "long"))
    if attribute == "hair_length":
        return BALD if value == "bald" else (f"{value} hair",)
    return PHRASES[attribute][value]


def prompt_sets(attribute: str, style: str = "normal") -> dict[str, list[str]]:
    """Value -> every phrasing captions use for it, as whole prompts (average their
    embeddings for zero-shot scores and text directions)."""
    if attribute == "style":
        return {s: list(dict.fromkeys(h.replace("{shape} ", "") for h in HEADS[s]))
                for s in STYLES}
    if attribute == "shape":
        return {v: [HEADS[style][0].format(shape=w) for w in SHAPE_WORDS[v]]
                for v in ATTRIBUTES["shape"]}
    return {v: [_with(style, p) for p in _value_phrases(attribute, v)]
            for v in ATTRIBUTES[attribute]}


def plain_prompts(attribute: str, style: str = "normal") -> dict[str, str]:
    """Value -> one prompt for zero-shot evaluation, e.g. for "glasses": "a cartoon face
    with no glasses" / "... with glasses" / "... with sunglasses". `attribute` may also be
    "style". Hair colour uses the short-hair wording ("short red hair")."""
    return {v: prompts[0] for v, prompts in prompt_sets(attribute, style).items()}


@dataclass(frozen=True)
class EditPrompt:
    """A global-direction edit in the captions' words: text direction = target - neutral."""

    attribute: str
    value: str
    neutral: str
    target: str


def edit_prompts(style: str = "normal") -> list[EditPrompt]:
    """For every attribute value: neutral "a cartoon face" -> target "a cartoon face with
    sunglasses" (etc.). For an edit between two given values use `edit_pair`."""
    neutral = style_prompt(style)
    return [EditPrompt(a, v, neutral, target)
            for a in ATTRIBUTES for v, target in plain_prompts(a, style).items()]


def edit_pair(attribute: str, source: str, target: str, style: str = "normal") -> EditPrompt:
    """From one value to another: "a cartoon face with no glasses" -> "... with sunglasses"."""
    prompts = plain_prompts(attribute, style)
    return EditPrompt(attribute, target, prompts[source], prompts[target])


def vocabulary(content_only: bool = True) -> set[str]:
    """The words captions use (without "a", "with", ... unless content_only is False)."""
    texts = list(ITEM_PHRASES) + list(HEAD_PHRASES)
    words = {w for t in texts for w in t.split()} | {"and", "with"}
    return words - _STOPWORDS if content_only else words
