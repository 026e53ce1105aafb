"""The document: a source, an ordered edit stack and the models it was made with.

Plain data, no Qt and no tensors: a session serialises to a versioned JSON *recipe* that the
CLI can replay, and exported PNGs carry it. Tensors that edits need (style deltas) are
computed and cached by the editing context (`engine.compose`), keyed by each edit's
parameters, so changing one edit's strength recomputes nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from editor.core.errors import one_line, shortened

RECIPE_FORMAT = "latent-atelier-recipe"
# 2: a W+ source may carry its latent (`wplus_data`), and a delta edit its delta as packed
# text (`engine.tensor_text`) instead of a list of numbers
# 3: packed text may be compressed ("f32z:")
RECIPE_VERSION = 3


# What a source may ask for, everywhere (the window's boxes, the CLI, recipes): seeds as the
# window's seed box holds them, and truncation within what is still a face.
MAX_SEED = 2**31 - 1
PSI_RANGE = (-1.0, 2.0)
# an edit's strength (α), typed in the window or given to the CLI: ten times the sliders'
# reach, far past where a face stays a face (1e30 drew a flat square without a word)
STRENGTH_RANGE = (-100.0, 100.0)


class RecipeError(ValueError):
    """A recipe could not be read (not JSON, another program's, or a newer version)."""


@dataclass(frozen=True)
class Source:
    """Where the image starts: a seed (z -> W+ with truncation psi), or a W+ latent: a
    file, or the latent itself (`wplus_data`, what inversion makes), so that a recipe of an
    inverted picture reproduces anywhere without the file beside it."""

    kind: str = "seed"  # "seed" | "wplus"
    seed: int = 0
    psi: float = 0.7
    wplus_path: str | None = None  # for kind == "wplus": a .npy/.pt/.safetensors W+ file
    label: str = ""
    wplus_data: str | None = None  # for kind == "wplus": engine.compose.encode_wplus text

    def __post_init__(self) -> None:
        if self.kind not in ("seed", "wplus"):
            raise RecipeError(f"unknown source kind {shown_value(self.kind)}")
        if self.kind == "wplus" and not (self.wplus_path or self.wplus_data):
            raise RecipeError("a W+ source needs its latent or the path of its latent file")

    @property
    def latent_file(self) -> str | None:
        """The latent file this source is read from: a W+ source that names a file and
        does not carry its latent (None for a seed, or a latent carried in the recipe)."""
        if self.kind != "wplus" or self.wplus_data:
            return None
        return self.wplus_path or None

    def found_in(self, folder: str | Path | None) -> Source:
        """This source with a latent file named by a relative path (an older or
        hand-written session) looked for in `folder`, the recipe's own, wherever the
        replay runs from; other sources as they are."""
        if self.latent_file is None or folder is None or Path(self.latent_file).is_absolute():
            return self
        # absolute: a recipe that records it (a CLI replay's output, written elsewhere)
        # would have it read beside itself again, in another folder
        return replace(self, wplus_path=os.path.abspath(Path(folder) / self.wplus_path))


@dataclass(frozen=True)
class Edit:
    """One entry of the edit stack. `params` hold what defines the direction (for a global
    direction: neutral, target, beta); `strength` is alpha and never changes the direction."""

    kind: str  # "global" | later: "discovered", "mapper", "optimized"
    params: dict[str, Any]
    strength: float = 4.0
    enabled: bool = True
    name: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def direction_key(self) -> str:
        """What the cached style delta depends on: kind + params, not strength."""
        return json.dumps([self.kind, self.params], sort_keys=True)

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        if self.kind == "global":
            # on one line: a prompt with a line break (a recipe of `atelier edit --target`
            # given one) drew its stack row's title as two lines, each cut in half
            neutral, target = (one_line(str(self.params.get(k, "")))
                               for k in ("neutral", "target"))
            return f"{neutral} → {target}"
        if self.params.get("label"):  # a discovered direction, its name cleared
            return direction_title(str(self.params["label"]),
                                   str(self.params.get("negative_label") or ""),
                                   str(self.params.get("method") or ""))
        return self.kind


# A discovered direction's transfers, as the window names them; the first is the default
# (editor.methods.discovery.DEFAULT_METHOD), which an edit's title leaves unsaid.
TRANSFERS = (("focused", "Focused"), ("style", "Style channels"), ("w", "W space"))


def direction_title(label: str, negative_label: str = "", method: str = "") -> str:
    """A discovered direction's name: its two ends, or its label alone; with the transfer
    of an edit made through another than the default (the same direction through another
    transfer is another edit: two rows read "beard ↔ no beard" alike)."""
    title = f"{negative_label} ↔ {label}" if negative_label else label
    other = method != TRANSFERS[0][0] and dict(TRANSFERS).get(method)
    return f"{title} ({other})" if other else title


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    content_hash: str
    path: str = ""


@dataclass(frozen=True)
class Session:
    source: Source = field(default_factory=Source)
    edits: tuple[Edit, ...] = ()
    generator: ModelIdentity | None = None
    clip: ModelIdentity | None = None
    noise_mode: str = "const"
    # The global directions text edits used (a pack computed here, or one imported from
    # StyleCLIP's fs3.npy): two packs for the same models can differ. Older recipes: None.
    directions: ModelIdentity | None = None

    # ----------------------------------------------------------------- stack operations
    def with_models(self, generator: ModelIdentity | None, clip: ModelIdentity | None,
                    directions: ModelIdentity | None = None) -> Session:
        """The models it is rendered with, recorded; the global directions only where a
        text edit uses them."""
        return replace(self, generator=generator, clip=clip,
                       directions=directions if self.has_text_edits else None)

    def with_source(self, source: Source) -> Session:
        return replace(self, source=source)

    def add_edit(self, edit: Edit, index: int | None = None) -> Session:
        edits = list(self.edits)
        edits.insert(len(edits) if index is None else index, edit)
        return replace(self, edits=tuple(edits))

    def remove_edit(self, edit_id: str) -> Session:
        return replace(self, edits=tuple(e for e in self.edits if e.id != edit_id))

    def update_edit(self, edit_id: str, **changes: Any) -> Session:
        if not any(e.id == edit_id for e in self.edits):
            raise KeyError(f"no edit with id {edit_id}")
        return replace(self, edits=tuple(replace(e, **changes) if e.id == edit_id else e
                                         for e in self.edits))

    def move_edit(self, edit_id: str, new_index: int) -> Session:
        edits = list(self.edits)
        i = next(i for i, e in enumerate(edits) if e.id == edit_id)
        edit = edits.pop(i)
        edits.insert(max(0, min(new_index, len(edits))), edit)
        return replace(self, edits=tuple(edits))

    def edit(self, edit_id: str) -> Edit:
        for e in self.edits:
            if e.id == edit_id:
                return e
        raise KeyError(f"no edit with id {edit_id}")

    @property
    def active_edits(self) -> tuple[Edit, ...]:
        return tuple(e for e in self.edits if e.enabled and e.strength != 0)

    @property
    def has_text_edits(self) -> bool:
        """Whether an active edit is a text edit (its direction comes from the CLIP)."""
        return any(e.kind == "global" for e in self.active_edits)

    @property
    def needs_clip(self) -> bool:
        """Whether an enabled edit is a text edit: its direction comes from the CLIP, and
        the window shows its status even at strength 0."""
        return any(e.enabled and e.kind == "global" for e in self.edits)

    def model_mismatches(self, generator: ModelIdentity | None, clip: ModelIdentity | None,
                         directions: ModelIdentity | None = None
                         ) -> list[tuple[str, ModelIdentity, ModelIdentity]]:
        """(kind, recorded, used) for each model this session's recipe names that differs
        from the one it is rendered with: the generator, and the CLIP where a text edit
        depends on it; and, where those are the same, the global directions the text edits
        used (other models have other directions anyway). The command line warns of each,
        the window of the first."""
        def differ(pairs: list) -> list[tuple[str, ModelIdentity, ModelIdentity]]:
            return [(kind, recorded, used) for kind, recorded, used in pairs
                    if recorded and used and recorded.content_hash != used.content_hash]

        found = differ([("generator", self.generator, generator)]
                       + ([("CLIP", self.clip, clip)] if self.has_text_edits else []))
        if self.has_text_edits and not found:
            found = differ([("directions", self.directions, directions)])
        return found

    # ----------------------------------------------------------------- recipe JSON
    def to_recipe(self) -> dict:
        return {
            "format": RECIPE_FORMAT,
            # version 1 readers take everything but packed tensors: keep them working
            "version": self._recipe_version(),
            "source": self._source_dict(),
            "edits": [asdict(e) for e in self.edits],
            "generator": asdict(self.generator) if self.generator else None,
            "clip": asdict(self.clip) if self.clip else None,
            "noise_mode": self.noise_mode,
            **({"directions": asdict(self.directions)} if self.directions else {}),
        }

    def _recipe_version(self) -> int:
        """The oldest version whose readers read this recipe: older programs keep
        working with what they know, and say "please update" for what they do not."""
        from .tensor_text import is_compressed  # it loads torch; sessions alone do not

        packed = [self.source.wplus_data, *(e.params.get("delta") for e in self.edits)]
        packed = [p for p in packed if isinstance(p, str) and p]
        if any(is_compressed(p) for p in packed):
            return 3
        return 2 if packed else 1

    def _source_dict(self) -> dict:
        d = asdict(self.source)
        if d["wplus_data"] is None:  # a version-1 reader knows no such field
            del d["wplus_data"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_recipe(), indent=2, sort_keys=False)

    @classmethod
    def from_recipe(cls, d: dict) -> Session:
        if not isinstance(d, dict) or d.get("format") != RECIPE_FORMAT:
            raise RecipeError("not a Latent Atelier recipe")
        version = _integer(d.get("version", 1), "version", minimum=1)
        if version > RECIPE_VERSION:
            raise RecipeError(f"this recipe was written by a newer Latent Atelier (version "
                              f"{version}); please update")
        try:
            _check_recipe(d)
            return cls(
                source=Source(**d["source"]),
                edits=tuple(Edit(**e) for e in d.get("edits", [])),
                generator=ModelIdentity(**d["generator"]) if d.get("generator") else None,
                clip=ModelIdentity(**d["clip"]) if d.get("clip") else None,
                noise_mode=d.get("noise_mode", "const"),
                directions=(ModelIdentity(**d["directions"]) if d.get("directions")
                            else None),
            )
        except KeyError as e:  # not "malformed ('source')"
            raise RecipeError(f"the recipe is incomplete: it has no "
                              f"{shown_value(e.args[0])}") from e
        except TypeError as e:
            raise RecipeError(f"the recipe is incomplete or malformed ({e})") from e

    @classmethod
    def from_json(cls, text: str) -> Session:
        return cls.from_recipe(parse_recipe(text))

    @classmethod
    def load(cls, path: str | Path) -> Session:
        return cls.from_recipe(load_recipe(path))


def parse_recipe(text: str) -> dict:
    """A recipe's JSON as a dict (its fields are checked by `Session.from_recipe`)."""
    if not text.strip():  # "not valid JSON (Expecting value: line 1 column 1)"
        raise RecipeError("the recipe is empty")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        # what a copy or save cut short: it ends where a value or a string was to go on
        if text.strip() and (e.pos >= len(text.rstrip())
                             or e.msg.startswith("Unterminated string")):
            raise RecipeError("the recipe ends too soon: the file is cut short (an "
                              "interrupted copy or download?)") from e
        raise RecipeError(f"the recipe is not valid JSON ({e})") from e
    except ValueError as e:  # Python's own advice (set_int_max_str_digits) is not the user's
        raise RecipeError("the recipe holds a number too long to be one a recipe uses "
                          f"({sys.get_int_max_str_digits()}+ digits)") from e
    except RecursionError as e:
        raise RecipeError("the recipe is not a recipe (nested too deeply)") from e
    if not isinstance(d, dict):
        raise RecipeError("not a Latent Atelier recipe")
    return d


# Far above any session (a thousand edits that each carry a 1024 px direction are about
# 50 MB), and below what takes the window seconds to read (120 MB: 5 s and 0.6 GB).
MAX_RECIPE_BYTES = 64_000_000


def load_recipe(path: str | Path) -> dict:
    """A .json recipe file as a dict."""
    return parse_recipe(read_recipe_text(path))


def read_recipe_text(path: str | Path, what: str = "recipe") -> str:
    """The text of a .json recipe or session file (`what` it is, for the messages):
    RecipeError when it is too large or not UTF-8 text; OSError as reading raises it."""
    path = Path(path)
    size = path.stat().st_size
    if size <= MAX_RECIPE_BYTES:
        # read no more than that: a device or pipe says size 0 (a recipe.json linked to
        # /dev/zero was read until memory ran out)
        with open(path, "rb") as f:
            size = max(size, len(data := f.read(MAX_RECIPE_BYTES + 1)))
    if size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path.name} is {'more than ' if size == MAX_RECIPE_BYTES + 1 else ''}"
                          f"{size / 1e6:,.1f} MB: too large to be a {what} (they are at "
                          f"most {MAX_RECIPE_BYTES / 1e6:,.0f} MB)")
    try:
        # utf-8-sig: a file saved "UTF-8 with BOM" (Notepad) is one all the same
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecipeError(f"{path.name} is not a {what} (not UTF-8 text)") from e


# ----------------------------------------------------------------- recipe checks
# A recipe is a stranger's file: every field is checked for its type and range here, so
# that a bad one is "malformed" at once rather than an exception deep in a render.

NOISE_MODES = ("const", "random", "none")
# what this version draws: a text edit (StyleCLIP global direction) and an explicit style
# delta (a discovered direction)
EDIT_KINDS = ("global", "delta")

# Generous bounds for what a person makes, so that a damaged or generated file is refused
# with a message rather than freezing the window or filling memory (a 60 MB label was
# read, and 3,000 edits made a stack of 3,000 rows). A stack of a thousand edits is far
# beyond a picture's edits, and the window still shows it in seconds. Texts: a prompt
# longer than a line edit's 32,767 characters is kept whole (the prompt panel), and a
# rename box holds that many, so the bound on names, labels and prompts lies above both;
# CLIP itself reads a few dozen words.
MAX_EDITS = 1000
MAX_TEXT_CHARS = 100_000
# the window's stack: a session file holds the prompt being written as one edit more
MAX_STACK = MAX_EDITS - 1


def refuse_unknown(block: dict, known: Iterable[str], subject: str,
                   noun: str = "field") -> None:
    """A field this version does not know in `block` (`subject`: "the recipe's source"):
    say so, since a newer version may have written it and it may change the picture,
    instead of skipping it unsaid or a dataclass's own TypeError."""
    unknown = sorted(set(map(str, block)) - set(known))
    if unknown:
        raise RecipeError(f"{subject} has a {noun} this version does not know "
                          f"({', '.join(unknown)[:80]}); a newer Latent Atelier may have "
                          f"written it")


def _check_fields(block: dict, cls: type, what: str) -> None:
    refuse_unknown(block, (f.name for f in fields(cls)), f"the recipe's {what}")


# A recipe's own fields, and the blocks that files and session files add to it, which
# their readers check (export.OUTPUT_KEY, editor_state.DRAFT_KEY).
RECIPE_FIELDS = ("format", "version", "source", "edits", "generator", "clip", "noise_mode",
                 "directions")
RECIPE_BLOCKS_READ_ELSEWHERE = ("output", "draft_id")


def _check_recipe(d: dict) -> None:
    refuse_unknown(d, (*RECIPE_FIELDS, *RECIPE_BLOCKS_READ_ELSEWHERE), "the recipe")
    source = _mapping(d["source"], "source")
    _check_fields(source, Source, "source")
    _text(source.get("kind", "seed"), "source kind")
    seed = _integer(source.get("seed", 0), "seed", minimum=0)
    if seed > MAX_SEED:
        raise RecipeError(f"the recipe's seed {seed} is above the largest ({MAX_SEED})")
    psi = _number(source.get("psi", 0.7), "psi")
    if not PSI_RANGE[0] <= psi <= PSI_RANGE[1]:
        raise RecipeError(f"the recipe's psi {psi:g} is outside {PSI_RANGE[0]:g} to "
                          f"{PSI_RANGE[1]:g}")
    _text(source.get("wplus_path"), "source wplus_path", optional=True)
    # a packed latent is long by nature (tens of kilobytes at 1024 px): its shape and
    # size are checked when it is read against the generator
    _text(source.get("wplus_data"), "source wplus_data", optional=True, longest=None)
    _text(source.get("label", ""), "source label")
    edits = d.get("edits", [])
    if not isinstance(edits, list):
        raise RecipeError("the recipe's edits must be a list")
    if len(edits) > MAX_EDITS:
        raise RecipeError(f"the recipe has {len(edits):,} edits; Latent Atelier reads at "
                          f"most {MAX_EDITS:,} (a longer stack is a damaged or generated "
                          f"file)")
    ids = [e.get("id") for e in edits if isinstance(e, dict) and "id" in e]
    if len(ids) != len(set(map(str, ids))):
        raise RecipeError("two of the recipe's edits have the same id")
    for i, e in enumerate(edits):
        e = _mapping(e, f"edit {i + 1}")
        _check_fields(e, Edit, f"edit {i + 1}")
        kind = e.get("kind")
        _text(kind, f"edit {i + 1} kind")
        if kind not in EDIT_KINDS:  # not "cannot be applied here": nowhere, by this version
            raise RecipeError(f"the recipe's edit {i + 1} is of a kind this version does "
                              f"not know ({shown_value(kind)}); a newer Latent Atelier may have "
                              f"written it: please update")
        _mapping(e.get("params"), f"edit {i + 1} params")
        if _nesting(e["params"]) > MAX_PARAMS_NESTING:
            raise RecipeError(f"the recipe's edit {i + 1} params are nested too deeply")
        try:
            (check_text_edit_params if kind == "global" else check_delta_params)(e["params"])
        except RecipeError as error:
            raise RecipeError(f"the recipe's edit {i + 1}: {error}") from error
        strength = _number(e.get("strength", 4.0), f"edit {i + 1} strength")
        if not STRENGTH_RANGE[0] <= strength <= STRENGTH_RANGE[1]:
            raise RecipeError(f"the recipe's edit {i + 1} strength {strength:g} is outside "
                              f"{STRENGTH_RANGE[0]:g} to {STRENGTH_RANGE[1]:g}")
        if not isinstance(e.get("enabled", True), bool):
            raise RecipeError(f"the recipe's edit {i + 1} enabled must be true or false")
        for key in ("name", "id"):
            _text(e.get(key, ""), f"edit {i + 1} {key}")
    for key in ("generator", "clip", "directions"):
        if d.get(key) is not None:
            model = _mapping(d[key], key)
            _check_fields(model, ModelIdentity, key)
            for field_name in ("name", "content_hash", "path"):
                _text(model.get(field_name, ""), f"{key} {field_name}")
    mode = d.get("noise_mode", "const")
    if mode not in NOISE_MODES:
        raise RecipeError(f"unknown noise mode {shown_value(mode)} (one of "
                          f"{', '.join(NOISE_MODES)})")


# What defines a text edit's direction. Another key comes from a newer version, whose
# meaning this one would leave out: another picture, drawn in silence.
TEXT_EDIT_PARAMS = ("neutral", "target", "beta", "auto_beta", "min_channels", "gate")


def check_delta_params(p: dict) -> None:
    """An explicit style delta's params, as a recipe may bring them: the delta is there,
    packed text (engine.tensor_text) or a list of numbers, one-dimensional and finite.
    Whether its length fits the generator is the render's to say (another generator's
    edit is left out there, as a text edit that finds no channel is)."""
    if "delta" not in p:
        raise RecipeError("it has no style delta")
    from .tensor_text import PackedTensorError, decode_any_shape  # torch: not for --help

    raw = p["delta"]
    if isinstance(raw, str):
        try:  # its length is checked before anything is unpacked (a few bytes can claim
            # billions of zeros); decoding checks that every value is finite
            empty = decode_any_shape(raw, longest=MAX_DELTA_CHANNELS).numel() == 0
        except PackedTensorError as e:
            raise RecipeError(f"its style delta {e}") from e
        if empty:
            raise RecipeError("its style delta is empty")
        return
    if not (isinstance(raw, list) and all(isinstance(v, (int, float))
                                          and not isinstance(v, bool) for v in raw)):
        raise RecipeError("its style delta is malformed (packed text or a list of numbers "
                          "expected)")
    if not raw:
        raise RecipeError("its style delta is empty")
    if len(raw) > MAX_DELTA_CHANNELS:
        raise RecipeError(f"its style delta has {len(raw):,} numbers; no generator has more "
                          f"than {MAX_DELTA_CHANNELS:,} style channels")
    if not all(map(_finite_float32, raw)):  # drawn in float32: 1e300 is infinite there
        raise RecipeError("its style delta holds non-finite values")


# far above any StyleGAN2's style channels (9,088 at 1024 px): a delta claiming more is a
# damaged or hostile file, refused before it is unpacked
MAX_DELTA_CHANNELS = 1 << 20
_FLOAT32_MAX = 3.4028234663852886e38


def _finite_float32(value: float) -> bool:
    try:
        return abs(float(value)) <= _FLOAT32_MAX  # NaN compares false
    except OverflowError:  # an integer of hundreds of digits
        return False


def check_text_edit_params(p: dict) -> None:
    """A text edit's params, as a recipe may bring them: prompts are text, β and the
    channel minimum numbers (a null one too is refused: every reader has a default for an
    absent value only), the switches true or false, and no setting this version does
    not know."""
    unknown = sorted(set(map(str, p)) - set(TEXT_EDIT_PARAMS))
    if unknown:
        raise RecipeError(f"a text edit has settings this version does not know "
                          f"({', '.join(unknown)[:80]}); a newer Latent Atelier may have "
                          "written it: please update")
    if not isinstance(p.get("target"), str):
        raise RecipeError("a text edit needs a target prompt (text)")
    if not isinstance(p.get("neutral", ""), str):
        raise RecipeError("a text edit's neutral prompt must be text")
    for key in ("target", "neutral"):
        if len(p.get(key, "")) > MAX_TEXT_CHARS:
            raise RecipeError(f"a text edit's {key} prompt has {len(p[key]):,} characters; "
                              f"at most {MAX_TEXT_CHARS:,} are read")
    for key in ("beta", "min_channels"):
        if key in p and finite_number(p[key]) is None:
            raise RecipeError(f"a text edit's {key} must be a finite number, got "
                              f"{shown_value(p[key])}")
    if p.get("beta", 0) < 0:
        raise RecipeError("β must be at least 0 (it is a threshold on channel relevance)")
    if p.get("min_channels", 1) < 1:
        raise RecipeError("a text edit's min_channels must be at least 1")
    if not float(p.get("min_channels", 1)).is_integer():  # 10.5 was drawn as 10
        raise RecipeError(f"a text edit's min_channels must be a whole number, got "
                          f"{shown_value(p['min_channels'])}")
    for key in ("auto_beta", "gate"):  # "false" as text would read as true
        if not isinstance(p.get(key, False), bool):
            raise RecipeError(f"a text edit's {key} must be true or false, got "
                              f"{shown_value(p[key])}")


# Params hold plain values and small lists; deeper nesting is a damaged or hostile file
# (writing the recipe back would overflow Python's recursion at a few hundred levels).
MAX_PARAMS_NESTING = 32


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_PARAMS_NESTING and isinstance(item, dict | list):
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return deepest


SHOWN_VALUE_CHARS = 40


def shown_value(value: Any) -> str:
    """A recipe's value in a message as the file writes it (true, null, "text"), not as
    Python spells it (True, None, 'text'), and short: a list or an object is named."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        return shortened(json.dumps(value, ensure_ascii=False), SHOWN_VALUE_CHARS)
    except (TypeError, ValueError):  # not JSON's (a caller's own object): Python's spelling
        return shortened(repr(value), SHOWN_VALUE_CHARS)


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise RecipeError(f"the recipe's {what} must be an object")
    return value


def _text(value: Any, what: str, optional: bool = False,
          longest: int | None = MAX_TEXT_CHARS) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise RecipeError(f"the recipe's {what} must be text, got {shown_value(value)}")
    if longest is not None and value is not None and len(value) > longest:
        raise RecipeError(f"the recipe's {what} has {len(value):,} characters; at most "
                          f"{longest:,} are read")


def _integer(value: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"the recipe's {what} must be a whole number, got {shown_value(value)}")
    if minimum is not None and value < minimum:
        raise RecipeError(f"the recipe's {what} must be at least {minimum}, got {value}")
    return value


def finite_number(value: Any) -> float | None:
    """`value` as a float when it is a finite real number from JSON (not a bool, not an int
    too large for a float), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecipeError(f"the recipe's {what} must be a number, got {shown_value(value)}")
    number = finite_number(value)
    if number is None:
        raise RecipeError(f"the recipe's {what} must be a finite number")
    return number
