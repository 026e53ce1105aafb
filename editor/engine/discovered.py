"""Discovered directions (CLIP2StyleGAN) for a model pack: the cached result or the job
that computes it, plain entries for the UI, and an entry at a strength as an Edit.

    entries = discovered_entries(pack)             # None until discovery has run
    for item in discovery_job(pack, cancel=token):  # Progress..., then the Discovery
        ...
    entries = to_entries(discovery)
    edit = entry_edit(entry, strength)              # Edit(kind="delta", ...)

The demo pack labels with the demo world's words (every attribute value, in the phrasings
its CLIP was trained on) and mixes only tokens that occur in its captions; other packs use
a general list of phrases and the tokenizer's whole-word tokens. Users may add words.
The demo pack ships its discovery (editor/resources/models/toyfaces/directions/discovery, made by
discovery_job(pack, root=DEMO_DIRECTIONS) in about 20 s on one CPU thread).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from editor.methods import discovery as dc
from editor.methods import precompute as pc
from editor.methods.global_directions import Progress
from editor.toyfaces import captions
from editor.toyfaces.attributes import ATTRIBUTES

from .compose import unknown_words
from .packs import OpenPack
from .session import Edit, direction_title
from .tensor_text import encode_floats

DEMO_TEMPLATE = "a cartoon face with {}"
DEFAULT_METHOD = dc.DEFAULT_METHOD  # the transfer shown until the user picks another
DEFAULT_STRENGTH = dc.DEFAULT_STRENGTH  # of the default transfer
# The demo pack ships its discovery next to its global directions.
DEMO_DISCOVERY = {"psi": 1.0}  # the app samples the demo generator untruncated


def default_strength(method: str) -> float:
    """The strength a direction of this transfer starts at (units differ by transfer)."""
    return dc.DEFAULT_STRENGTHS.get(method, DEFAULT_STRENGTH)


@dataclass(frozen=True)
class DirectionEntry:
    """One discovered direction as the UI sees it: plain data, no tensors. A positive
    strength moves toward `label`, a negative one toward `negative_label`."""

    key: str
    label: str
    confidence: float
    delta: tuple[float, ...]  # flat style delta for strength 1
    negative_label: str = ""
    words: tuple[tuple[str, float], ...] = ()  # the top labels with confidences
    method: str = dc.DEFAULT_METHOD
    variance: float = 0.0  # share of the sampled images' CLIP variance

    @property
    def title(self) -> str:
        return direction_title(self.label, self.negative_label)

    @property
    def default_strength(self) -> float:
        return default_strength(self.method)


# --------------------------------------------------------------------------- demo words


def _demo_label(attribute: str, value: str) -> str:
    if attribute == "hair_colour":
        return f"{value} hair"
    if attribute == "hair_length":
        return "bald" if value == "bald" else f"{value} hair"
    if attribute == "shape":
        return f"{value} face"
    phrase = captions.PHRASES[attribute][value][0]
    return phrase[2:] if phrase.startswith("a ") else phrase


def demo_vocabulary(extra: Sequence[str] = ()) -> dc.Vocabulary:
    """Every attribute value of the demo world, each with all the phrasings captions use
    for it (averaged), its attribute as the concept."""
    words = tuple(dc.Word(_demo_label(a, v), tuple(prompts), a)
                  for a in ATTRIBUTES for v, prompts in captions.prompt_sets(a).items())
    return dc.Vocabulary(words, DEMO_TEMPLATE).extended(extra)


# Words of the captions that name nothing by themselves.
_DEMO_SKIP = frozenset({"a", "an", "of", "with", "and", "no"})


def _demo_texts() -> list[str]:
    """The captions' item phrases and face-shape words. Not the heads' other words:
    "cartoon face" is in every caption, and the style words (sketch, inverted, ...) name
    renderings the demo generator never makes."""
    words = [w for ws in captions.SHAPE_WORDS.values() for w in ws]
    texts = list(captions.ITEM_PHRASES) + words
    return [" ".join(w for w in t.split() if w not in _DEMO_SKIP) for t in texts]


def demo_meaning(label: str) -> tuple[str, str] | None:
    """The (attribute, value) a demo label names: a vocabulary label directly; another
    word when every caption phrase containing it names that value (ginger -> red hair)."""
    for a in ATTRIBUTES:
        for v in ATTRIBUTES[a]:
            if _demo_label(a, v) == label:
                return a, v
    common: set[tuple[str, str]] | None = None
    for phrase, named in captions.ITEM_PHRASES.items():
        if label in phrase.split():
            pairs = set(named.items())
            common = pairs if common is None else common & pairs
    if common and len(common) == 1:
        return next(iter(common))
    return None


def demo_concept(word: str) -> str | None:
    meaning = demo_meaning(word)
    return meaning[0] if meaning else None


# --------------------------------------------------------------------------- per pack


def unlearned_label_words(pack: OpenPack, words: Sequence[str]) -> tuple[str, ...]:
    """The user's label words that the pack's CLIP never learned (the demo CLIP knows only
    its captions' words): they can label nothing, and the user is told so."""
    return unknown_words(list(words), pack.clip_vocabulary(),
                         getattr(pack.clip, "read_words", None))


def learned_label_words(pack: OpenPack, words: Sequence[str]) -> list[str]:
    """The user's label words and phrases less those with a word the pack's CLIP never
    learned (unlearned_label_words): such a label is noise, and as labels are scored
    against the vocabulary's mean it would shift every other label's confidence too."""
    if not words:  # (the demo vocabulary is built only where there are words to check)
        return []
    known = pack.clip_vocabulary()
    if known is None:  # any word may be a label
        return list(words)
    read_words = getattr(pack.clip, "read_words", None)
    return [w for w in words if not unknown_words([w], known, read_words)]


def label_setup(pack: OpenPack, extra_words: Sequence[str] = ()) -> dc.LabelSetup:
    """What labels this pack's directions: built-in words and the user's learned ones
    (so the cache key, which covers the vocabulary, ignores words the CLIP cannot read)."""
    if pack.clip is None:
        raise ValueError("discovery needs a CLIP model")
    extra_words = learned_label_words(pack, extra_words)
    if pack.is_demo:  # the demo's generator may be opened with another CLIP too
        return dc.LabelSetup(demo_vocabulary(extra_words),
                             _mixture_tokens(pack, "demo", lambda t: dc.tokens_in_texts(
                                 t, _demo_texts())),
                             demo_concept)
    return dc.LabelSetup(dc.general_vocabulary(extra_words),
                         _mixture_tokens(pack, "whole words", dc.whole_word_tokens))


# tokenizer -> {kind: its TokenSet}: the window asks on every model switch and words
# change, on its own thread, and 32,080 whole-word entries take 0.17 s to gather
_TOKEN_SETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _mixture_tokens(pack: OpenPack, kind: str, tokens_of: Callable[[object], dc.TokenSet]
                    ) -> dc.TokenSet | None:
    """The tokens the mixture may use (`kind` of them, gathered by `tokens_of` once per
    tokenizer), or None (zero-shot labels only) where it cannot run: a tokenizer without
    a BPE table, or a CLIP whose text tower it cannot drive."""
    assert pack.clip is not None
    if not dc.supports_token_mixture(pack.clip.model):
        return None
    tokenizer = pack.clip.tokenizer
    try:
        known = _TOKEN_SETS.setdefault(tokenizer, {})
    except TypeError:  # not weakly referenceable: gathered every time
        known = {}
    if kind not in known:
        try:
            known[kind] = tokens_of(tokenizer)
        except TypeError:
            known[kind] = None
    return known[kind]


def default_config(pack: OpenPack) -> dc.DiscoveryConfig:
    return dc.DiscoveryConfig(**DEMO_DISCOVERY) if pack.is_demo else dc.DiscoveryConfig()


_CURRENT = object()  # _entry's data key: the pack's own directions, whatever they are


def _entry(pack: OpenPack, config: dc.DiscoveryConfig, setup: dc.LabelSetup,
           root: Path | None, data_key: object = _CURRENT):
    assert pack.clip is not None
    if data_key is _CURRENT:
        data_key = pack.data.key if pack.data else None
    return dc.discovery_cache(pack.model.content_hash, pack.clip.content_hash, config, setup,
                              pack.sampler or pc.DEFAULT_SAMPLER, data_key, root)


def _samples_entry(pack: OpenPack, config: dc.DiscoveryConfig, root: Path | None):
    assert pack.clip is not None
    return dc.samples_cache(pack.model.content_hash, pack.clip.content_hash, config,
                            pack.sampler or pc.DEFAULT_SAMPLER, root)


def samples_kept(pack: OpenPack, config: dc.DiscoveryConfig | None = None) -> bool:
    """Whether a stopped discovery of this pack and settings kept sampled images for the
    next run (none may have been drawn yet, or the cache could not be written)."""
    if pack.clip is None:
        return False
    entry = _samples_entry(pack, config or default_config(pack), None)
    return entry.partial_path.is_file() or entry.path.is_file()


def cached_discovery(pack: OpenPack, extra_words: Sequence[str] = (),
                     config: dc.DiscoveryConfig | None = None) -> dc.Discovery | None:
    """The finished discovery for this pack and settings (shipped or cached), or None.
    One made before the pack's directions were computed still counts (its w transfer is
    this pack's; only the style transfer needed the directions)."""
    if pack.clip is None:
        return None
    config = config or default_config(pack)
    setup = label_setup(pack, extra_words)
    found = pack.first_cached(
        lambda root: dc.load_discovery(_entry(pack, config, setup, root)))
    if found is None and pack.data is not None:
        found = pack.first_cached(
            lambda root: dc.load_discovery(_entry(pack, config, setup, root, data_key=None)))
    return found


def finds_more(pack: OpenPack, discovery: dc.Discovery, extra_words: Sequence[str] = (),
               config: dc.DiscoveryConfig | None = None) -> bool:
    """Whether discovering again (with these words and settings) would find something
    `discovery` lacks: it was made without the pack's current global directions (e.g.
    before they were precomputed), so a run now writes another entry. Otherwise a run
    finds the same directions: its samples and settings are fixed."""
    if pack.clip is None:
        return False
    entry = _entry(pack, config or default_config(pack), label_setup(pack, extra_words), None)
    return discovery.key != entry.key


def missing_reason(discovery: dc.Discovery, method: str) -> str | None:
    """Why the discovery has no `method` delta (its first direction without one says)."""
    return next((d.notes[method] for d in discovery.directions
                 if method not in d.deltas and method in d.notes), None)


def discovery_job(pack: OpenPack, cancel: pc.CancelToken = None,
                  extra_words: Sequence[str] = (), config: dc.DiscoveryConfig | None = None,
                  root: Path | None = None, recompute: bool = False
                  ) -> Iterator[Progress | dc.Discovery]:
    """Discovery as a job: Progress items, then the Discovery. A cached result comes at
    once, unless discovering again finds more (finds_more: the pack's global directions
    were computed since) or `recompute` ignores it; a run writes to `root` (the user
    cache by default). `cancel` (an Event or a callable) stops it with Cancelled, nothing
    written but the sampled images. The style transfer needs the pack's global
    directions (pack.data); without them only the w transfer is made."""
    if pack.clip is None:
        raise ValueError("discovery needs a CLIP model"
                         + (f": {pack.clip_error}" if pack.clip_error else ""))
    config = config or default_config(pack)
    setup = label_setup(pack, extra_words)
    if root is None and not recompute:
        found = cached_discovery(pack, extra_words, config)
        if found is not None and not finds_more(pack, found, extra_words, config):
            yield Progress(1, 1, "loaded from cache", 0.0)
            yield found
            return
    # Without a root, cached_discovery has looked the entry up already (and warned about
    # a damaged one): the run must not load it, and warn, again.
    reuse = root is not None and not recompute
    data = pack.data
    yield from dc.run_discovery(
        pack.model.generator, pack.clip, setup, _entry(pack, config, setup, root), config,
        sampler=pack.sample_w(), relevance=data.relevance if data else None,
        stats=data.stats if data else None, cancel=cancel, reuse=reuse,
        samples_entry=_samples_entry(pack, config, root))


def to_entries(discovery: dc.Discovery, method: str = dc.DEFAULT_METHOD
               ) -> list[DirectionEntry]:
    """UI entries of the directions that have a delta for `method` (one of dc.METHODS)."""
    if method not in dc.METHODS:
        raise ValueError(f"unknown transfer {method!r}; one of {', '.join(dc.METHODS)}")
    out = []
    for i, d in enumerate(discovery.directions):
        delta = d.deltas.get(method)
        if delta is None:
            continue
        out.append(DirectionEntry(
            key=f"{discovery.key or 'discovery'}:{i}:{method}", label=d.label,
            confidence=d.confidence, delta=tuple(float(x) for x in delta),
            negative_label=d.negative[0].text if d.negative else "",
            words=tuple((x.text, x.confidence) for x in d.labels),
            method=method, variance=d.variance))
    return out


def available_method(discovery: dc.Discovery) -> str | None:
    """The default transfer if the discovery has it, else the first one it has."""
    have = {m for d in discovery.directions for m in d.deltas}
    order = [dc.DEFAULT_METHOD] + [m for m in dc.METHODS if m != dc.DEFAULT_METHOD]
    return next((m for m in order if m in have), None)


def discovered_entries(pack: OpenPack, method: str = dc.DEFAULT_METHOD
                       ) -> list[DirectionEntry] | None:
    """Entries from the cached discovery of this pack, or None when it was never run."""
    found = cached_discovery(pack)
    return to_entries(found, method) if found is not None else None


def entry_edit(entry: DirectionEntry, strength: float | None = None,
               generator_hash: str | None = None) -> Edit:
    """The edit-stack entry: an explicit style delta (compose reads "delta"; the other
    keys say where it came from), at `strength` or the entry's default. With the
    generator's content hash, compose refuses the delta on any other generator."""
    strength = entry.default_strength if strength is None else strength
    params = {"delta": encode_floats(entry.delta), "label": entry.label,
              "negative_label": entry.negative_label, "method": entry.method,
              "confidence": round(entry.confidence, 4), "source": "discovery"}
    if generator_hash:
        params["generator"] = generator_hash
    # named with its transfer where not the default's (direction_title)
    name = direction_title(entry.label, entry.negative_label, entry.method)
    return Edit(kind="delta", strength=float(strength), name=name, params=params)
