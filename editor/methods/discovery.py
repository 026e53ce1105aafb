"""CLIP2StyleGAN: discover edit directions without prompts, label them with words, and
turn them into style-space edits.

1. Sample N images from the generator, CLIP-embed them (unit vectors), PCA (centred):
   the top K principal directions of what varies among the images, in CLIP image space.
2. Label each direction with words. A word's score on an image is its zero-shot logit
   against the vocabulary, image . (t_word - t_mean); a word labels a direction as much
   as its score *correlates* with the image's coordinate along the direction over the
   samples. The correlation is signed (which end of the direction the word sits at),
   bounded (the confidence) and has a closed form in the sample covariance S:
   corr = d'S t / sqrt(d'S d . t'S t). The vocabulary is a list of phrases (general or
   the demo world's, extendable); in addition, as in the paper, a sparse soft mixture
   over single word tokens inside a prompt ("a picture of a [w]") is optimised so that
   its text embedding points along the direction (weights squashed into (0, 1) by a
   sigmoid, an L1 term, Adam); its strongest tokens are then ranked zero-shot like the
   phrases. The text tower is run on token embeddings directly for that.
3. A direction whose strongest labels name different concepts (the demo world: different
   attributes; otherwise dissimilar text directions) is split: each concept gets the
   image-space direction along which its word's score grows (S t), made orthogonal to
   the other's. A third concept that still reads strongly on that direction is made
   orthogonal too (a few rounds), so that each direction ends with one concept; then it
   is labelled again.
4. Transfer to the generator (the paper did not release this step), both as a flat style
   delta per unit strength, with the sign that moves toward the top label:
   - "w": w shifted the way it differs, on average over the samples, between images
     whose coordinate differs by one standard deviation (the regression of w on the
     coordinate: Cov(w, c) / std(c)), mapped through each layer's affine map, which is
     exact because s_l = A_l w + b_l;
   - "style": the global-direction channel relevance (StyleCLIP), with the direction as
     the text direction, kept to the channels that also vary with the direction across
     the samples (score = relevance x |correlation with the coordinate| where their signs
     agree), at auto-beta: the top channel moves one standard deviation;
   - "focused": the w transfer's style delta, kept to the channels with the strongest of
     those scores: the channels are picked as "style" picks them, and each moves as much
     as it differs, on average, between images along the direction (not as much as its
     relevance says). The channel that moves furthest, in its own standard deviations,
     moves one.

`discover` is a job (a generator of Progress, then the Discovery) with cooperative
cancel; `run_discovery` adds the on-disk cache (atomic, versioned, checksummed).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from better_profanity import Profanity

from editor.core.cache import TensorCache
from editor.core.errors import AtelierError, one_line
from editor.core.generator import Generator

from . import global_directions as gd
from .covariation import Samples, gated_scores
from .covariation import iter_samples as sample_images
from .global_directions import Progress, WSampler
from .precompute import (
    CHECKSUM_FIELDS,
    Cancelled,
    CancelToken,
    is_cancelled,
    load_checked,
    relay,
    stored_sampling,
    try_save_checked,
)

# 2: concepts split until atomic; 3: gated style transfer; 4: the focused transfer
KIND, VERSION = "discovery", 4
SAMPLES_KIND, SAMPLES_VERSION = "discovery-samples", 1
METHODS = ("w", "style", "focused")
RELEVANCE_METHODS = ("style", "focused")  # the transfers that need global directions
# The focused transfer is the default. Chosen on tuning seeds (3,000,000+ and 3,500,000+,
# 200 each, not the benchmark's): of the top 10 demo directions it met both goals of
# benchmarks/discovery.py for 6 and 6, the style transfer at strength 3 for 5 and 3, the
# w transfer never more than 3. Both need the pack's global-direction relevance; without
# it only "w" exists.
DEFAULT_METHOD = "focused"
# Strength units differ by transfer (w: standard deviations of the direction among the
# samples; style and focused: the furthest-moved channel's standard deviations), so each
# has its own default, chosen on the same tuning seeds (w: 0.5, 0.75, 1 and 1.5 met both
# goals for 0, 1, 2.5 and 3 directions on average; focused at 1.5 for 6 and 6).
DEFAULT_STRENGTHS = {"w": 1.5, "style": 3.0, "focused": 1.5}
DEFAULT_STRENGTH = DEFAULT_STRENGTHS[DEFAULT_METHOD]
SEED_BASE = 5_000_000  # apart from the seeds statistics, relevance and benchmarks use
# Sizes of the phases on the progress bar, in render-equivalents (a render + a CLIP
# encode; a sample is one). Guesses: a mixture step runs the text tower forward and back
# for both ends of every direction; a word ranked after it is one text encode; a transfer
# is a few small matrix products.
MIXTURE_STEP_RENDERS, WORD_RENDERS, TRANSFER_RENDERS = 2.0, 0.05, 1.0
# Below this total variance (of unit embeddings; sampled faces give about 0.1 or more)
# the samples are one image up to rounding.
MIN_TOTAL_VARIANCE = 1e-8
T = TypeVar("T")
NO_RELEVANCE = ("needs the pack's global directions (relevance): precompute them, then "
                "discover again")


class DiscoveryError(AtelierError):
    """Discovery cannot run, or its samples cannot give directions."""

# ------------------------------------------------------------------------ vocabularies

GENERAL_TEMPLATE = "a photo of {}."
# Phrases for faces, portraits and photos in general (what StyleGAN2 packs show).
GENERAL_PHRASES: tuple[str, ...] = (
    "a smiling face", "a frowning face", "a sad face", "an angry face", "a surprised face",
    "a laughing face", "a serious face", "an open mouth", "closed eyes", "a man", "a woman",
    "a child", "an old person", "a young person", "a bald head", "blonde hair",
    "black hair", "brown hair", "red hair", "grey hair", "curly hair", "straight hair",
    "long hair", "short hair", "a beard", "a moustache", "a clean-shaven face",
    "glasses", "sunglasses", "a hat", "earrings", "makeup", "lipstick", "pale skin",
    "dark skin", "tanned skin", "freckles", "wrinkles", "a chubby face", "a thin face",
    "a face turned to the left", "a face turned to the right", "a close-up",
    "a bright photo", "a dark photo", "a black and white photo", "a colourful photo",
    "a blurry photo", "a sharp photo", "a painting", "a cartoon", "a sketch",
    "a white background", "a dark background", "a green background", "a blue background",
    "outdoors", "indoors", "a studio portrait", "warm light", "cold light",
)


@dataclass(frozen=True)
class Word:
    """A candidate label: what is shown, the prompts whose mean text embedding stands for
    it, and its concept (words of one concept, e.g. the values of one attribute, are the
    ends of one direction rather than a mixture of two)."""

    label: str
    prompts: tuple[str, ...]
    concept: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    words: tuple[Word, ...]
    template: str = GENERAL_TEMPLATE  # for added words and mixture tokens; "{}" the word

    def extended(self, labels: Sequence[str]) -> Vocabulary:
        """With the user's words (phrases; blank lines and '#' comments skipped). A word
        already there in another case or spacing is left out: CLIP reads "Dark  skin" as
        "dark skin", and the list showed the same label twice (the window's words came
        spaced once, the command line's as typed)."""
        have = {w.label.casefold() for w in self.words}
        extra = []
        for text in labels:
            text = one_line(text)
            if text and not text.startswith("#") and text.casefold() not in have:
                extra.append(Word(text, (self.template.replace("{}", text),)))
                have.add(text.casefold())
        return replace(self, words=self.words + tuple(extra))

    def identity(self) -> str:
        blob = json.dumps([self.template, [asdict(w) for w in self.words]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def general_vocabulary(extra: Sequence[str] = ()) -> Vocabulary:
    words = tuple(Word(p, (GENERAL_TEMPLATE.replace("{}", p),)) for p in GENERAL_PHRASES)
    return Vocabulary(words, GENERAL_TEMPLATE).extended(extra)


def read_vocab_file(path: str | Path) -> list[str]:
    """One word or phrase a line; blank lines and lines starting with '#' are skipped."""
    # utf-8-sig: a file saved "UTF-8 with BOM" (Notepad, Excel) keeps no BOM in its first word
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    return [t.strip() for t in lines if t.strip() and not t.strip().startswith("#")]


# ------------------------------------------------------------------------ settings


@dataclass
class DiscoveryConfig:
    n_samples: int = 1000  # images sampled for the PCA
    k: int = 10  # principal components kept
    seed: int = 0
    psi: float = 0.7  # truncation of Gaussian-z samples (custom samplers ignore it)
    n_labels: int = 5  # labels kept per end of a direction
    mixture: bool = True  # the soft token mixture (needs an open_clip CLIP text tower)
    mixture_steps: int = 150
    mixture_lr: float = 0.1
    mixture_l1: float = 0.02
    mixture_rank: int = 2000  # strongest tokens ranked zero-shot afterwards
    split: bool = True
    split_ratio: float = 0.6  # a second concept at >= this x the top label's confidence
    split_min: float = 0.3  # ... and at least this confidence
    # a direction this close (|cos|) to an earlier one is dropped: their CLIP vectors, or
    # their edits (deltas of one transfer)
    dedupe_cos: float = 0.9
    beta_min_channels: int = 10  # auto-beta of the style transfer
    focused_channels: int = 30  # channels the focused transfer moves
    # renders per generator call (speed and memory only); None: gd.suggested_batch_size
    batch_size: int | None = None

    def to_dict(self) -> dict:
        """What decides the result (for cache keys); the batch size does not."""
        d = asdict(self)
        d.pop("batch_size")
        return d


@dataclass
class Label:
    text: str
    confidence: float  # correlation with the direction's coordinate, signed


@dataclass
class Direction:
    """One discovered direction, oriented so that + moves toward `labels[0]`."""

    vector: torch.Tensor  # (D,) unit, CLIP image space
    variance: float  # fraction of the sampled images' variance along it
    component: int  # the principal component it comes from
    split: bool  # one concept split out of a mixed component
    labels: list[Label]  # the + end, strongest first
    negative: list[Label]  # the - end, strongest first (confidences negative)
    mixture: list[Label] = field(default_factory=list)  # top tokens, weight as confidence
    coordinate_std: float = 0.0
    deltas: dict[str, torch.Tensor] = field(default_factory=dict)  # method -> (C,) delta
    notes: dict[str, str] = field(default_factory=dict)  # method -> why it is missing

    @property
    def label(self) -> str:
        return self.labels[0].text if self.labels else f"PC{self.component + 1}"

    @property
    def confidence(self) -> float:
        return abs(self.labels[0].confidence) if self.labels else 0.0

    @property
    def title(self) -> str:
        if self.negative:
            return f"{self.negative[0].text} ↔ {self.label}"
        return self.label

    def to_json(self) -> dict:
        return {"label": self.label, "negative_label": self.negative[0].text
                if self.negative else None, "confidence": round(self.confidence, 4),
                "variance": round(self.variance, 5), "component": self.component,
                "split": self.split, "coordinate_std": self.coordinate_std,
                "labels": [[lb.text, round(lb.confidence, 4)] for lb in self.labels],
                "negative": [[lb.text, round(lb.confidence, 4)] for lb in self.negative],
                "mixture": [[lb.text, round(lb.confidence, 4)] for lb in self.mixture],
                "clip_direction": [round(float(x), 6) for x in self.vector],
                "deltas": {m: [float(x) for x in d] for m, d in self.deltas.items()},
                "notes": dict(self.notes)}


@dataclass
class Discovery:
    directions: list[Direction]
    explained: list[float]  # the top K components' variance ratios
    info: dict = field(default_factory=dict)
    key: str = ""
    from_cache: bool = False
    # Why the result could not be written to the cache (disk full, read-only), for the
    # user; the result is sound and used. None when it was saved (or came from the cache).
    save_error: str | None = None

    def to_json(self) -> dict:
        return {"format": "latent-atelier-discovery", "version": VERSION,
                "explained_variance": [round(x, 6) for x in self.explained],
                "info": self.info, "directions": [d.to_json() for d in self.directions]}


# ------------------------------------------------------------------------ sampling + PCA


def sample_seed_base(config: DiscoveryConfig) -> int:
    return SEED_BASE + 100_003 * config.seed


def iter_samples(gen: Generator, clip: gd.ImageTextEncoder, config: DiscoveryConfig,
                 sampler: WSampler | None) -> Iterator[Progress | Samples]:
    """The images discovery samples (covariation.iter_samples at its own seeds)."""
    yield from sample_images(gen, clip, config.n_samples, sample_seed_base(config),
                             config.psi, sampler, config.batch_size)


def samples_cache(gen_hash: str, clip_hash: str, config: DiscoveryConfig, sampler: str,
                  root: Path | None = None) -> TensorCache:
    """Where discovery keeps its sampled images: keyed by what draws them only, so that
    discovering again with other words, or after the global directions are computed,
    skips the sampling (an hour or more at 1024 px on a CPU)."""
    key = {"generator": gen_hash, "clip": clip_hash, "n_samples": config.n_samples,
           "seed_base": sample_seed_base(config), "psi": config.psi, "sampler": sampler}
    return TensorCache(SAMPLES_KIND, key, SAMPLES_VERSION, root)


def _sampled(gen: Generator, clip: gd.ImageTextEncoder, config: DiscoveryConfig,
             sampler: WSampler | None, cancel: CancelToken, samples_entry: TensorCache | None
             ) -> Iterator[Progress | Samples]:
    """Discovery's images: Progress with time left, then the Samples. Through a cache
    entry (samples_cache) the sampling resumes after a stop and is done once."""
    if samples_entry is not None:
        samples = yield from stored_sampling(
            gen, clip, config.n_samples, sample_seed_base(config), config.psi, sampler,
            samples_entry, config.batch_size, cancel, what="discovery sampling")
        yield samples
        return
    clock = gd.EtaClock(0, config.n_samples)
    for item in iter_samples(gen, clip, config, sampler):
        if isinstance(item, Samples):
            yield item
            return
        yield clock.progress(item.done, item.message)
        if is_cancelled(cancel):
            raise Cancelled("discovery cancelled while sampling")


def check_varies(embeddings: torch.Tensor) -> None:
    """Refuse samples PCA cannot find directions in: all the same image, or not numbers."""
    total = float(embeddings.double().var(0).sum())
    if not math.isfinite(total):
        raise DiscoveryError("the sampled images' CLIP embeddings are not numbers (the "
                             "generator or CLIP model is damaged)")
    if total < MIN_TOTAL_VARIANCE:
        raise DiscoveryError("the sampled images do not vary (the generator or CLIP output "
                             "is constant)")


@dataclass
class Pca:
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (K, D) unit rows
    explained: torch.Tensor  # (K,) variance ratios
    cov: torch.Tensor  # (D, D) sample covariance


def pca(embeddings: torch.Tensor, k: int) -> Pca:
    x = embeddings.double()
    mean = x.mean(0)
    xc = x - mean
    _, s, vh = torch.linalg.svd(xc, full_matrices=False)
    var = s**2 / max(len(x) - 1, 1)
    k = min(k, len(var))
    # sign convention: the largest-magnitude entry positive (labels orient them later)
    comps = vh[:k]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True))).clamp_min(-1)
    signs[signs == 0] = 1
    cov = xc.T @ xc / max(len(x) - 1, 1)
    return Pca(mean.float(), (comps * signs).float(), (var[:k] / var.sum()).float(),
               cov.float())


# ------------------------------------------------------------------------ text


def iter_text_embeddings(clip, prompt_sets: Sequence[Sequence[str]], batch: int = 256,
                         cancel: CancelToken = None) -> Iterator[Progress | torch.Tensor]:
    """(V, D) unit vectors: each set's prompts encoded, averaged, normalised. Yields
    Progress after each batch of prompts (then checks `cancel`), then the tensor."""
    flat = [p for ps in prompt_sets for p in ps]
    out = []
    for i in range(0, len(flat), batch):
        with torch.no_grad():
            out.append(clip.encode_text(flat[i:i + batch], normalize=True).float().cpu())
        done = min(i + batch, len(flat))
        yield Progress(done, len(flat), f"encoding label words: {done}/{len(flat)}")
        if is_cancelled(cancel):
            raise Cancelled("discovery cancelled while encoding label words")
    emb = torch.cat(out)
    sizes = [len(ps) for ps in prompt_sets]
    means = torch.stack([part.mean(0) for part in torch.split(emb, sizes)])
    yield F.normalize(means, dim=-1)


def text_embeddings(clip, prompt_sets: Sequence[Sequence[str]], batch: int = 256
                    ) -> torch.Tensor:
    """iter_text_embeddings' tensor, without progress."""
    return job_result(iter_text_embeddings(clip, prompt_sets, batch))


def job_result(items: Iterator[Progress | object]):
    """The last item of a job that is not a Progress."""
    result = None
    for item in items:
        if not isinstance(item, Progress):
            result = item
    return result


def correlations(cov: torch.Tensor, directions: torch.Tensor, texts: torch.Tensor
                 ) -> torch.Tensor:
    """(M, V): over the samples, the correlation between an image's coordinate along each
    direction and its (centred) zero-shot score for each text vector."""
    dc = directions.double() @ cov.double()  # (M, D)
    num = dc @ texts.double().T
    d_sd = (dc * directions.double()).sum(1).clamp_min(1e-20).sqrt()
    t_sd = ((texts.double() @ cov.double()) * texts.double()).sum(1).clamp_min(1e-20).sqrt()
    return (num / d_sd[:, None] / t_sd[None, :]).float()


_TOWER_PARTS = ("token_embedding", "positional_embedding", "transformer", "ln_final",
                "text_projection")


@dataclass(frozen=True)
class TextTower:
    """Where an open_clip model keeps the text transformer encode_token_embeddings runs:
    CLIP has it built in; CustomTextCLIP (EVA02, MobileCLIP, ViTamin...) as `model.text`."""

    module: torch.nn.Module  # token_embedding, positional_embedding, transformer, ...
    pool_type: str
    eos_id: int | None


def text_tower(model: torch.nn.Module) -> TextTower | None:
    """The model's text transformer, or None when the token mixture cannot run on it (no
    open_clip text transformer, or one that adds a class token or a padding mask, which
    encode_token_embeddings does not reproduce)."""
    for module, pool, eos in ((model, "text_pool_type", "text_eos_id"),
                              (getattr(model, "text", None), "pool_type", "eos_id")):
        if (module is not None and all(hasattr(module, a) for a in (*_TOWER_PARTS, pool))
                and getattr(module, "cls_emb", None) is None
                and not getattr(module, "use_pad_mask", False)):
            return TextTower(module, getattr(module, pool), getattr(module, eos, None))
    return None


def supports_token_mixture(model: torch.nn.Module) -> bool:
    return text_tower(model) is not None


def _tower(model: torch.nn.Module) -> TextTower:
    tower = text_tower(model)
    if tower is None:
        raise DiscoveryError(
            f"the token mixture cannot run on this CLIP model ({type(model).__name__} has no "
            "plain open_clip text transformer); label with words only (--no-mixture)")
    return tower


def encode_token_embeddings(model: torch.nn.Module, ids: torch.Tensor, embeds: torch.Tensor
                            ) -> torch.Tensor:
    """open_clip encode_text from token embeddings instead of ids (the ids still say
    where the end token is, for pooling). Unnormalised (B, D)."""
    from open_clip.transformer import text_global_pool

    tower = _tower(model)
    t = tower.module
    cast = t.transformer.get_cast_dtype()
    x = embeds.to(cast) + t.positional_embedding[:embeds.shape[1]].to(cast)
    x = t.transformer(x, attn_mask=getattr(t, "attn_mask", None))
    x = t.ln_final(x)
    x = text_global_pool(x, ids, tower.pool_type, eos_token_id=tower.eos_id)
    proj = t.text_projection
    if proj is not None:
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return x


@dataclass(frozen=True)
class TokenSet:
    """Single tokens the mixture may use, and the word each stands for."""

    ids: tuple[int, ...]
    words: tuple[str, ...]

    def identity(self) -> str:
        return hashlib.sha256(json.dumps(self.ids).encode()).hexdigest()[:16]


def _piece_text(tokenizer, piece: str) -> str | None:
    """The text a BPE vocabulary entry (its '</w>' taken off) stands for. A byte-level BPE
    (open_clip's SimpleTokenizer, CLIP's own) spells each byte of the UTF-8 text as a
    stand-in character ('é' is 'Ã©', an en dash 'âĢĵ', an emoji 'ðŁĺĤ'): undone here
    through the tokenizer's byte decoder. None where the bytes are not whole UTF-8 (a
    piece of a character). A tokenizer without a byte decoder spells its entries as
    text."""
    byte_decoder = getattr(tokenizer, "byte_decoder", None)
    if byte_decoder is None:
        return piece
    try:
        return bytes(byte_decoder[c] for c in piece).decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return None


def tokens_in_texts(tokenizer, texts: Sequence[str]) -> TokenSet:
    """Every whole-word token that occurs in `texts` (a small CLIP trained on captions has
    trained embeddings for those tokens only)."""
    words = sorted({w for t in texts for w in t.lower().replace(",", " ").split()})
    ids: dict[int, str] = {}
    for w in words:
        toks = tokenizer.encode(w)
        if len(toks) == 1 and w.isalpha():
            ids.setdefault(int(toks[0]), w)
    order = sorted(ids)
    return TokenSet(tuple(order), tuple(ids[i] for i in order))


@functools.cache
def blocked_label_words() -> frozenset[str]:
    """Words no token-mixture label may be: a maintained list of profanity and slurs
    (better_profanity's). The mixture draws on all of a real CLIP's 30,000-odd whole-word
    tokens, learned from web captions, so a direction along skin tone, age or gender could
    otherwise be labelled with a slur."""
    return frozenset(str(w) for w in Profanity().CENSOR_WORDSET)


def is_blocked(word: str, blocked: frozenset[str]) -> bool:
    """Whether `word`, or the word it is the plural of, is blocked."""
    w = word.lower()
    return w in blocked or any(w.endswith(end) and w[:-len(end)] in blocked
                               for end in ("s", "es"))


def _latin_word(word: str) -> bool:
    return word.isalpha() and all(
        c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in word)


def whole_word_tokens(tokenizer, min_len: int = 3,
                      blocked: frozenset[str] | None = None) -> TokenSet:
    """The tokenizer's whole-word tokens (BPE entries ending in '</w>') that are words: of
    Latin letters only ('café' is one; the block list knows no other script), at least
    `min_len` of them, as decoded from the byte-level BPE (_piece_text); less the
    `blocked` words (blocked_label_words() unless given). The words are the decoded text,
    which labels show and zero-shot prompts type in; entries for emoji, punctuation,
    dashes or pieces of a UTF-8 character are left out (their stand-in characters, such
    as 'ð' and 'Ł', are letters too, so the raw entry would pass)."""
    enc = getattr(tokenizer, "encoder", None)
    if enc is None:
        raise TypeError("this tokenizer has no BPE vocabulary to draw tokens from")
    blocked = blocked_label_words() if blocked is None else blocked
    pairs: list[tuple[int, str]] = []
    for piece, i in enc.items():
        if not piece.endswith("</w>"):
            continue
        word = _piece_text(tokenizer, piece[:-4])
        if (word is not None and _latin_word(word) and len(word) >= min_len
                and not is_blocked(word, blocked)):
            pairs.append((int(i), word))
    pairs.sort()
    return TokenSet(tuple(i for i, _ in pairs), tuple(w for _, w in pairs))


def _slot_ids(clip, template: str, probe: tuple[str, str]) -> tuple[torch.Tensor, int]:
    """Token ids of the template with a one-token word in it, and the word's position
    (where two different one-token words make the ids differ)."""
    a, b = (clip.tokenize([template.replace("{}", w)])[0].cpu() for w in probe)
    diff = (a != b).nonzero().flatten()
    if len(diff) != 1:
        raise ValueError(f"could not find the word's position in the template {template!r}")
    return a, int(diff[0])


def optimise_mixture(clip, tokens: TokenSet, template: str, targets: torch.Tensor,
                     center: torch.Tensor, config: DiscoveryConfig,
                     cancel: CancelToken = None) -> Iterator[Progress | torch.Tensor]:
    """Per target direction (rows of `targets`, CLIP space), sigmoid weights over the
    tokens whose weighted embedding, in the template's word slot, gives a text
    embedding t with t - center pointing along the target. Adam with an L1 term on the
    weights. Yields Progress, then the (M, V) weights."""
    model = clip.model
    embedding = _tower(model).module.token_embedding  # refused here, before any work
    if len(tokens.ids) < 2:
        raise ValueError("the token mixture needs at least two tokens")
    ids, slot = _slot_ids(clip, template, (tokens.words[0], tokens.words[1]))
    device = embedding.weight.device
    table = embedding.weight.detach()[torch.tensor(tokens.ids, device=device)]
    base = embedding(ids.to(device)[None]).detach()  # (1, L, E)
    m = len(targets)
    logits = torch.full((m, len(tokens.ids)), -4.0, device=device)
    logits += 0.01 * torch.randn(logits.shape, generator=torch.Generator().manual_seed(0)
                                 ).to(device)
    logits.requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=config.mixture_lr)
    tgt = F.normalize(targets.float(), dim=-1).to(device)
    center = center.float().to(device)
    id_rows = ids.to(device)[None].expand(m, -1)
    every = max(1, config.mixture_steps // 15)
    clock = gd.EtaClock(0, config.mixture_steps)  # its own time: its size is a guess
    with torch.enable_grad():
        for step in range(config.mixture_steps):
            weights = torch.sigmoid(logits)
            slot_emb = weights @ table  # (M, E)
            embeds = base.expand(m, -1, -1).clone()
            embeds[:, slot] = slot_emb.to(embeds.dtype)
            text = F.normalize(encode_token_embeddings(model, id_rows, embeds).float(),
                               dim=-1)
            cos = F.cosine_similarity(text - center, tgt, dim=-1)
            loss = (-cos + config.mixture_l1 * weights.sum(1) / len(tokens.ids) * 100).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if (step + 1) % every == 0 or step + 1 == config.mixture_steps:
                yield clock.progress(step + 1, f"labelling: token mixture step {step + 1}")
                if is_cancelled(cancel):
                    raise Cancelled("discovery cancelled while labelling")
    yield torch.sigmoid(logits.detach()).cpu()


# ------------------------------------------------------------------------ labelling


@dataclass
class LabelSpace:
    """Candidate labels and their centred text vectors."""

    words: list[Word]
    vectors: torch.Tensor  # (V, D), centred by the vocabulary's mean text embedding
    center: torch.Tensor  # (D,)

    def concept(self, i: int) -> str:
        return self.words[i].concept or self.words[i].label

    def same_concept(self, i: int, j: int) -> bool:
        a, b = self.words[i].concept, self.words[j].concept
        if a is not None and b is not None:
            return a == b
        cos = F.cosine_similarity(self.vectors[i], self.vectors[j], dim=0)
        return bool(cos > 0.5)


def label_space(clip, vocab: Vocabulary) -> LabelSpace:
    raw = text_embeddings(clip, [w.prompts for w in vocab.words])
    center = raw.mean(0)
    return LabelSpace(list(vocab.words), raw - center, center)


def with_tokens(space: LabelSpace, clip, vocab: Vocabulary, words: Sequence[str],
                concept_of: Callable[[str], str | None] | None = None,
                cancel: CancelToken = None) -> Iterator[Progress | LabelSpace]:
    """The space plus single-token words (from the mixture), centred the same way. Yields
    Progress while they are encoded (thousands for a large CLIP), then the space."""
    have = {w.label for w in space.words}
    new = [Word(t, (vocab.template.replace("{}", t),), concept_of(t) if concept_of else None)
           for t in dict.fromkeys(words) if t not in have]
    if not new:
        yield space
        return
    raw = yield from relay(iter_text_embeddings(clip, [w.prompts for w in new],
                                                cancel=cancel))
    assert raw is not None
    yield LabelSpace(space.words + new, torch.cat([space.vectors, raw - space.center]),
                     space.center)


def ranked_labels(corr_row: torch.Tensor, space: LabelSpace, n: int
                  ) -> tuple[list[Label], list[Label]]:
    """(+ end labels, - end labels), strongest first."""
    order = corr_row.abs().argsort(descending=True).tolist()
    pos = [Label(space.words[i].label, float(corr_row[i])) for i in order if corr_row[i] > 0]
    neg = [Label(space.words[i].label, float(corr_row[i])) for i in order if corr_row[i] < 0]
    return pos[:n], neg[:n]


def _other_concept(row: torch.Tensor, word: int, known: Sequence[int], space: LabelSpace,
                   config: DiscoveryConfig) -> int | None:
    """The strongest label of a concept other than `word`'s and the `known` ones, if it is
    strong enough to call the direction mixed (split_min, split_ratio of the word's)."""
    order = row.abs().argsort(descending=True).tolist()
    other = next((j for j in order if not space.same_concept(word, j)
                  and not any(space.same_concept(k, j) for k in known)), None)
    if other is None or abs(row[other]) < max(config.split_min,
                                              config.split_ratio * abs(row[word])):
        return None
    return other


def concept_direction(cov: torch.Tensor, space: LabelSpace, word: int, others: Sequence[int],
                      config: DiscoveryConfig, rounds: int = 3) -> torch.Tensor:
    """The image-space direction along which `word`'s score grows (cov t), with the
    directions of the `others` concepts' words projected out. The result is labelled again;
    a concept that still reads strongly on it is projected out too (at most `rounds` more):
    CLIP's reading of one word often leans on another attribute (the demo CLIP's "beard"
    on hair colour), and a direction that keeps both moves both."""
    def signature(i: int) -> torch.Tensor:
        return F.normalize(cov @ space.vectors[i], dim=0)

    known = list(others)
    for _ in range(rounds + 1):
        d = signature(word)
        basis: list[torch.Tensor] = []
        for j in known:  # Gram-Schmidt: remove the span of every other concept
            g = signature(j)
            for b in basis:
                g = g - (g @ b) * b
            if g.norm() > 1e-6:
                basis.append(F.normalize(g, dim=0))
        for b in basis:
            d = d - (d @ b) * b
        d = F.normalize(d, dim=0)
        if not config.split:
            break
        row = correlations(cov, d[None], space.vectors)[0]
        other = _other_concept(row, word, known, space, config)
        if other is None:
            break
        known.append(other)
    return d


def split_directions(pca_: Pca, space: LabelSpace, config: DiscoveryConfig
                     ) -> list[tuple[torch.Tensor, int, bool]]:
    """(direction, component, split?) per principal component, or one per concept for a
    component whose strongest labels are two concepts at comparable confidence (each
    concept's direction from `concept_direction`, without the other's)."""
    corr = correlations(pca_.cov, pca_.components, space.vectors)
    out: list[tuple[torch.Tensor, int, bool]] = []
    for k in range(len(pca_.components)):
        row = corr[k]
        top = int(row.abs().argmax())
        other = _other_concept(row, top, (), space, config) if config.split else None
        if other is None:
            out.append((pca_.components[k], k, False))
            continue
        for word, rest in ((top, other), (other, top)):
            out.append((concept_direction(pca_.cov, space, word, [rest], config), k, True))
    return out


def _distinct(items: list[T], similarity: Callable[[T, T], float], limit: float) -> list[T]:
    """The items in order, less each one at least `limit` similar to one kept before it."""
    kept: list[T] = []
    for item in items:
        if all(similarity(item, k) < limit for k in kept):
            kept.append(item)
    return kept


def dedupe(items: list[tuple[torch.Tensor, int, bool]], max_cos: float
           ) -> list[tuple[torch.Tensor, int, bool]]:
    """Directions (unit CLIP vectors first) less those within max_cos (|cos|) of one
    before them."""
    return _distinct(items, lambda a, b: abs(float(a[0] @ b[0])), max_cos)


def _edit_cos(a: Direction, b: Direction) -> float:
    """How alike two directions' edits are: the largest |cos| of their deltas of one
    transfer (either sign: an edit and its opposite are one slider)."""
    return max((abs(float(F.cosine_similarity(a.deltas[m], b.deltas[m], dim=0)))
                for m in a.deltas.keys() & b.deltas.keys()), default=0.0)


def distinct_edits(directions: list[Direction], max_cos: float) -> list[Direction]:
    """The directions less each whose edit repeats an earlier one's (_edit_cos at least
    max_cos). CLIP directions apart (cos -0.87) made one edit twice: "long hair ↔ short
    hair" and "short ↔ long hair" (their deltas at cos -0.96)."""
    return _distinct(directions, _edit_cos, max_cos)


# ------------------------------------------------------------------------ transfer


def affine_delta(gen: Generator, dw: torch.Tensor, w_ref: torch.Tensor) -> torch.Tensor:
    """The flat style delta of moving w by dw: each layer's own affine map applied to
    w_ref + dw minus to w_ref (exact, the maps being affine). toRGB layers included: this
    is the same image change as editing w itself."""
    device = gen.w_avg.device
    with torch.no_grad():
        w = torch.stack([w_ref, w_ref + dw]).to(device)
        flat = gen.styles(w).flat().float().cpu()
    return flat[1] - flat[0]


def w_direction(w: torch.Tensor, coordinate: torch.Tensor) -> torch.Tensor:
    """How w differs, on average over the samples, per standard deviation of the
    coordinate: Cov(w, c) / std(c) (the least-squares regression of w on c)."""
    c = coordinate.double() - coordinate.double().mean()
    wc = w.double() - w.double().mean(0)
    sd = c.std().clamp_min(1e-12)
    return (wc.T @ c / max(len(c) - 1, 1) / sd).float()


def transfer_scores(relevance: gd.Relevance, stats: gd.StyleStats, direction: torch.Tensor,
                    w_delta: torch.Tensor) -> torch.Tensor:
    """Per relevance channel, how strongly it carries the direction: its relevance r,
    kept where it also varies with the direction across the samples.

    r says how far pushing the channel alone moves CLIP's reading along the direction; its
    correlation with the direction's coordinate over the sampled images (the w transfer's
    style delta over the channel's std, w_delta being Cov(s, c)/std(c)) says whether it is
    one of the channels the generator itself moves along it. The score is r * |corr| where
    the two agree in sign, else 0. Relevance alone also picks channels whose push reads
    like the direction without being what changes it (on the demo world, other
    attributes' channels)."""
    idx = relevance.channels.cpu()
    std = stats.std.float().cpu()[idx]
    corr = torch.where(std > 1e-8, w_delta.float().cpu()[idx] / std.clamp_min(1e-8),
                       torch.zeros_like(std))
    return gated_scores(gd.channel_scores(relevance, direction).cpu(), corr)


def style_direction(relevance: gd.Relevance, stats: gd.StyleStats, scores: torch.Tensor,
                    min_channels: int) -> gd.EditDirection:
    """The "style" transfer: a global-direction edit of the transfer scores at auto-beta
    (the strongest `min_channels` move, the top one by one standard deviation)."""
    return gd.thresholded_edit(relevance, stats, scores, None, min_channels)


def focused_delta(relevance: gd.Relevance, stats: gd.StyleStats, scores: torch.Tensor,
                  w_delta: torch.Tensor, n_channels: int) -> torch.Tensor:
    """The "focused" transfer: w_delta on the `n_channels` channels with the strongest
    transfer scores (fewer if fewer score), zero elsewhere, scaled so that the channel
    moved furthest in its own standard deviations moves one. Unlike "style", the chosen
    channels keep the proportions the generator moves them in along the direction."""
    scores = scores.cpu()
    n = min(n_channels, int((scores != 0).sum()))
    if n == 0:
        raise gd.NoChannelsError("no style channel both responds to this direction and "
                                 "varies with it across the samples")
    chosen = relevance.channels.cpu()[scores.abs().topk(n).indices]
    std = stats.std.float().cpu()
    delta = torch.zeros_like(w_delta, dtype=torch.float32, device="cpu")
    delta[chosen] = w_delta.float().cpu()[chosen]
    reach = float((delta[chosen].abs() / std[chosen].clamp_min(1e-8)).max())
    return delta / reach


def relevance_transfers(d: Direction, relevance: gd.Relevance, stats: gd.StyleStats,
                        config: DiscoveryConfig) -> None:
    """Add the "style" and "focused" deltas to `d` (which has its "w" delta), or the reason
    one cannot be made to its notes."""
    scores = transfer_scores(relevance, stats, d.vector, d.deltas["w"])
    try:
        d.deltas["style"] = style_direction(relevance, stats, scores,
                                            config.beta_min_channels).delta
    except gd.NoChannelsError as e:
        d.notes["style"] = str(e)
    try:
        d.deltas["focused"] = focused_delta(relevance, stats, scores, d.deltas["w"],
                                            config.focused_channels)
    except gd.NoChannelsError as e:
        d.notes["focused"] = str(e)


# ------------------------------------------------------------------------ the job


@dataclass
class LabelSetup:
    """What labelling needs beyond the CLIP model."""

    vocabulary: Vocabulary
    tokens: TokenSet | None = None  # None: no token mixture
    concept_of: Callable[[str], str | None] | None = None  # a token word's concept

    def identity(self) -> dict:
        return {"vocabulary": self.vocabulary.identity(),
                "tokens": self.tokens.identity() if self.tokens else None}


@dataclass
class Labelled:
    vector: torch.Tensor  # the direction, turned so that its top label is at the + end
    labels: list[Label]
    negative: list[Label]
    mixture: list[Label]


def _as_is(_phase: str, progress: Progress) -> Progress:
    return progress


def mixes(setup: LabelSetup, config: DiscoveryConfig) -> bool:
    """Whether labelling runs the token mixture."""
    return config.mixture and setup.tokens is not None and len(setup.tokens.ids) >= 2


def label_directions(clip, setup: LabelSetup, cov: torch.Tensor, vectors: torch.Tensor,
                     config: DiscoveryConfig, cancel: CancelToken = None,
                     report: Callable[[str, Progress], Progress] = _as_is
                     ) -> Iterator[Progress | list[Labelled]]:
    """Labels for CLIP image-space directions (rows of `vectors`) given the sampled
    images' covariance: the vocabulary, plus the strongest tokens of a sparse mixture
    optimised per direction end, ranked by correlation (see the module docstring). Each
    direction comes back turned toward its strongest label. Yields Progress (passed
    through `report` with its phase, "labelling" or "ranking"), then the list."""
    space = label_space(clip, setup.vocabulary)
    weights = None
    if mixes(setup, config):
        assert setup.tokens is not None
        targets = torch.cat([vectors, -vectors])  # both ends
        weights = yield from relay(
            optimise_mixture(clip, setup.tokens, setup.vocabulary.template, targets,
                             space.center, config, cancel),
            lambda p: report("labelling", p))
        assert weights is not None
        top = weights.topk(min(config.mixture_rank, weights.shape[1]), dim=1).indices
        words = [setup.tokens.words[i] for i in sorted(set(top.flatten().tolist()))]
        space = yield from relay(
            with_tokens(space, clip, setup.vocabulary, words, setup.concept_of, cancel),
            lambda p: report("ranking", p))
    corr = correlations(cov, vectors, space.vectors)
    out = []
    m = len(vectors)
    for i in range(m):
        vec = vectors[i]
        pos, neg = ranked_labels(corr[i], space, config.n_labels)
        flip = bool(neg) and (not pos or abs(neg[0].confidence) > pos[0].confidence)
        if flip:
            vec = -vec
            pos, neg = ([Label(x.text, -x.confidence) for x in neg],
                        [Label(x.text, -x.confidence) for x in pos])
        mix: list[Label] = []
        if weights is not None and setup.tokens is not None:
            best = weights[i + m if flip else i].topk(min(config.n_labels, weights.shape[1]))
            mix = [Label(setup.tokens.words[j], float(v))
                   for v, j in zip(best.values.tolist(), best.indices.tolist(), strict=True)]
        out.append(Labelled(vec, pos, neg, mix))
    yield out


def discovery_phases(setup: LabelSetup, config: DiscoveryConfig) -> gd.JobPhases:
    """Discovery's phases for one whole-job progress: sampling (counted, it measures the
    rate), the token mixture and the ranking of its strongest tokens (if it runs) and the
    transfer (their sizes guessed)."""
    mixing = mixes(setup, config)
    # at most mixture_rank tokens per end of each direction (splits aside) are ranked
    words = min(len(setup.tokens.ids), 2 * config.k * config.mixture_rank) if mixing else 0
    return gd.JobPhases({"sampling": config.n_samples,
                         "labelling": config.mixture_steps * MIXTURE_STEP_RENDERS * mixing,
                         "ranking": words * WORD_RENDERS,
                         "transfer": config.k * TRANSFER_RENDERS},
                        guessed={"labelling", "ranking", "transfer"})


def discover(gen: Generator, clip, setup: LabelSetup, config: DiscoveryConfig | None = None,
             sampler: WSampler | None = None, relevance: gd.Relevance | None = None,
             stats: gd.StyleStats | None = None, cancel: CancelToken = None,
             samples_entry: TensorCache | None = None) -> Iterator[Progress | Discovery]:
    """The discovery job: yields Progress, then the Discovery. `cancel` is checked after
    every step (Cancelled is raised). With `samples_entry` (samples_cache) its sampled
    images are kept there, as far as drawn when it stops; nothing else is written."""
    config = config or DiscoveryConfig()
    if config.n_samples < max(2, config.k + 1):
        raise ValueError(f"discovery needs more samples ({config.n_samples}) than "
                         f"components ({config.k})")
    if mixes(setup, config):
        _tower(clip.model)  # refused now, not after the whole sampling
    t0 = time.monotonic()
    phases = discovery_phases(setup, config)
    samples = yield from relay(_sampled(gen, clip, config, sampler, cancel, samples_entry),
                               lambda p: phases.report("sampling", p))
    assert isinstance(samples, Samples)
    check_varies(samples.embeddings)
    t_sample = time.monotonic() - t0
    pca_ = pca(samples.embeddings, config.k)
    items = dedupe(split_directions(pca_, label_space(clip, setup.vocabulary), config),
                   config.dedupe_cos)
    vectors = torch.stack([d for d, _, _ in items])

    labelled = yield from relay(label_directions(clip, setup, pca_.cov, vectors, config,
                                                 cancel, phases.report))
    assert labelled is not None
    xc = samples.embeddings - pca_.mean
    total_var = float(torch.diagonal(pca_.cov).sum())
    directions: list[Direction] = []
    for (_, comp, was_split), lab in zip(items, labelled, strict=True):
        vec = lab.vector
        directions.append(Direction(vec, float(vec @ pca_.cov @ vec) / total_var, comp,
                                    was_split, lab.labels, lab.negative, lab.mixture,
                                    float((xc @ vec).std())))
    yield phases.report("transfer", Progress(0, len(directions), "transfer: starting"))
    w_ref = samples.w.mean(0)
    for i, d in enumerate(directions):
        coord = (samples.embeddings - pca_.mean) @ d.vector
        d.deltas["w"] = affine_delta(gen, w_direction(samples.w, coord), w_ref)
        if relevance is not None and stats is not None:
            relevance_transfers(d, relevance, stats, config)
        else:
            for method in RELEVANCE_METHODS:
                d.notes[method] = NO_RELEVANCE
        yield phases.report("transfer", Progress(i + 1, len(directions),
                                                 f"transfer: direction {i + 1}"))
        if is_cancelled(cancel):
            raise Cancelled("discovery cancelled during the transfer")
    directions = distinct_edits(directions, config.dedupe_cos)
    info = {"config": config.to_dict(), "samples": config.n_samples,
            "seconds": round(time.monotonic() - t0, 1), "sampling_seconds": round(t_sample, 1),
            "vocabulary": len(setup.vocabulary.words),
            "tokens": len(setup.tokens.ids) if setup.tokens else 0}
    yield Discovery(directions, [float(x) for x in pca_.explained], info)


# ------------------------------------------------------------------------ cache


def discovery_cache(gen_hash: str, clip_hash: str, config: DiscoveryConfig,
                    setup: LabelSetup, sampler: str, relevance_key: str | None,
                    root: Path | None = None) -> TensorCache:
    key = {"generator": gen_hash, "clip": clip_hash, "config": config.to_dict(),
           "labels": setup.identity(), "sampler": sampler, "relevance": relevance_key}
    return TensorCache(KIND, key, VERSION, root)


def _to_entry(result: Discovery) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {
        "explained": torch.tensor(result.explained, dtype=torch.float32)}
    meta = []
    for i, d in enumerate(result.directions):
        tensors[f"{i}.vector"] = d.vector.float()
        for m, delta in d.deltas.items():
            tensors[f"{i}.delta.{m}"] = delta.float()
        meta.append({"variance": d.variance, "component": d.component, "split": d.split,
                     "coordinate_std": d.coordinate_std, "notes": d.notes,
                     "labels": [[x.text, x.confidence] for x in d.labels],
                     "negative": [[x.text, x.confidence] for x in d.negative],
                     "mixture": [[x.text, x.confidence] for x in d.mixture]})
    return tensors, {**result.info, "directions": meta}


def _labels(pairs: object) -> list[Label]:
    """[[text, confidence], ...] as Labels; TypeError for anything else (the UI shows
    the texts, and sorts and formats the numbers)."""
    out = [Label(t, float(c)) for t, c in pairs]
    if not all(isinstance(lb.text, str) and math.isfinite(lb.confidence) for lb in out):
        raise TypeError("a label is not [text, finite number]")
    return out


def _share(x: object, upper: float = 1.0) -> float:
    """A header number that must lie in [0, upper] (a variance share, a std); ValueError
    for NaN, infinities and negatives, TypeError for anything that is not a number (JSON
    allows NaN)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise TypeError(f"{x!r} is not a number")
    value = float(x)
    if not 0.0 <= value <= upper:
        raise ValueError(f"{value} is not in [0, {upper}]")
    return value


def _from_entry(tensors: dict[str, torch.Tensor], info: dict, key: str) -> Discovery | None:
    try:
        directions = []
        for i, m in enumerate(info["directions"]):
            deltas = {meth: tensors[f"{i}.delta.{meth}"] for meth in METHODS
                      if f"{i}.delta.{meth}" in tensors}
            notes = dict(m.get("notes", {}))
            if not all(isinstance(v, str) for v in notes.values()):
                raise TypeError("a note is not text")
            directions.append(Direction(
                tensors[f"{i}.vector"], _share(m["variance"]), int(m["component"]),
                bool(m["split"]), _labels(m["labels"]), _labels(m["negative"]),
                _labels(m["mixture"]), _share(m["coordinate_std"], upper=math.inf),
                deltas, notes))
        explained = [float(x) for x in tensors["explained"]]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None  # written by something else, or a damaged header: recompute
    if sum(k.endswith(".vector") for k in tensors) != len(directions):
        return None  # the header lists fewer directions than the file holds
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        return None
    # not the file's checksums: `discover --json` wrote them when the result was cached
    info = {k: v for k, v in info.items() if k != "directions" and k not in CHECKSUM_FIELDS}
    return Discovery(directions, explained, info, key, from_cache=True)


def _dedupe_cos(info: dict) -> float:
    """The dedupe_cos a discovery was made with (its info's config), or the default."""
    config = info.get("config")
    value = config.get("dedupe_cos") if isinstance(config, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DiscoveryConfig.dedupe_cos
    return float(value)


def _adopt_older_samples(entry: TensorCache, samples_entry: TensorCache) -> None:
    """A discovery stopped before the samples had an entry of their own kept them in the
    discovery entry's partial: they move to the samples entry (checked there against the
    settings when read), so the sampling goes on from them as the run was promised."""
    if samples_entry.path.exists() or samples_entry.partial_path.exists():
        return
    got = load_checked(entry, partial=True)
    if got is None or not {"w", "embeddings"} <= got[0].keys():
        return
    tensors, info = got
    kept = {k: info[k] for k in ("sampling", "drawn") if k in info}
    if try_save_checked(samples_entry, {k: tensors[k] for k in ("w", "embeddings")}, kept,
                        "sampled images", partial=True) is None:
        entry.partial_path.unlink(missing_ok=True)


def load_discovery(entry: TensorCache) -> Discovery | None:
    """The cached discovery, or None. Repeated edits are dropped as a run now drops them:
    entries made before (the demo pack's shipped one) still hold them."""
    got = load_checked(entry)
    found = _from_entry(got[0], got[1], entry.key) if got else None
    if found is not None:
        found.directions = distinct_edits(found.directions, _dedupe_cos(found.info))
    return found


def run_discovery(gen: Generator, clip, setup: LabelSetup, entry: TensorCache,
                  config: DiscoveryConfig | None = None, sampler: WSampler | None = None,
                  relevance: gd.Relevance | None = None, stats: gd.StyleStats | None = None,
                  cancel: CancelToken = None, reuse: bool = True,
                  samples_entry: TensorCache | None = None) -> Iterator[Progress | Discovery]:
    """discover, through the cache `entry`: a sound cached result is returned at once
    (unless not `reuse`); otherwise the job runs (its samples kept in `samples_entry`)
    and its result is written (atomically) when it finishes. A result that cannot be
    written still comes, with the reason in its save_error."""
    cached = load_discovery(entry) if reuse else None
    if cached is not None:
        yield Progress(1, 1, "loaded from cache", 0.0)
        yield cached
        return
    if samples_entry is not None:
        _adopt_older_samples(entry, samples_entry)
    # relayed: a Cancelled thrown in reaches the sampling, which says what it kept
    found = yield from relay(discover(gen, clip, setup, config, sampler, relevance, stats,
                                      cancel, samples_entry))
    found.key = entry.key
    tensors, info = _to_entry(found)
    found.save_error = try_save_checked(entry, tensors, info, "discovered directions")
    yield found
