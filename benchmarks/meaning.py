"""Do text edits mean what they say? StyleCLIP global directions measured on the demo world.

    .venv/bin/python -m benchmarks.meaning [--seeds 200] [--edits sunglasses,red,smile]
                     [--alpha 4] [--beta 0.15 | --auto-beta] [--no-oracle] [--no-sweep]
                     [--json out.json] [--threads 2]

For every single-attribute edit and N fresh seeds, the source and the edited image (the
default alpha and beta of the editor) are rendered exactly as the editor renders them, and
the demo world's evaluator reads both. Per edit:

- lacking: seeds whose source shows the attribute (by the requested face and `visibility`;
  sunglasses hide the eyes, a bald beardless head has no hair colour) and does not read
  as the target value;
- target reached: among those, the edited image reads as the target;
- others unchanged: every other attribute that both images show (visibility of the
  requested face, and of the same face with the target value) reads the same before and
  after. Printed over all N seeds and over the lacking seeds where the target was reached;
  the second is the gate (an edit that does nothing would pass the first). "both" is the
  fraction of lacking seeds with the target reached and nothing else changed.
Goals: target reached >= 80%, others unchanged (where reached) >= 90%.

Diagnostic rows tell a weak CLIP from a style space that resists editing:
- oracle: the same pipeline (relevance, beta, alpha, edit_direction) with channel relevance
  measured by the evaluator instead of CLIP: an image's "embedding" is its per-attribute
  probability vectors, concatenated and normalised, and the text direction of value v of
  attribute a is one-hot(a = v) minus a's uniform distribution (zero elsewhere), normalised.
  It uses fewer base images (--oracle-images) and is cached in the user cache dir. Its
  beta is auto-beta by default (the largest beta that keeps --min-channels channels):
  beta is a cosine in the encoder's space and the oracle's scores run lower than CLIP's
  (often all below 0.15), so the same number would not be the same threshold.
  --oracle-beta match keeps as many channels as the CLIP row, same uses its beta;
- gated: the CLIP pipeline with each channel's score kept only where the channel also
  varies with the text direction across the pack's co-variation samples (1,000 images),
  in the same sense (score r * |corr|, editor.methods.covariation): the edit the editor
  makes when a text edit's "gate" is on, which the demo pack's text edits start with
  (the "clip" row is StyleCLIP's own channel choice, `atelier edit --no-gate`);
- sweep: alpha x beta (CLIP relevance; --sweep-oracle adds the oracle's) on fewer seeds
  (--sweep-seeds) for a few edits (--sweep-edits).
Three ceiling rows tell what any edit could score (--no-ceiling leaves them out):
- asked: the demo generator is attribute-conditioned, so it can be asked directly for each
  seed's face with the target value (same jitter): the edit it makes itself, on its own
  manifold. What falls short here is the generator's drawing of one face twice, as the
  evaluator reads it; no latent edit of this generator should be expected to do better;
- averaged: the asked edit's style change averaged over as many other faces (seeds
  2,500,000+, those asked for a new value) into one direction, on the channels global
  directions move, added at strength 1 to every face. A global direction is one offset for
  every face, while the asked edit is a different offset per face (from brown hair or from
  blonde to black); this row is the generator's own best guess at such an offset, so it
  tells how much of a row's shortfall any seed-independent direction shares;
- world: the world's own renderer draws the face before and after (a perfect picture);
  what falls short here is the evaluator's error alone.

On a generator built with style groups (each attribute owns its channels; see
editor.toyfaces.style_groups) the "channels" column also says how many of an edit's
channels are the edited attribute's own: the generator's own edit moves only those, so the
rest are channels the relevance picked wrongly.

Edits: every value of every attribute from the captions' prompts ("a cartoon face" ->
"a cartoon face with sunglasses"), removals included ("... with no glasses", "no beard",
"no hat": taking something away is an edit artists ask for, and the evaluator reads it like
any other value). Hair colour edits start from "a cartoon face with short hair" so that the
direction is the colour alone (the colour prompts say "short red hair"). Select edits with
--edits by value ("sunglasses") or attribute=value where a value name is shared
("hair_colour=brown", "glasses=none"). --prompt 'mouth=smile:face->smiling face' measures
prompts of your own for a value, and --issue-prompts the five pairs issue 5 names
("face" -> "face with sunglasses", "face with hair" -> "face with red hair", "face" ->
"smiling face", "face" -> "bald face", "face" -> "face with a beard").

Seeds start at 2,000,000: apart from the faces the app shows first, the style statistics
(seeds below the sample count), the relevance base images (7,000,000+) and w_avg
(10,000,000+). Rendering is batched here (source codes + alpha * delta, 8-bit as shown);
tests check it equals EditingContext.render for single seeds.

The CLIP relevance comes from the model pack (cache, or the bundled directions). Without
it, the precompute runs first, with progress: at the paper's 100 base images (the default,
what the app uses) that takes tens of minutes on a 2-core CPU; it is cached and resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.arguments import output_file
from editor.core.arg_types import (
    device_name,
    existing_file,
    finite_float,
    int_at_least,
    thread_count,
)
from editor.core.cache import TensorCache
from editor.core.errors import AtelierError
from editor.core.generator import Generator
from editor.core.hashing import file_sha256
from editor.core.paths import atomic_write_text, cache_dir
from editor.core.style_code import StyleCode
from editor.engine.models import DEMO_GENERATOR
from editor.engine.packs import (
    DEMO_EDIT_DEFAULTS,
    DEMO_RELEVANCE,
    DEMO_STATS_SAMPLES,
    ClipSource,
    demo_clip_source,
    open_pack,
)
from editor.methods import global_directions as gd
from editor.methods.covariation import Covariation, gated_channel_scores
from editor.toyfaces import captions, style_groups
from editor.toyfaces.attributes import ATTRIBUTES, Attributes, visibility
from editor.toyfaces.conditioning import SAMPLER_NAME, encode, sample_for_seed
from editor.toyfaces.evaluator import DEFAULT_PATH as DEFAULT_EVALUATOR
from editor.toyfaces.evaluator import Evaluator, uint8_to_tensor
from editor.toyfaces.render import render as render_world

# The demo pack's defaults for a new text edit, as the editor and `atelier edit` use them.
DEFAULT_ALPHA = DEMO_EDIT_DEFAULTS.alpha
DEFAULT_BETA: float | None = None if DEMO_EDIT_DEFAULTS.auto_beta else DEMO_EDIT_DEFAULTS.beta
DEFAULT_MIN_CHANNELS = DEMO_EDIT_DEFAULTS.min_channels
DEFAULT_GATE = DEMO_EDIT_DEFAULTS.gate  # the gated row is then what the editor does
GOAL_REACHED = 0.80
GOAL_OTHERS = 0.90
SEED_BASE = 2_000_000
AVERAGED_SEED_BASE = 2_500_000  # the faces the averaged row's directions are fitted on
NEGLIGIBLE_STD = 0.01  # an averaged change below this many stds is float noise: not moved
DEMO_PSI = 1.0  # the app samples the attribute-conditioned demo generator untruncated

SWEEP_ALPHAS: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 12.0)
SWEEP_BETAS: tuple[float | None, ...] = (0.1, 0.2, 0.3, 0.4, None)  # None: auto-beta
DEFAULT_SWEEP_EDITS = "sunglasses,smile,red,bald,beard"

ORACLE_KIND, ORACLE_VERSION = "meaning-oracle-relevance", 1
ORACLE_DIM = sum(len(v) for v in ATTRIBUTES.values())

Readings = dict[str, np.ndarray]  # attribute -> (N,) values the evaluator reads


# --------------------------------------------------------------------------- edits


@dataclass(frozen=True)
class EditSpec:
    """One single-attribute edit: the text direction target - neutral."""

    attribute: str
    value: str
    neutral: str
    target: str

    @property
    def name(self) -> str:
        return f"{self.attribute}={self.value}"


def all_edits() -> list[EditSpec]:
    """Every attribute value as an edit from the plain face (see the module docstring)."""
    short_hair = captions.plain_prompts("hair_length")["short"]
    return [EditSpec(e.attribute, e.value,
                     short_hair if e.attribute == "hair_colour" else e.neutral, e.target)
            for e in captions.edit_prompts()]


# The prompt pairs issue 5 names, as written there (every word is one the demo CLIP
# learned): --issue-prompts measures these instead of the captions' own phrasings.
ISSUE_PROMPTS = (
    "glasses=sunglasses:face->face with sunglasses",
    "hair_colour=red:face with hair->face with red hair",
    "mouth=smile:face->smiling face",
    "hair_length=bald:face->bald face",
    "beard=beard:face->face with a beard",
)


def prompt_edit(text: str) -> EditSpec:
    """An edit from 'ATTRIBUTE=VALUE:NEUTRAL->TARGET': the prompts to measure, and the
    attribute value the evaluator should read once the edit has worked."""
    head, arrow, target = text.partition("->")
    label, colon, neutral = head.partition(":")
    attribute, equals, value = (x.strip() for x in label.partition("="))
    if not (arrow and colon and equals and target.strip()):
        raise ValueError(f"{text!r} is not ATTRIBUTE=VALUE:NEUTRAL->TARGET")
    if value not in ATTRIBUTES.get(attribute, ()):
        raise ValueError(f"{attribute}={value} is no attribute value of the demo world; "
                         "known: " + ", ".join(f"{a}={v}" for a, vs in ATTRIBUTES.items()
                                               for v in vs))
    return EditSpec(attribute, value, neutral.strip(), target.strip())


def select_edits(spec: str | None, edits: Sequence[EditSpec] | None = None
                 ) -> list[EditSpec]:
    """Edits named in a comma-separated list ("sunglasses,hair_colour=red"); all if None."""
    edits = list(edits if edits is not None else all_edits())
    if not spec:
        return edits
    chosen: list[EditSpec] = []
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if "=" in token or ":" in token:
            attribute, value = (s.strip() for s in token.replace(":", "=").split("=", 1))
            found = [e for e in edits if e.attribute == attribute and e.value == value]
        else:
            found = [e for e in edits if e.value == token]
        if not found:
            raise ValueError(f"no edit called {token!r}; known: "
                             + ", ".join(e.name for e in edits))
        if len(found) > 1:
            raise ValueError(f"{token!r} is a value of several attributes; say which: "
                             + ", ".join(e.name for e in found))
        if found[0] not in chosen:
            chosen.append(found[0])
    return chosen


# --------------------------------------------------------------------------- sources


def meaning_seeds(n: int, base: int = SEED_BASE) -> list[int]:
    return list(range(base, base + n))


@dataclass
class Sources:
    """The seeds' faces: what each asks for, its style code and what the evaluator reads."""

    seeds: list[int]
    attrs: list[Attributes]  # the face each seed asks the generator for
    codes: torch.Tensor  # (N, C) flat source style codes, on the generator's device
    readings: Readings

    def head(self, n: int) -> Sources:
        """The first n seeds (the sweep runs on fewer)."""
        return Sources(self.seeds[:n], self.attrs[:n], self.codes[:n],
                       {k: v[:n] for k, v in self.readings.items()})


@torch.no_grad()
def source_codes(gen: Generator, z_for_seed: Callable[[int], torch.Tensor],
                 seeds: Sequence[int], psi: float = DEMO_PSI) -> torch.Tensor:
    """(N, C) flat style codes, as EditingContext.source_code computes them per seed."""
    device = gen.w_avg.device
    z = torch.cat([z_for_seed(int(s)) for s in seeds]).to(device)
    return gen.styles(gen.mapping(z, psi=psi)).flat()


@torch.no_grad()
def render_codes(gen: Generator, flat: torch.Tensor, batch: int = 64,
                 noise_mode: str = "const") -> torch.Tensor:
    """(N, 3, H, W) float images in [-1, 1] (unclamped, on the CPU) from flat style codes,
    as EditingContext.render makes them one at a time."""
    out = []
    for i in range(0, len(flat), batch):
        code = StyleCode.from_flat(gen.style_specs, flat[i:i + batch])
        out.append(gen.synthesize(code, noise_mode=noise_mode).float().cpu())
    return torch.cat(out)


def as_shown(images: torch.Tensor) -> torch.Tensor:
    """What the editor shows (renderer.to_uint8_image), back in [-1, 1]: clamped, 8-bit."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def edited_codes(codes: torch.Tensor, delta: torch.Tensor, alpha: float) -> torch.Tensor:
    """s' = s + alpha * delta_s (compose.EditingContext.compose for one edit)."""
    return codes + alpha * delta.to(codes.device, codes.dtype)


def read(evaluator: Evaluator, images: torch.Tensor) -> Readings:
    pred = evaluator.predict_tensor(images)
    return {a: np.array(pred.values[a]) for a in ATTRIBUTES}


def read_world_renders(evaluator: Evaluator, faces: Sequence[tuple[Attributes, int]]
                       ) -> Readings:
    """What the evaluator reads on the world renderer's drawings of (face, jitter seed)."""
    return read(evaluator, uint8_to_tensor(np.stack([render_world(a, jitter_seed=j)
                                                     for a, j in faces])))


def faces_of(gen: Generator, z_for_seed: Callable[[int], torch.Tensor], seeds: Sequence[int]
             ) -> Sources:
    """The faces seeds ask for and their style codes, unread (no readings)."""
    return Sources(list(seeds), [sample_for_seed(int(s))[0] for s in seeds],
                   source_codes(gen, z_for_seed, seeds), {})


def prepare_sources(gen: Generator, z_for_seed: Callable[[int], torch.Tensor],
                    evaluator: Evaluator, seeds: Sequence[int], batch: int = 64) -> Sources:
    faces = faces_of(gen, z_for_seed, seeds)
    faces.readings = read(evaluator, as_shown(render_codes(gen, faces.codes, batch)))
    return faces


# --------------------------------------------------------------------------- scoring


@dataclass
class EditScore:
    """Counts for one edit at one alpha/beta (rates are derived)."""

    edit: str
    n: int  # seeds
    lacking: int = 0  # sources showing the attribute, not reading as the target
    reached: int = 0  # of the lacking: the edited image reads as the target
    same_all: int = 0  # of all n: every other shown attribute reads the same
    same_reached: int = 0  # of the reached: every other shown attribute reads the same
    changed: dict[str, int] = field(default_factory=dict)  # other attr -> seeds changed
    compared: dict[str, int] = field(default_factory=dict)  # other attr -> seeds compared
    n_channels: int | None = None
    own_channels: int | None = None  # of n_channels: in the attribute's style group
    beta: float | None = None
    error: str | None = None  # the edit could not be made (no channel passes beta)

    @property
    def reached_rate(self) -> float:
        return self.reached / self.lacking if self.lacking else math.nan

    @property
    def others_all(self) -> float:
        return self.same_all / self.n if self.n and self.error is None else math.nan

    @property
    def others_reached(self) -> float:
        return self.same_reached / self.reached if self.reached else math.nan

    @property
    def both(self) -> float:
        return self.same_reached / self.lacking if self.lacking else math.nan

    @property
    def passed(self) -> bool:
        return (self.error is None and self.reached_rate >= GOAL_REACHED
                and self.others_reached >= GOAL_OTHERS)

    def most_changed(self) -> tuple[str, float] | None:
        rates = {a: self.changed[a] / self.compared[a] for a in self.changed
                 if self.compared.get(a)}
        if not rates or max(rates.values()) == 0:
            return None
        name = max(rates, key=rates.__getitem__)
        return name, rates[name]

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "reached_rate": self.reached_rate,
                "others_all": self.others_all, "others_reached": self.others_reached,
                "both": self.both, "passed": self.passed}


def score_edit(edit: EditSpec, attrs: Sequence[Attributes], before: Readings,
               after: Readings) -> EditScore:
    """Count what the evaluator read before and after an edit (see the module docstring)."""
    a, v = edit.attribute, edit.value
    n = len(attrs)
    score = EditScore(edit.name, n, changed={b: 0 for b in ATTRIBUTES if b != a},
                      compared={b: 0 for b in ATTRIBUTES if b != a})
    for i, face in enumerate(attrs):
        shown_before = visibility(face)
        shown_after = visibility(face.replace(**{a: v}))
        same = True
        for b in score.changed:
            if not (shown_before[b] and shown_after[b]):
                continue
            score.compared[b] += 1
            if before[b][i] != after[b][i]:
                score.changed[b] += 1
                same = False
        score.same_all += same
        if shown_before[a] and before[a][i] != v:
            score.lacking += 1
            if after[a][i] == v:
                score.reached += 1
                score.same_reached += same
    return score


def asked_codes(world: World, sources: Sources, edit: EditSpec) -> torch.Tensor:
    """(N, C) flat style codes of each source face asked for with the target value (same
    jitter seed), through the demo generator's attribute conditioning."""
    jitters = [sample_for_seed(int(s))[1] for s in sources.seeds]
    z = [torch.from_numpy(encode(a.replace(**{edit.attribute: edit.value}), j))[None]
         for a, j in zip(sources.attrs, jitters, strict=True)]
    return source_codes(world.generator, lambda i: z[i], range(len(z)))


def asked_scores(world: World, sources: Sources, edits: Sequence[EditSpec], batch: int = 64
                 ) -> list[EditScore]:
    """The generator's own edit, scored: it is asked through its attribute conditioning for
    each seed's face with the target value (same jitter seed), and rendered as shown."""
    rows = []
    for e in edits:
        codes = asked_codes(world, sources, e)
        after = read(world.evaluator, as_shown(render_codes(world.generator, codes, batch)))
        rows.append(score_edit(e, sources.attrs, sources.readings, after))
    return rows


def averaged_direction(world: World, fit: Sources, edit: EditSpec) -> gd.EditDirection:
    """The asked edit as one global direction: the mean style change over the fit faces
    asked for a value they do not have, on the channels global directions move (the
    relevance's). Changes below NEGLIGIBLE_STD of a channel's std are left out: on a
    grouped generator they are the float noise of channels the edit does not own."""
    new_value = torch.tensor([getattr(a, edit.attribute) != edit.value for a in fit.attrs])
    if not bool(new_value.any()):
        raise ValueError(f"none of the {len(fit.seeds)} fit faces lacks {edit.name}")
    change = asked_codes(world, fit, edit) - fit.codes
    mean = change[new_value.to(change.device)].mean(0).cpu().float()
    channels = world.relevance.channels.cpu()
    delta = torch.zeros_like(mean)
    delta[channels] = mean[channels]
    delta[delta.abs() < NEGLIGIBLE_STD * world.stats.std.cpu().float()] = 0
    return gd.EditDirection(delta, n_channels=int((delta != 0).sum()), max_score=0.0)


def averaged_scores(world: World, sources: Sources, fit: Sources, edits: Sequence[EditSpec],
                    batch: int = 64) -> list[EditScore]:
    """Each edit's averaged direction (fitted on `fit`) at strength 1 on the sources."""
    return [measure(world, sources, e, lambda e=e: averaged_direction(world, fit, e), 1.0,
                    batch) for e in edits]


def ceiling_scores(evaluator: Evaluator, seeds: Sequence[int], edits: Sequence[EditSpec]
                   ) -> list[EditScore]:
    """A perfect edit, scored: the world renderer draws each seed's face before and after
    the edit with the same jitter; what falls short here is the evaluator's error."""
    faces = [sample_for_seed(int(s)) for s in seeds]
    attrs = [a for a, _ in faces]
    before = read_world_renders(evaluator, faces)
    rows = []
    for e in edits:
        after = read_world_renders(
            evaluator, [(a.replace(**{e.attribute: e.value}), j) for a, j in faces])
        rows.append(score_edit(e, attrs, before, after))
    return rows


def failed_score(edit: EditSpec, n: int, error: str) -> EditScore:
    # the first clause says what failed; the advice after it is for the app's users
    return EditScore(edit.name, n, error=error.split(";")[0])


# --------------------------------------------------------------------------- directions


def direction_for(relevance: gd.Relevance, stats: gd.StyleStats, dt: torch.Tensor,
                  beta: float | None, min_channels: int = DEFAULT_MIN_CHANNELS
                  ) -> gd.EditDirection:
    """The style delta of a text direction, as EditingContext makes it (beta None: auto)."""
    return gd.thresholded_edit(relevance, stats, gd.channel_scores(relevance, dt), beta,
                               min_channels)


def clip_text_direction(clip: gd.ImageTextEncoder, edit: EditSpec,
                        templates: Sequence[str] | None = None) -> torch.Tensor:
    return gd.text_direction(clip, edit.neutral, edit.target, templates)


def oracle_text_direction(attribute: str, value: str) -> torch.Tensor:
    """(ORACLE_DIM,) unit vector: one-hot(attribute = value) - uniform over the attribute's
    values, in the attribute's block of the oracle embedding; zero elsewhere."""
    out = torch.zeros(ORACLE_DIM)
    pos = 0
    for name, values in ATTRIBUTES.items():
        if name == attribute:
            block = torch.full((len(values),), -1.0 / len(values))
            block[values.index(value)] += 1.0
            out[pos:pos + len(values)] = block
            return out / out.norm()
        pos += len(values)
    raise KeyError(f"unknown attribute {attribute!r}")


class EvaluatorEncoder:
    """The evaluator as compute_relevance's image encoder: an image's embedding is the
    concatenation of its per-attribute probability vectors (ATTRIBUTES order)."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = images.clamp(-1, 1).float().to(self.evaluator.device)
        logits = self.evaluator.model(x)
        probs = torch.cat([logits[a].float().softmax(-1) for a in ATTRIBUTES], dim=1)
        return F.normalize(probs, dim=-1) if normalize else probs

    def text_embedding(self, text: str, templates: Sequence[str] | None = None
                       ) -> torch.Tensor:
        raise NotImplementedError("the oracle reads no text; use oracle_text_direction")


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def oracle_cache(gen_hash: str, evaluator_hash: str, stats: gd.StyleStats,
                 config: gd.RelevanceConfig, sampler: str) -> TensorCache:
    key = {"generator": gen_hash, "evaluator": evaluator_hash, "relevance": config.to_dict(),
           "stats": {"n_samples": stats.n_samples, "digest": _digest(stats.mean, stats.std)},
           "sampler": sampler, "embedding": "attribute-probabilities"}
    return TensorCache(ORACLE_KIND, key, ORACLE_VERSION, root=cache_dir() / "benchmarks")


def oracle_relevance(
    gen: Generator, evaluator: Evaluator, stats: gd.StyleStats, config: gd.RelevanceConfig,
    *, gen_hash: str, evaluator_hash: str, sample_w: gd.WSampler | None, sampler: str,
    on_progress: Callable[[gd.Progress], None] | None = None,
) -> tuple[gd.Relevance, bool]:
    """Channel relevance with the evaluator as the encoder; (relevance, from_cache). The
    result is cached (atomically) by the models' hashes, the stats and the settings."""
    entry = oracle_cache(gen_hash, evaluator_hash, stats, config, sampler)
    got = entry.load()
    if got is not None:
        tensors = got[0]
        ch, vec = tensors.get("channels"), tensors.get("vectors")
        if ch is not None and vec is not None and vec.ndim == 2 and \
                vec.shape == (len(ch), ORACLE_DIM) and bool(torch.isfinite(vec).all()):
            return gd.Relevance(ch.long(), vec.float(), config.to_dict()), True
    relevance = None
    for item in gd.compute_relevance(gen, EvaluatorEncoder(evaluator), stats, config,
                                     sample_w=sample_w):
        if isinstance(item, gd.Relevance):
            relevance = item
        elif on_progress is not None:
            on_progress(item)
    assert relevance is not None
    entry.save(relevance.to_dict(), {"relevance": config.to_dict()})
    return relevance, False


# --------------------------------------------------------------------------- measuring


@dataclass
class World:
    """The loaded models and precomputed data one run measures."""

    generator: Generator
    z_for_seed: Callable[[int], torch.Tensor]
    evaluator: Evaluator
    stats: gd.StyleStats
    relevance: gd.Relevance  # CLIP's
    clip: gd.ImageTextEncoder
    relevance_config: gd.RelevanceConfig
    gen_hash: str = ""
    evaluator_hash: str = ""
    sampler: str = ""
    sample_w: gd.WSampler | None = None
    describe: dict = field(default_factory=dict)
    # flat channel -> style group name, for a generator built with groups (else None)
    channel_groups: np.ndarray | None = None
    covariation: Covariation | None = None  # the pack's, for the gated row


def measure_edit(world: World, sources: Sources, edit: EditSpec, direction: gd.EditDirection,
                 alpha: float, batch: int = 64) -> EditScore:
    codes = edited_codes(sources.codes, direction.delta, alpha)
    after = read(world.evaluator, as_shown(render_codes(world.generator, codes, batch)))
    score = score_edit(edit, sources.attrs, sources.readings, after)
    score.n_channels, score.beta = direction.n_channels, direction.beta
    if world.channel_groups is not None:
        moved = (direction.delta != 0).cpu().numpy()
        score.own_channels = int((world.channel_groups[moved] == edit.attribute).sum())
    return score


def measure(world: World, sources: Sources, edit: EditSpec,
            make_direction: Callable[[], gd.EditDirection], alpha: float, batch: int = 64
            ) -> EditScore:
    """One edit; an edit that cannot be made (no channel passes beta) scores as failed."""
    try:
        direction = make_direction()
    except (gd.NoChannelsError, ValueError) as e:
        return failed_score(edit, len(sources.seeds), str(e))
    return measure_edit(world, sources, edit, direction, alpha, batch)


def clip_maker(world: World, edit: EditSpec, beta: float | None, min_channels: int,
               templates: Sequence[str] | None) -> Callable[[], gd.EditDirection]:
    return lambda: direction_for(world.relevance, world.stats,
                                 clip_text_direction(world.clip, edit, templates),
                                 beta, min_channels)


def gated_direction(relevance: gd.Relevance, stats: gd.StyleStats, covariation: Covariation,
                    dt: torch.Tensor, beta: float | None, min_channels: int
                    ) -> gd.EditDirection:
    """The edit with the relevance scores gated by co-variation (as EditingContext makes a
    text edit whose params ask for "gate"): only channels that also vary with the text
    direction across the samples."""
    return gd.thresholded_edit(relevance, stats, gated_channel_scores(relevance, covariation, dt),
                               beta, min_channels)


def gated_maker(world: World, covariation: Covariation, edit: EditSpec, beta: float | None,
                min_channels: int, templates: Sequence[str] | None
                ) -> Callable[[], gd.EditDirection]:
    return lambda: gated_direction(world.relevance, world.stats, covariation,
                                   clip_text_direction(world.clip, edit, templates), beta,
                                   min_channels)


def oracle_maker(world: World, relevance: gd.Relevance, edit: EditSpec, beta: float | None,
                 min_channels: int) -> Callable[[], gd.EditDirection]:
    return lambda: direction_for(relevance, world.stats,
                                 oracle_text_direction(edit.attribute, edit.value),
                                 beta, min_channels)


@dataclass
class Settings:
    seeds: int = 200
    seed_base: int = SEED_BASE
    alpha: float = DEFAULT_ALPHA
    beta: float | None = DEFAULT_BETA  # None: auto-beta
    # the oracle's beta: a number, None (auto-beta) or "match" (the CLIP row's channel count)
    oracle_beta: float | str | None = None
    min_channels: int = DEFAULT_MIN_CHANNELS
    templates: tuple[str, ...] | None = None  # None: the app's (ImageNet) templates
    oracle: bool = True
    oracle_images: int = 20
    gated: bool = True
    sweep: bool = True
    sweep_seeds: int = 50
    sweep_oracle: bool = False
    ceiling: bool = True
    batch: int = 64


def _beta_text(beta: float | str | None) -> str:
    return "auto" if beta is None else beta if isinstance(beta, str) else f"{beta:g}"


def _oracle_threshold(setting: float | str | None, clip_row: EditScore, min_channels: int
                      ) -> tuple[float | None, int]:
    """(beta, min_channels) of an oracle row. "match" keeps as many channels as the CLIP
    row used (auto-beta's minimum when that row failed)."""
    if setting == "match":
        n = clip_row.n_channels if clip_row.error is None and clip_row.n_channels else None
        return None, n or min_channels
    assert not isinstance(setting, str), setting
    return setting, min_channels


def sweep_edit(world: World, sources: Sources, edit: EditSpec,
               maker: Callable[[float | None], Callable[[], gd.EditDirection]], batch: int
               ) -> dict[tuple[float | None, float], EditScore]:
    """(beta, alpha) -> score over SWEEP_BETAS x SWEEP_ALPHAS; one direction per beta."""
    cells: dict[tuple[float | None, float], EditScore] = {}
    for beta in SWEEP_BETAS:
        try:
            direction = maker(beta)()
        except (gd.NoChannelsError, ValueError) as err:
            for alpha in SWEEP_ALPHAS:
                cells[(beta, alpha)] = failed_score(edit, len(sources.seeds), str(err))
            continue
        for alpha in SWEEP_ALPHAS:
            cells[(beta, alpha)] = measure_edit(world, sources, edit, direction, alpha, batch)
    return cells


def run_measurements(world: World, edits: Sequence[EditSpec], sweep_edits: Sequence[EditSpec],
                     settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Everything the script prints, as a dict (see `format_*` for the tables)."""
    s = settings
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    sources = prepare_sources(world.generator, world.z_for_seed, world.evaluator,
                              meaning_seeds(s.seeds, s.seed_base), s.batch)
    times["sources"] = time.perf_counter() - t0
    log(f"sources: {s.seeds} seeds rendered and read in {times['sources']:.1f} s")

    t0 = time.perf_counter()
    clip_rows = [measure(world, sources, e,
                         clip_maker(world, e, s.beta, s.min_channels, s.templates), s.alpha,
                         s.batch) for e in edits]
    times["clip_edits"] = time.perf_counter() - t0
    log(f"CLIP edits: {len(edits)} edits in {times['clip_edits']:.1f} s")

    gated_rows: list[EditScore] = []
    if s.gated and world.covariation is not None:
        t0 = time.perf_counter()
        gated_rows = [measure(world, sources, e,
                              gated_maker(world, world.covariation, e, s.beta, s.min_channels,
                                          s.templates), s.alpha, s.batch) for e in edits]
        times["gated_edits"] = time.perf_counter() - t0
        log(f"gated edits: {times['gated_edits']:.1f} s")

    oracle_rows: list[EditScore] = []
    oracle_relevance_obj = None
    oracle_info: dict = {}
    if s.oracle:
        t0 = time.perf_counter()
        cfg = dataclasses.replace(world.relevance_config, n_images=s.oracle_images)
        with _progress_line("oracle relevance") as show:
            oracle_relevance_obj, cached = oracle_relevance(
                world.generator, world.evaluator, world.stats, cfg, gen_hash=world.gen_hash,
                evaluator_hash=world.evaluator_hash, sample_w=world.sample_w,
                sampler=world.sampler, on_progress=show)
        times["oracle_relevance"] = time.perf_counter() - t0
        oracle_info = {"images": s.oracle_images, "cached": cached,
                       "beta": _beta_text(s.oracle_beta)}
        log(f"oracle relevance ({s.oracle_images} base images, "
            f"{'from the cache' if cached else 'computed'}): "
            f"{times['oracle_relevance']:.1f} s")
        t0 = time.perf_counter()
        for e, clip_row in zip(edits, clip_rows, strict=True):
            beta, least = _oracle_threshold(s.oracle_beta, clip_row, s.min_channels)
            oracle_rows.append(measure(world, sources, e,
                                       oracle_maker(world, oracle_relevance_obj, e, beta,
                                                    least), s.alpha, s.batch))
        times["oracle_edits"] = time.perf_counter() - t0
        log(f"oracle edits: {times['oracle_edits']:.1f} s")

    asked_rows: list[EditScore] = []
    averaged_rows: list[EditScore] = []
    ceiling_rows: list[EditScore] = []
    if s.ceiling:
        t0 = time.perf_counter()
        if world.sampler == SAMPLER_NAME:  # only the demo generator can be asked
            asked_rows = asked_scores(world, sources, edits, s.batch)
            fit = faces_of(world.generator, world.z_for_seed,
                           meaning_seeds(s.seeds, AVERAGED_SEED_BASE))
            averaged_rows = averaged_scores(world, sources, fit, edits, s.batch)
        ceiling_rows = ceiling_scores(world.evaluator, sources.seeds, edits)
        times["ceiling"] = time.perf_counter() - t0
        log(f"ceilings (the generator asked for the edited face, and averaged; world "
            f"renders): {times['ceiling']:.1f} s")

    sweeps: list[dict] = []
    if s.sweep and sweep_edits:
        t0 = time.perf_counter()
        sub = sources.head(s.sweep_seeds)
        kinds = ["clip"] + (["oracle"] if s.sweep_oracle and oracle_relevance_obj else [])
        for kind in kinds:
            for e in sweep_edits:
                def maker(beta: float | None, e=e, kind=kind) -> Callable[[], gd.EditDirection]:
                    if kind == "clip":
                        return clip_maker(world, e, beta, s.min_channels, s.templates)
                    return oracle_maker(world, oracle_relevance_obj, e, beta, s.min_channels)

                sweeps.append({"relevance": kind, "edit": e.name, "neutral": e.neutral,
                               "target": e.target,
                               "cells": sweep_edit(world, sub, e, maker, s.batch)})
        times["sweep"] = time.perf_counter() - t0
        log(f"sweep: {len(sweeps)} edits x {len(SWEEP_ALPHAS)} alphas x {len(SWEEP_BETAS)} "
            f"betas on {len(sub.seeds)} seeds in {times['sweep']:.1f} s")
    return {"settings": s, "edits": list(edits), "clip": clip_rows, "gated": gated_rows,
            "oracle": oracle_rows, "asked": asked_rows, "averaged": averaged_rows,
            "ceiling": ceiling_rows, "oracle_info": oracle_info,
            "sweeps": sweeps, "times": times, "n_seeds": len(sources.seeds)}


# --------------------------------------------------------------------------- printing


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.0f}%"


def _mark(x: float, goal: float) -> str:
    return " " if math.isnan(x) else ("+" if x >= goal else "-")


def format_rows(edits: Sequence[EditSpec], clip_rows: Sequence[EditScore],
                oracle_rows: Sequence[EditScore], asked_rows: Sequence[EditScore] = (),
                ceiling_rows: Sequence[EditScore] = (),
                gated_rows: Sequence[EditScore] = (),
                averaged_rows: Sequence[EditScore] = ()) -> str:
    """One row per edit (CLIP), each followed by its gated, oracle and ceiling ("averaged",
    "asked", "world") rows when there are some."""
    header = ("edit", "relevance", "n", "lacking", "reached", "others(all)",
              "others(reached)", "both", "channels", "beta", "most changed")
    rows = [header]

    def column(scores: Sequence[EditScore]) -> Sequence[EditScore | None]:
        # by position, as they were measured: two prompts for one value (--prompt) share
        # the value's name
        return scores or [None] * len(edits)

    for e, *measured in zip(edits, clip_rows, column(gated_rows), column(oracle_rows),
                            column(averaged_rows), column(asked_rows), column(ceiling_rows),
                            strict=True):
        for label, row in zip(("clip", "gated", "oracle", "averaged", "asked", "world"),
                              measured, strict=True):
            if row is None:
                continue
            name = e.name if label == "clip" else ""
            if row.error:
                rows.append((name, label, str(row.n), "", "", "", "", "", "0", "",
                             "error: " + row.error))
                continue
            worst = row.most_changed()
            rows.append((
                name, label, str(row.n), str(row.lacking),
                f"{_pct(row.reached_rate)} {_mark(row.reached_rate, GOAL_REACHED)}",
                _pct(row.others_all),
                f"{_pct(row.others_reached)} {_mark(row.others_reached, GOAL_OTHERS)}",
                _pct(row.both), _channels_text(row),
                "" if row.beta is None else f"{row.beta:.3f}",
                f"{worst[0]} {_pct(worst[1])}" if worst else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join([c.ljust(w) for c, w in zip(row, widths, strict=False)]
                               + [row[-1]]).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 12)
    return "\n".join(lines)


def _channels_text(row: EditScore) -> str:
    """The edit's channel count, with how many are the attribute's own (grouped models)."""
    if row.n_channels is None:
        return "-"  # a ceiling row: no channels were chosen
    if row.own_channels is None:
        return str(row.n_channels)
    return f"{row.n_channels} ({row.own_channels} own)"


def format_sweep(sweep: dict) -> str:
    cells: dict = sweep["cells"]
    first = next((c for c in cells.values() if c.error is None), next(iter(cells.values())))
    prompts = f" '{sweep['neutral']}' -> '{sweep['target']}'" if "target" in sweep else ""
    lines = [f"sweep {sweep['edit']}{prompts} ({sweep['relevance']} relevance, {first.n} "
             f"seeds, {first.lacking} lacking): target reached / others unchanged where "
             f"reached"]
    head = f"{'beta':>18s}" + "".join(f"{'alpha ' + f'{a:g}':>14s}" for a in SWEEP_ALPHAS)
    lines.append(head)
    for beta in SWEEP_BETAS:
        row_cells = [cells[(beta, a)] for a in SWEEP_ALPHAS]
        c0 = row_cells[0]
        if c0.error:
            label = f"{_beta_text(beta)} (0 ch)"
            lines.append(f"{label:>18s}   no channel passes")
            continue
        shown_beta = _beta_text(beta) if beta is not None else f"auto {c0.beta:.2f}"
        label = f"{shown_beta} ({c0.n_channels} ch)"
        lines.append(f"{label:>18s}" + "".join(
            f"{_pct(c.reached_rate) + '/' + _pct(c.others_reached):>14s}" for c in row_cells))
    return "\n".join(lines)


def summary(rows: Sequence[EditScore], what: str = "CLIP edits") -> str:
    passed = [r.edit for r in rows if r.passed]
    failed = [r.edit for r in rows if not r.passed]
    text = (f"{len(passed)}/{len(rows)} {what} pass (target reached >= "
            f"{GOAL_REACHED:.0%} and others unchanged where reached >= {GOAL_OTHERS:.0%})")
    return text + (f"; FAIL: {', '.join(failed)}" if failed else "")


def own_channel_share(rows: Sequence[EditScore]) -> float | None:
    """Of all the channels the edits move, the fraction in the edited attribute's own style
    group (grouped generators only; the generator's own edit moves nothing else)."""
    known = [(r.own_channels, r.n_channels) for r in rows
             if r.own_channels is not None and r.n_channels]
    if not known:
        return None
    return sum(own for own, _ in known) / sum(n for _, n in known)


def _beta_json(beta: float | str | None) -> float | str:
    return "auto" if beta is None else beta


def to_json(result: dict, world_info: dict) -> dict:
    s: Settings = result["settings"]
    return {
        "settings": {**dataclasses.asdict(s), "beta": _beta_json(s.beta),
                     "oracle_beta": _beta_json(s.oracle_beta)},
        "models": world_info,
        "goals": {"target_reached": GOAL_REACHED, "others_unchanged_where_reached":
                  GOAL_OTHERS},
        "edits": [dataclasses.asdict(e) for e in result["edits"]],
        "clip": [r.to_dict() for r in result["clip"]],
        "gated": [r.to_dict() for r in result["gated"]],
        "oracle": [r.to_dict() for r in result["oracle"]],
        "asked": [r.to_dict() for r in result["asked"]],
        "averaged": [r.to_dict() for r in result["averaged"]],
        "ceiling": [r.to_dict() for r in result["ceiling"]],
        "oracle_info": result["oracle_info"],
        "sweeps": [{"relevance": sw["relevance"], "edit": sw["edit"],
                    "neutral": sw["neutral"], "target": sw["target"],
                    "cells": [{**c.to_dict(), "beta_setting": _beta_json(b), "alpha": a}
                              for (b, a), c in sw["cells"].items()]}
                   for sw in result["sweeps"]],
        "seconds": result["times"],
    }


# --------------------------------------------------------------------------- loading


@contextlib.contextmanager
def _progress_line(label: str, every_s: float = 2.0) -> Iterator[Callable[[gd.Progress],
                                                                            None]]:
    """A throttled one-line progress display on stderr for a job's Progress items."""
    last = [0.0]

    def show(p: gd.Progress) -> None:
        now = time.monotonic()
        if now - last[0] < every_s and p.done < p.total:
            return
        last[0] = now
        eta = f", ETA {p.eta_s:.0f} s" if p.eta_s is not None else ""
        print(f"\r{label}: {100 * p.fraction:5.1f}% {p.message[:48]:48s}{eta}   ", end="",
              file=sys.stderr, flush=True)

    try:
        yield show
    finally:
        if last[0]:
            print(file=sys.stderr, flush=True)


# what load_world raises for models that are not there or not what they should be
LOAD_ERRORS = (AtelierError, FileNotFoundError, ValueError)


def load_world(args: argparse.Namespace, log: Callable[[str], None] = print) -> World:
    t0 = time.perf_counter()
    config = dataclasses.replace(DEMO_RELEVANCE, n_images=args.relevance_images)
    clip_source = ClipSource(path=args.clip_file) if args.clip_file else demo_clip_source()
    if not Path(clip_source.path or "").is_file():
        raise FileNotFoundError(f"no CLIP file at {clip_source.path}; pass --clip-file (the "
                                "demo CLIP's recipe: python -m editor.toyfaces.train clip)")
    pack = open_pack(args.generator, clip_source, args.device, relevance_config=config,
                     stats_samples=args.stats_samples)
    if pack.model.z_for_seed is None:
        raise AtelierError(f"{args.generator} is not a demo-world generator (it has no "
                           "attribute sampler); the evaluator can only read demo faces")
    evaluator = Evaluator.load(args.evaluator, device=args.device)
    evaluator_hash = file_sha256(args.evaluator)
    log(f"loaded generator {pack.model.name}, CLIP {clip_source.describe()}, evaluator "
        f"{Path(args.evaluator).name} in {time.perf_counter() - t0:.1f} s")
    if pack.data is None:
        t0 = time.perf_counter()
        log(f"no precomputed directions for this pack at {config.n_images} base images and "
            f"{pack.stats_samples} statistics samples: computing them (at 100 images this "
            "takes tens of minutes on a 2-core CPU; cached and resumable)")
        with _progress_line("precompute") as show:
            for item in pack.precompute():
                if isinstance(item, gd.Progress):
                    show(item)
        log(f"precompute: {time.perf_counter() - t0:.1f} s")
    assert pack.data is not None and pack.clip is not None
    if pack.covariation is None and not args.no_gated:
        with _progress_line("co-variation") as show:
            for item in pack.covariation_job():
                if isinstance(item, gd.Progress):
                    show(item)
    return World(
        generator=pack.model.generator, z_for_seed=pack.model.z_for_seed,
        evaluator=evaluator, stats=pack.data.stats, relevance=pack.data.relevance,
        clip=pack.clip, relevance_config=config, gen_hash=pack.model.content_hash,
        evaluator_hash=evaluator_hash, sampler=pack.sampler or "",
        sample_w=pack.sample_w(),
        channel_groups=style_groups.flat_channel_groups(pack.model.generator),
        covariation=pack.covariation,
        describe={"generator": str(args.generator), "generator_hash": pack.model.content_hash,
                  "clip": clip_source.describe(), "clip_hash": pack.clip.content_hash,
                  "evaluator": str(args.evaluator), "evaluator_sha256": evaluator_hash,
                  "relevance_images": config.n_images, "stats_samples": pack.stats_samples,
                  "relevance_channels": len(pack.data.relevance.channels)})


# --------------------------------------------------------------------------- CLI


def _beta_arg(text: str) -> float | str | None:
    """A beta option: a number, "auto" (None), "same" or "match"."""
    word = text.strip().lower()
    if word in ("auto", "same", "match"):
        return None if word == "auto" else word
    return float(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.meaning",
                                description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int_at_least(1), default=200,
                   help="seeds per edit (default 200)")
    p.add_argument("--seed-base", type=int, default=SEED_BASE)
    p.add_argument("--edits", default=None,
                   help="comma-separated edits by value or attribute=value (default: all)")
    p.add_argument("--prompt", action="append", default=None, metavar="A=V:NEUTRAL->TARGET",
                   help="measure these prompts for attribute A's value V instead of the "
                        "captions' edits (repeatable), e.g. "
                        "'mouth=smile:face->smiling face'")
    p.add_argument("--issue-prompts", action="store_true",
                   help="the five prompt pairs issue 5 names, as written there")
    p.add_argument("--alpha", type=finite_float, default=DEFAULT_ALPHA)
    p.add_argument("--beta", type=finite_float, default=DEFAULT_BETA)
    p.add_argument("--auto-beta", action="store_true",
                   help="pick beta per edit, keeping --min-channels channels")
    p.add_argument("--min-channels", type=int, default=DEFAULT_MIN_CHANNELS)
    p.add_argument("--templates", choices=("imagenet", "plain"), default="imagenet",
                   help="prompt templates for the text direction: the app's 79 ImageNet "
                        "ones (default) or the prompt alone")
    p.add_argument("--no-oracle", action="store_true")
    p.add_argument("--no-gated", action="store_true",
                   help="leave out the gated row (relevance kept to channels that also vary "
                        "with the text direction across sampled images)")
    p.add_argument("--oracle-images", type=int_at_least(1), default=20,
                   help="base images for the oracle's relevance (default 20)")
    p.add_argument("--oracle-beta", type=_beta_arg, default="auto",
                   help="beta of the oracle row: 'auto' (default: keep --min-channels "
                        "channels), 'match' (as many channels as the CLIP row), 'same' "
                        "(the CLIP row's beta) or a number. Beta is a cosine in the "
                        "encoder's space, and the oracle's scores run lower than CLIP's, so "
                        "the same number is not the same threshold")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--sweep-edits", default=DEFAULT_SWEEP_EDITS)
    p.add_argument("--sweep-seeds", type=int_at_least(1), default=50)
    p.add_argument("--sweep-oracle", action="store_true", help="sweep the oracle too")
    p.add_argument("--no-ceiling", action="store_true",
                   help="leave out the ceiling rows (the generator asked for the edited "
                   "face; the world renderer's perfect edit)")
    p.add_argument("--generator", default=str(DEMO_GENERATOR))
    p.add_argument("--clip-file", type=existing_file, default=None,
                   help="CLIP weights (default: the demo CLIP)")
    p.add_argument("--evaluator", type=existing_file, default=str(DEFAULT_EVALUATOR))
    p.add_argument("--relevance-images", type=int_at_least(1), default=DEMO_RELEVANCE.n_images,
                   help=f"base images of the CLIP relevance (default "
                        f"{DEMO_RELEVANCE.n_images}, the app's)")
    p.add_argument("--stats-samples", type=int_at_least(2), default=DEMO_STATS_SAMPLES)
    p.add_argument("--device", type=device_name, default="cpu")
    p.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads")
    p.add_argument("--batch", type=int_at_least(1), default=64,
                   help="renders per generator call")
    p.add_argument("--json", type=output_file, default=None,
                   help="also write every number to this file")
    return p


def _oracle_beta(args: argparse.Namespace, beta: float | None) -> float | str | None:
    return beta if args.oracle_beta == "same" else args.oracle_beta


def _oracle_beta_text(s: Settings) -> str:
    if s.oracle_beta is None:
        return f"auto (keeps >= {s.min_channels} channels)"
    if s.oracle_beta == "match":
        return "matched to the CLIP row's channel count"
    return _beta_text(s.oracle_beta)


def main(argv: list[str] | None = None) -> int:
    """0 when every edit as the editor makes it (gated or not, as the demo pack's defaults
    say) meets both goals, 1 when one does not, 2 on bad input."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        prompts = [*(ISSUE_PROMPTS if args.issue_prompts else ()), *(args.prompt or ())]
        own = [prompt_edit(t) for t in prompts] or None
        edits = select_edits(args.edits, own)
        # the sweep measures the prompts chosen too (its default names the issue's values)
        sweep_edits = ([] if args.no_sweep else edits if own and args.sweep_edits ==
                       DEFAULT_SWEEP_EDITS else select_edits(args.sweep_edits, own))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    beta = None if args.auto_beta else args.beta
    settings = Settings(
        seeds=args.seeds, seed_base=args.seed_base, alpha=args.alpha, beta=beta,
        oracle_beta=_oracle_beta(args, beta), min_channels=args.min_channels,
        templates=("{}",) if args.templates == "plain" else None,
        oracle=not args.no_oracle, oracle_images=args.oracle_images,
        gated=not args.no_gated,
        sweep=not args.no_sweep, sweep_seeds=min(args.sweep_seeds, args.seeds),
        sweep_oracle=args.sweep_oracle, ceiling=not args.no_ceiling, batch=args.batch)
    t_all = time.perf_counter()
    try:
        world = load_world(args)
    except LOAD_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"alpha {settings.alpha:g}, beta {_beta_text(settings.beta)} (auto keeps >= "
          f"{settings.min_channels} channels), templates {args.templates}; CLIP relevance "
          f"{world.relevance_config.n_images} base images over "
          f"{len(world.relevance.channels)} channels; oracle "
          + (f"{settings.oracle_images} base images, beta {_oracle_beta_text(settings)}"
             if settings.oracle else "off"), flush=True)
    result = run_measurements(world, edits, sweep_edits, settings)
    print()
    print(format_rows(edits, result["clip"], result["oracle"], result["asked"],
                      result["ceiling"], result["gated"], result["averaged"]))
    print("\n(+/-: meets / misses the goal: target reached >= 80%, others unchanged where "
          "reached >= 90%; 'others(all)' counts every seed, 'both' the lacking seeds with "
          "the target reached and nothing else changed)")
    for sweep in result["sweeps"]:
        print()
        print(format_sweep(sweep))
    print("\n" + summary(result["clip"]))
    if result["gated"]:
        print(summary(result["gated"], "gated CLIP edits"
                      + (" (the demo editor's default)" if DEFAULT_GATE else "")))
    for label, rows in (("CLIP", result["clip"]), ("gated", result["gated"]),
                        ("oracle", result["oracle"])):
        share = own_channel_share(rows)
        if share is not None:
            print(f"{label} edits: {share:.0%} of the channels they move are the edited "
                  "attribute's own (the generator's own edit moves only those)")
    if result["averaged"]:
        print(summary(result["averaged"], "edits the generator makes when asked, averaged "
                      "over other faces into one global direction each (strength 1)"))
    if result["asked"]:
        print(summary(result["asked"], "edits the generator makes when asked (ceiling)"))
    if result["ceiling"]:
        print(summary(result["ceiling"], "perfect edits (world renders, ceiling)"))
    total = time.perf_counter() - t_all
    print("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["times"].items())
          + f"; total {total:.1f} s")
    if args.json:
        out = to_json(result, world.describe)
        out["seconds"]["total"] = total
        atomic_write_text(args.json, json.dumps(_finite(out), indent=2, default=str))
        print(f"wrote {args.json}")
    default_rows = result["gated"] if DEFAULT_GATE and result["gated"] else result["clip"]
    return 0 if all(r.passed for r in default_rows) else 1


def _finite(x: object) -> object:
    """JSON-safe: NaN (a rate over nothing) becomes null, numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, np.integer | np.floating):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


if __name__ == "__main__":
    sys.exit(main())
