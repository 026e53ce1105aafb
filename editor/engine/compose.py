"""Turn a Session into a style code and an image: s = s_source + sum_i alpha_i * delta_s_i.

The editing context owns the models of one pack and caches what is expensive: the source's
style code per source, and each edit's style delta per (kind, params). Changing an edit's
strength, enabling/disabling it or reordering the stack recomputes nothing.
"""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from editor.core.checkpoints import MAX_UNPACKED_BYTES, torch_zip_problem, unpacked_bytes
from editor.core.errors import AtelierError
from editor.core.generator import Generator, z_from_seed
from editor.core.style_code import StyleCode
from editor.core.tensor_files import readable_name
from editor.methods import global_directions as gd
from editor.methods.covariation import Covariation, gated_channel_scores

from .session import Edit, RecipeError, Session, Source, check_text_edit_params
from .tensor_text import PackedTensorError, decode_floats, encode_floats, is_packed


class EditError(AtelierError, ValueError):
    """An edit cannot be applied (e.g. no channel passes beta, no CLIP loaded). Its message
    is for the user as it stands; still a ValueError for the callers that catch that."""


WORD = re.compile(r"[^\W_]+")  # a run of letters or digits, in any script


NAMED_UNKNOWN_WORDS = 5  # unknown words a note names; the rest are counted


@dataclass(frozen=True)
class EditStatus:
    """How one edit of the stack came out: channels used and beta, or why it failed."""

    n_channels: int = 0
    beta: float | None = None
    error: str | None = None
    # words of a text edit's prompts that the CLIP model never learned (only known for
    # CLIP models with a closed vocabulary, such as the demo world's)
    unknown_words: tuple[str, ...] = ()
    # which of a text edit's prompts ("neutral", "target") hold no word at all ("!!!"):
    # CLIP still embeds them, so the edit moves in a direction nobody chose
    wordless: tuple[str, ...] = ()
    # which prompts are longer than the CLIP reads: their end is cut off unread
    cut: tuple[str, ...] = ()

    def prompt_warnings(self) -> list[str]:
        """What is wrong with a text edit's prompts, in words (the window and the CLI)."""
        notes = []
        if self.unknown_words:
            # a few by name: a pasted paragraph named 25, which ran out of the panel and
            # hid the notes after them
            named = self.unknown_words[:NAMED_UNKNOWN_WORDS]
            words = ", ".join(f"“{w}”" for w in named)
            if len(self.unknown_words) > len(named):
                words += f" and {len(self.unknown_words) - len(named)} more"
            notes.append(f"Words this CLIP never learned: {words}")
        if self.wordless:
            notes.append(f"The {' and '.join(self.wordless)} prompt has no words")
        if self.cut:
            notes.append(f"The {' and '.join(self.cut)} prompt is longer than this CLIP "
                         "reads: its end is left out")
        return notes


def wordless_prompts(params: dict) -> tuple[str, ...]:
    """The names of a text edit's non-empty prompts that have no letter or digit."""
    return tuple(k for k in ("neutral", "target")
                 if str(params.get(k, "")).strip() and not WORD.search(str(params[k])))


def unknown_words(texts: Sequence[str], known: frozenset[str] | None,
                  read_words: Callable[[str], list[str] | None] | None = None
                  ) -> tuple[str, ...]:
    """The words of texts (lower case, in order, once each) that are not in known; none
    when every word is allowed (known is None). `read_words` gives the pieces the CLIP's
    tokenizer reads (symbols and emoji included, HTML entities decoded): the warning is
    about what the CLIP sees, not about the typed characters."""
    if known is None:
        return ()

    def words_of(text: str) -> list[str]:
        read = read_words(text) if read_words is not None else None
        # else letters and digits of any script: "café" is one unknown word, not "caf"
        return read if read is not None else WORD.findall(text.lower())

    words = (w for t in texts for w in words_of(t))
    return tuple(dict.fromkeys(w for w in words if w not in known))


class ManyLatentsError(EditError):
    """The file holds several W+ latents (e4e's and StyleCLIP's latents.pt hold one per
    test image): which one to use must be said."""

    def __init__(self, path: Path, count: int):
        super().__init__(f"{path.name} holds {count} latents; choose one (0 to {count - 1})")
        self.count = count


def load_wplus(path: str | Path, n_latent: int, w_dim: int, index: int | None = None
               ) -> torch.Tensor:
    """A saved W+ (.npy, .pt or .safetensors) as (1, n_latent, w_dim). A file of several
    (N, n_latent, w_dim) needs `index` (ManyLatentsError without it)."""
    from safetensors.torch import load_file

    path = Path(path)
    suffix = path.suffix.lower()  # LATENTS.NPY too, as the window's file filter takes it
    if path.exists() and not path.is_file():
        # a recipe's wplus_path of /dev/zero was read until memory ran out; a folder
        # gave "Is a directory"
        raise EditError(f"the latent file {path.name or path} is not a file")
    try:
        if suffix == ".npy":
            t = torch.from_numpy(np.load(path, allow_pickle=False))
        elif suffix == ".safetensors":
            with readable_name(path) as name:
                t = next(iter(load_file(name).values()), None)
        else:
            if (problem := torch_zip_problem(path)) is not None:  # read before torch.load
                raise EditError(problem)
            obj = torch.load(path, map_location="cpu", weights_only=True)
            t = obj if isinstance(obj, torch.Tensor) else next(
                (v for v in getattr(obj, "values", list)() if isinstance(v, torch.Tensor)),
                None)
    # what a file that is not a saved latent makes the readers raise (torch.load's
    # unpickler among them)
    except (OSError, ValueError, RuntimeError, EOFError, KeyError, AttributeError, TypeError,
            IndexError, pickle.UnpicklingError, SafetensorError) as e:
        raise EditError(f"could not read the latent file {path.name} "
                        f"({_latent_read_error(e)})") from e
    if t is None:
        raise EditError(f"the latent file {path.name} holds no tensor")
    t = t.float()
    if t.ndim == 2 and t.shape == (n_latent, w_dim):
        t = t[None]
    elif t.ndim == 1 and t.shape[0] == w_dim:
        t = t[None, None].repeat(1, n_latent, 1)
    count = len(t) if t.ndim == 3 and tuple(t.shape[1:]) == (n_latent, w_dim) else 1
    if index is None and count > 1:
        raise ManyLatentsError(path, count)
    if index is not None:
        if not 0 <= index < count:
            raise EditError(f"{path.name} holds {count} latent{'s' if count > 1 else ''}: "
                            f"there is no number {index} (0 to {count - 1})")
        if count > 1:
            t = t[index:index + 1]
    if tuple(t.shape) != (1, n_latent, w_dim):
        raise EditError(f"{path.name} holds a latent of shape {tuple(t.shape)}; this generator "
                        f"needs ({n_latent}, {w_dim})")
    if not bool(torch.isfinite(t).all()):
        raise EditError(f"the latent in {path.name} holds non-finite values")
    return t


def _latent_read_error(e: Exception) -> str:
    """Why a latent file could not be read, in words: the system's reason, a damaged
    safetensors file, or "not a saved latent" for what the unpicklers say of any other
    file ("list index out of range" of a text file; np.load's fallback for a file that is
    not a .npy array talks of allow_pickle)."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    if isinstance(e, SafetensorError):
        return f"a damaged safetensors file: {e}"
    if isinstance(e, ValueError | RuntimeError) and "allow_pickle" not in str(e):
        return str(e)  # a .npy cut short ("cannot reshape array of size ..."), say
    return "not a saved latent"


def holds_a_latent(path: str | Path) -> bool:
    """Whether a .pt or .safetensors file holds W+ latents (a bare tensor, as e4e's
    latents.pt; one tensor in a .safetensors) rather than a generator's weights. Reads only
    what tells them apart: a .pt's top object with its storages memory-mapped (a legacy
    .pt cannot be, and is no latent of today's tools), a .safetensors' tensor names."""
    from safetensors import safe_open

    path = Path(path)
    try:
        if path.suffix.lower() == ".safetensors":
            with readable_name(path) as name, safe_open(name, framework="pt") as f:
                return len(list(f.keys())) == 1
        if unpacked_bytes(path) > MAX_UNPACKED_BYTES:  # torch.load would unpack it whole
            return False  # not read: left to the generator loader's message
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError,
            SafetensorError):
        return False  # not a readable latent: left to the generator loader's message
    return isinstance(obj, torch.Tensor)


def wplus_file_source(path: str | Path, n_latent: int, w_dim: int,
                      index: int | None = None) -> Source:
    """A W+ source read from a file (its latent number `index` when it holds several),
    carrying the latent itself: its recipe reproduces anywhere, and not a different image
    when the file later changes."""
    wplus = load_wplus(path, n_latent, w_dim, index)
    label = Path(path).name + (f" #{index}" if index is not None else "")
    return Source(kind="wplus", wplus_path=str(path), label=label,
                  wplus_data=encode_wplus(wplus))


def encode_wplus(wplus: torch.Tensor) -> str:
    """A W+ (n_latent, w_dim) or (1, n_latent, w_dim) as recipe text ("f32:LxD:" + base64;
    exact; 18x512 is 49 KB, small enough for a JPEG's XMP)."""
    t = wplus.detach()
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise ValueError(f"a W+ latent is (n_latent, w_dim), got {tuple(wplus.shape)}")
    return encode_floats(t)


def decode_wplus(text: str, n_latent: int, w_dim: int) -> torch.Tensor:
    """The (1, n_latent, w_dim) latent of `encode_wplus` text, checked against a generator."""
    try:
        return decode_floats(text, (n_latent, w_dim))[None]
    except PackedTensorError as e:
        raise EditError(f"the recipe's latent {e}") from e


def delta_of_edit(edit: Edit, n_channels: int) -> torch.Tensor:
    """The flat style delta of a "delta" edit: packed text (`encode_floats`), or a JSON list
    of numbers as earlier recipes wrote it; checked against the generator's channel count."""
    raw = edit.params.get("delta")
    try:
        if is_packed(raw):
            return decode_floats(raw, (n_channels,))
        delta = torch.tensor(raw, dtype=torch.float32)
    except PackedTensorError as e:
        raise EditError(f"the style delta of {edit.name or 'an edit'} {e}") from e
    except (TypeError, ValueError, RuntimeError) as e:
        raise EditError(f"the style delta of {edit.name or 'an edit'} is malformed") from e
    if tuple(delta.shape) != (n_channels,):
        raise EditError(f"the style delta of {edit.name or 'an edit'} has "
                        f"{delta.numel()} channels; this generator has {n_channels}")
    if not bool(torch.isfinite(delta).all()):
        raise EditError(f"the style delta of {edit.name or 'an edit'} holds non-finite values")
    return delta


def check_made_for(edit: Edit, generator_hash: str | None) -> None:
    """EditError for an explicit style delta made for another generator (one that records
    the generator it was made for, as discovered edits do)."""
    made_on = edit.params.get("generator")
    if edit.kind == "delta" and made_on and generator_hash and made_on != generator_hash:
        # the same number of channels, but they mean other things here
        raise EditError(f"{edit.name or 'this edit'} was made for another generator; "
                        "it would move unrelated channels of this one")


def wplus_of_source(source: Source, n_latent: int, w_dim: int) -> torch.Tensor:
    """The (1, n_latent, w_dim) latent of a W+ source: carried in the recipe, or a file."""
    if source.wplus_data:
        return decode_wplus(source.wplus_data, n_latent, w_dim)
    return load_wplus(source.wplus_path or "", n_latent, w_dim)


class EditingContext:
    def __init__(
        self,
        generator: Generator,
        clip: gd.ImageTextEncoder | None = None,
        stats: gd.StyleStats | None = None,
        relevance: gd.Relevance | None = None,
        z_for_seed: Callable[[int], torch.Tensor] | None = None,
        cache_size: int = 64,
        covariation: Covariation | None = None,
        generator_hash: str | None = None,
        known_words: frozenset[str] | None = None,
    ):
        self.generator = generator
        self.known_words = known_words  # the CLIP's whole vocabulary, where it has one
        # the generator's content hash: a style delta made on another one is refused
        self.generator_hash = generator_hash
        self.clip = clip
        self.stats = stats
        self.relevance = relevance
        self.covariation = covariation  # for gated text edits (params "gate")
        self._z_for_seed = z_for_seed
        self._deltas: OrderedDict[str, gd.EditDirection] = OrderedDict()
        self._sources: OrderedDict[tuple, StyleCode] = OrderedDict()
        self._keys: OrderedDict[int, tuple] = OrderedDict()  # id(params) -> (params, kind, key)
        # (neutral, target) -> the prompts' notes: a frame asks for every text edit's,
        # and tokenizing them again was a sixth of a 50-edit frame on the demo model
        self._notes: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self._cache_size = cache_size

    @property
    def device(self) -> torch.device:
        return self.generator.w_avg.device

    # ----------------------------------------------------------------- source
    def z_for_seed(self, seed: int) -> torch.Tensor:
        if self._z_for_seed is not None:
            return self._z_for_seed(seed)
        return z_from_seed(seed, self.generator.z_dim)

    @torch.no_grad()
    def source_wplus(self, source: Source) -> torch.Tensor:
        g = self.generator
        if source.kind == "seed":
            return g.mapping(self.z_for_seed(source.seed).to(self.device), psi=source.psi)
        return wplus_of_source(source, g.n_latent, g.w_dim).to(self.device)

    @torch.no_grad()
    def source_code(self, source: Source) -> StyleCode:
        key = (source.kind, source.seed, source.psi, source.wplus_path, source.wplus_data)
        code = self._recall(self._sources, key)
        if code is None:
            code = self.generator.styles(self.source_wplus(source))
            self._remember(self._sources, key, code)
        return code

    # ----------------------------------------------------------------- edits
    def direction(self, edit: Edit) -> gd.EditDirection:
        key = self._direction_key(edit)
        cached = self._recall(self._deltas, key)
        if cached is None:
            cached = self._compute_direction(edit)
            self._remember(self._deltas, key, cached)
        return cached

    def _direction_key(self, edit: Edit) -> str:
        """edit.direction_key(), remembered per params object: a slider drag makes a new
        Edit per value but shares its params, and the key of an explicit delta edit
        serialises thousands of floats (milliseconds per frame at 1024 px)."""
        hit = self._recall(self._keys, id(edit.params))
        if hit is not None and hit[0] is edit.params and hit[1] == edit.kind:
            return hit[2]
        key = edit.direction_key()
        self._remember(self._keys, id(edit.params), (edit.params, edit.kind, key))
        return key

    def _compute_direction(self, edit: Edit) -> gd.EditDirection:
        if edit.kind == "global":
            p = edit.params
            try:  # a malformed recipe says so whatever the pack has
                check_text_edit_params(p)
            except RecipeError as e:
                raise EditError(str(e)) from e
            if self.clip is None:  # no precompute can run without one either
                raise EditError("text edits need a CLIP model, and none is loaded for "
                                "this generator")
            if self.stats is None or self.relevance is None:
                raise EditError("text edits need this pack's directions, which are not "
                                "computed yet: precompute them first")
            try:
                dt = gd.text_direction(self.clip, p.get("neutral", ""), p["target"])
                if p.get("gate"):
                    if self.covariation is None:
                        # (the CLI measures it before it renders: this is the window's)
                        raise EditError("gated text edits need the pack's channel "
                                        "co-variation, not measured yet: Models ▸ Precompute "
                                        "directions measures it, or untick \"Only channels "
                                        "that vary with the text\"")
                    scores = gated_channel_scores(self.relevance, self.covariation, dt)
                else:
                    scores = gd.channel_scores(self.relevance, dt)
                beta = None if p.get("auto_beta") else p.get("beta", 0.15)
                return gd.thresholded_edit(self.relevance, self.stats, scores, beta,
                                           int(p.get("min_channels", 10)))
            except (gd.NoChannelsError, ValueError) as e:
                raise EditError(str(e)) from e
        if edit.kind == "delta":  # an explicit flat style delta (discovered, optimised, ...)
            check_made_for(edit, self.generator_hash)
            n_channels = sum(spec.channels for spec in self.generator.style_specs)
            delta = delta_of_edit(edit, n_channels).to(self.device)
            return gd.EditDirection(delta, int((delta != 0).sum()), 1.0)
        raise EditError(f"unknown edit kind {edit.kind!r}")

    @staticmethod
    def _recall(cache: OrderedDict, key):
        """The value cached under `key` (None if none), kept as the last used: evicted in
        the order they were first made, a drag of one edit's β pushed out the entries the
        next frame needed, and a long stack computed every direction again every other
        frame."""
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value

    def _remember(self, cache: OrderedDict, key, value) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)

    # ----------------------------------------------------------------- composition
    @torch.no_grad()
    def compose(self, session: Session, statuses: dict[str, EditStatus] | None = None
                ) -> StyleCode:
        """The edited style code. Without `statuses` an edit that cannot be applied raises
        EditError (the CLI must not silently drop an edit); with it, such an edit is left
        out and its error recorded, so the window still shows the others."""
        code = self.source_code(session.source)
        # room for every edit of the stack: with a stack longer than the caches, each
        # frame's edits pushed out the next ones it needed, and every frame computed every
        # edit's direction again (80 edits on the demo model: 136 ms a frame, not 23)
        self._cache_size = max(self._cache_size, len(session.edits))
        total = torch.zeros(code.num_channels, device=self.device)
        for edit in session.edits:
            # a zero-strength edit changes nothing; the window still wants its status
            if not edit.enabled or (statuses is None and edit.strength == 0):
                continue
            try:
                direction = self.direction(edit)
            except EditError as e:
                if statuses is None:
                    raise
                statuses[edit.id] = EditStatus(error=str(e))
                continue
            if statuses is not None:
                statuses[edit.id] = EditStatus(direction.n_channels, direction.beta,
                                               **self._prompt_notes(edit))
            if edit.strength != 0:
                total += edit.strength * direction.delta.to(self.device)
        return code + total if bool(total.any()) else code

    def prompt_warnings(self, session: Session) -> list[tuple[Edit, list[str]]]:
        """The active text edits whose prompts have something wrong, with what (as the
        window shows under the prompt)."""
        found = [(edit, self.edit_prompt_warnings(edit)) for edit in session.active_edits]
        return [(edit, notes) for edit, notes in found if notes]

    def edit_prompt_warnings(self, edit: Edit) -> list[str]:
        """What is wrong with one edit's prompts, in words; known without rendering."""
        return EditStatus(**self._prompt_notes(edit)).prompt_warnings()

    def _prompt_notes(self, edit: Edit) -> dict:
        """A text edit's warnings about its prompts (EditStatus fields): words the CLIP
        never learned, prompts with no words, prompts longer than the CLIP reads."""
        if edit.kind != "global":
            return {}
        key = (str(edit.params.get("neutral", "")), str(edit.params.get("target", "")))
        notes = self._recall(self._notes, key)
        if notes is None:
            notes = self._read_prompts(edit.params)
            self._remember(self._notes, key, notes)
        return notes

    def _read_prompts(self, params: dict) -> dict:
        prompts = {k: str(params.get(k, "")) for k in ("neutral", "target")}
        is_cut = getattr(self.clip, "prompt_is_cut", None)  # a ClipModel's; not every encoder's
        wordless = wordless_prompts(params)  # said once: not its symbols again
        with_words = [text for k, text in prompts.items() if k not in wordless]
        return {"unknown_words": unknown_words(with_words, self.known_words,
                                               getattr(self.clip, "read_words", None)),
                "wordless": wordless,
                "cut": tuple(k for k, text in prompts.items()
                             if text.strip() and is_cut is not None and is_cut(text))}

    @torch.no_grad()
    def render(self, session: Session, max_res: int | None = None) -> torch.Tensor:
        code = self.compose(session)
        return self.generator.synthesize(code, noise_mode=session.noise_mode, max_res=max_res)
