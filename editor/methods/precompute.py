"""The model-pack precompute for global directions, as a cancellable, resumable job.

`precompute_pack` yields Progress (with an ETA) and finally a PackData: style statistics,
then the channel relevance. What it writes, all through TensorCache (atomic, versioned):

- the style statistics, on their own (other methods reuse them), keyed by the generator's
  content hash, the sample count and the latent sampler;
- while relevance runs, a `.partial` entry of the pack: every finished layer, plus the
  layer under way (its running sums), saved after each finished layer, at most every
  `save_every_s` seconds within a layer, and when the job stops early (cancel, Ctrl-C, an
  error, or the caller dropping the job); the next run with the same settings resumes;
- the finished pack, keyed by both models' content hashes and the settings (the
  selected layers in generator order, each once, whatever order they were given in);
- while it computes, a `.lock` beside the entry, held (fcntl.flock) so that a second
  precompute of the same pack fails at once instead of doing all the work again;
- the co-variation (gated text edits), and while it samples its images, a `.partial` of
  them (`resumable_sampling`, which discovery's sampling uses too).

Every entry carries a checksum of its tensors and one of its JSON info: a damaged file
counts as absent. (Entries from before the info checksum are read with every field checked.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as Job
from dataclasses import dataclass, field
from pathlib import Path

import torch

from editor.core.cache import EntryBusy as EntryBusy  # raised by precompute_pack
from editor.core.cache import TensorCache, stored_keys
from editor.core.errors import Cancelled as Cancelled  # raised here, caught by callers
from editor.core.generator import Generator

from .covariation import Covariation, Samples, Sampling, covariation_of
from .global_directions import (
    OFFICIAL_PSI,
    RELEVANCE_RENDERS,
    EtaClock,
    ImageTextEncoder,
    JobPhases,
    LayerProgress,
    NonFiniteRelevance,
    Progress,
    Relevance,
    RelevanceConfig,
    RelevanceState,
    StyleStats,
    WSampler,
    compute_relevance,
    iter_style_stats,
    relevance_work,
    selected_layers,
    units_done,
)

STATS_KIND, STATS_VERSION = "style-stats", 1
PACK_KIND, PACK_VERSION = "global-directions", 1
IMPORTED_KIND, IMPORTED_VERSION = "global-directions-imported", 1
# The statistics are taken over latents truncated as the relevance base images are
# (RelevanceConfig.psi; official StyleCLIP: 0.7 for both). Truncation scales s - mean by
# psi, so sigma, and with it every edit's size at a given alpha, follows it: statistics of
# untruncated samples made alpha 1/0.7 = 1.43 times the official strength.
STATS_SEED, STATS_BATCH = 0, 500
DEFAULT_SAMPLER = "gaussian-z"
# Co-variation of the style channels with CLIP (gated text edits): sampled images of their
# own (style statistics use seeds 0.., relevance 7,000,000+, discovery 5,000,000+).
COVARIATION_KIND, COVARIATION_VERSION = "covariation", 1
COVARIATION_SAMPLES, COVARIATION_SEED_BASE = 1000, 6_000_000
# Sizes of the phases on the progress bar, in render-equivalents (a render + a CLIP encode):
# a relevance (channel, image) pair renders twice (RELEVANCE_RENDERS), a co-variation sample
# once; a statistics sample only maps and styles a latent (a guess: a hundredth of a render).
STATS_RENDERS = 0.01

CancelToken = threading.Event | Callable[[], bool] | None
log = logging.getLogger(__name__)


@dataclass
class PackData:
    """What global directions need from a model pack."""

    stats: StyleStats
    relevance: Relevance
    key: str = ""  # cache key of the pack entry
    info: dict = field(default_factory=dict)  # settings, timing
    from_cache: bool = False
    # Why the finished pack (or its co-variation) could not be written to the cache, for
    # the user; the data is sound and used this session. None when it was saved.
    save_error: str | None = None

    @property
    def imported_from(self) -> str | None:
        """The file's name where the relevance was imported (StyleCLIP's fs3.npy)."""
        settings = self.info.get("relevance")
        return settings.get("imported") if isinstance(settings, dict) else None


# --------------------------------------------------------------------------- cache entries


def sampler_name(sample_w: WSampler | None, sampler: str | None = None) -> str:
    """The latent sampler's identity for cache keys. Pass `sampler` with a custom
    `sample_w` (e.g. the demo world's 'toyfaces-attributes-v1'); otherwise its qualified
    name stands in, which two different lambdas would share."""
    if sampler:
        return sampler
    if sample_w is None:
        return DEFAULT_SAMPLER
    return "custom:" + getattr(sample_w, "__module__", "?") + "." + getattr(
        sample_w, "__qualname__", type(sample_w).__name__)


def stats_cache(gen_hash: str, stats_samples: int, sampler: str = DEFAULT_SAMPLER,
                root: Path | None = None, *, psi: float = OFFICIAL_PSI) -> TensorCache:
    return TensorCache(STATS_KIND, _stats_key(gen_hash, stats_samples, sampler, psi),
                       STATS_VERSION, root)


def pack_cache(gen_hash: str, clip_hash: str, stats_samples: int, config: RelevanceConfig,
               sampler: str = DEFAULT_SAMPLER, root: Path | None = None) -> TensorCache:
    key = {"generator": gen_hash, "clip": clip_hash, "relevance": config.to_dict(),
           "stats": _stats_key(gen_hash, stats_samples, sampler, config.psi),
           "sampler": sampler}
    return TensorCache(PACK_KIND, key, PACK_VERSION, root)


def imported_pack_cache(gen_hash: str, clip_hash: str, root: Path | None = None
                        ) -> TensorCache:
    """Global directions read from another program's files (StyleCLIP's fs3.npy, see
    styleclip_files) for one generator and CLIP: one entry per pair, a later import
    replaces it. A pack this program computed for the pair is preferred (OpenPack)."""
    return TensorCache(IMPORTED_KIND, {"generator": gen_hash, "clip": clip_hash},
                       IMPORTED_VERSION, root)


def imported_key(entry: TensorCache, tensors: dict[str, torch.Tensor]) -> str:
    """An imported pack's key (what results made from it, such as discoveries, are cached
    under): its entry is one per generator and CLIP, so the key names the content too."""
    return f"{entry.key}-{_checksum(tensors)[:16]}"


def load_imported_pack(gen_hash: str, clip_hash: str, root: Path | None = None
                       ) -> PackData | None:
    entry = imported_pack_cache(gen_hash, clip_hash, root)
    got = load_checked(entry)
    return _pack_from(got[0], got[1], imported_key(entry, got[0])) if got else None


def _stats_key(gen_hash: str, stats_samples: int, sampler: str, psi: float) -> dict:
    return {"generator": gen_hash, "n_samples": int(stats_samples), "seed": STATS_SEED,
            "psi": float(psi), "sampler": sampler}


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _info_checksum(info: dict) -> str:
    """A checksum of an entry's JSON info (but its own field), as it reads back: the
    tensors' checksum does not cover the numbers a resume or a label comes from."""
    rest = {k: v for k, v in info.items() if k != "info_sha256"}
    canonical = json.dumps(json.loads(json.dumps(rest, default=str)), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# what save_checked adds to an entry's info: the file's, not part of what it holds
CHECKSUM_FIELDS = ("sha256", "info_sha256")


def save_checked(entry: TensorCache, tensors: dict[str, torch.Tensor], info: dict,
                 partial: bool = False) -> None:
    """Write a cache entry (atomically) with checksums of its tensors and of its info."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    info = {**info, "sha256": _checksum(tensors)}
    info["info_sha256"] = _info_checksum(info)
    (entry.save_partial if partial else entry.save)(tensors, info)


def try_save_checked(entry: TensorCache, tensors: dict[str, torch.Tensor], info: dict,
                     what: str, partial: bool = False, warn: bool = True,
                     then: str | None = "it is used now but will be computed again next time"
                     ) -> str | None:
    """save_checked, but a failure to write (disk full, a read-only cache) comes back as a
    message for the user instead of an exception: what was computed is still good for
    this session, and minutes of work must not be thrown away for want of a cache.
    `warn`: also log it (a caller retrying every few seconds logs the first only).
    `then`: what that means for the user (None: the caller says it)."""
    try:
        save_checked(entry, tensors, info, partial)
    except OSError as e:
        message = (f"the {what} could not be saved to the cache ({e.strerror or e})"
                   + (f"; {then}" if then else ""))
        if warn:
            log.warning("%s", message)
        return message
    return None


def load_checked(entry: TensorCache, partial: bool = False, warn: bool = True
                 ) -> tuple[dict[str, torch.Tensor], dict] | None:
    """An entry whose tensors match their checksum, else None (absent, damaged, or
    written by another version or for another key). A file that is there but refused is
    logged (unless `warn` is false: a second look): the work it held (hours, for a resume
    file) is done again."""
    got = _load_verified(entry, partial)
    path = entry.partial_path if partial else entry.path
    if got is None and warn and path.exists():
        log.warning("ignored %s: damaged, or written for other models or by another "
                    "version; it is computed again", path)
    return got


def _load_verified(entry: TensorCache, partial: bool
                   ) -> tuple[dict[str, torch.Tensor], dict] | None:
    try:
        got = entry.load_partial() if partial else entry.load()
    except ValueError:  # metadata that is not JSON
        return None
    if got is None:
        return None
    tensors, info = got
    if not isinstance(info, dict) or info.get("sha256") != _checksum(tensors):
        return None
    # Entries written before the info had a checksum (the shipped demo data) have none;
    # their readers check every field they use.
    if "info_sha256" in info and info["info_sha256"] != _info_checksum(info):
        return None
    return tensors, info


def _finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _stats_from(tensors: dict[str, torch.Tensor]) -> StyleStats | None:
    try:
        stats = StyleStats.from_dict(tensors)
    except (KeyError, TypeError, ValueError, RuntimeError):
        return None
    if stats.mean.shape != stats.std.shape or stats.mean.ndim != 1:
        return None
    return stats if _finite(stats.mean, stats.std) else None


def _pack_from(tensors: dict[str, torch.Tensor], info: dict, key: str) -> PackData | None:
    stats = _stats_from(tensors)
    channels, vectors = tensors.get("channels"), tensors.get("vectors")
    if stats is None or channels is None or vectors is None:
        return None
    if vectors.ndim != 2 or channels.shape != (vectors.shape[0],) or not _finite(vectors):
        return None
    if len(channels) and (int(channels.min()) < 0 or int(channels.max()) >= len(stats.mean)):
        return None
    settings = info.get("relevance")  # shown to the user only; not worth refusing the pack
    relevance = Relevance(channels.long(), vectors.float(),
                          dict(settings) if isinstance(settings, dict) else {})
    return PackData(stats, relevance, key, info)


def load_stats(gen_hash: str, stats_samples: int, sampler: str = DEFAULT_SAMPLER,
               root: Path | None = None, *, psi: float = OFFICIAL_PSI) -> StyleStats | None:
    got = load_checked(stats_cache(gen_hash, stats_samples, sampler, root, psi=psi))
    return _stats_from(got[0]) if got else None


def load_pack_data(gen_hash: str, clip_hash: str, stats_samples: int = 10_000,
                   relevance_config: RelevanceConfig | None = None,
                   sampler: str = DEFAULT_SAMPLER, root: Path | None = None
                   ) -> PackData | None:
    """The finished pack for these models and settings, or None if it was never computed
    (or its file is damaged, or from another format version)."""
    return finished_pack(pack_cache(gen_hash, clip_hash, stats_samples,
                                    relevance_config or RelevanceConfig(), sampler, root))


def computed_pack_settings(gen_hash: str, clip_hash: str, sampler: str = DEFAULT_SAMPLER,
                           root: Path | None = None) -> list[tuple[int, RelevanceConfig]]:
    """(style statistics samples, relevance settings) of every finished pack of these
    models under `root`, newest first: a pack `atelier precompute` made with settings of
    its own (--layers, --k-sigma, ...) is found by them."""
    found = []
    for key in stored_keys(PACK_KIND, PACK_VERSION, root):
        if (key.get("generator"), key.get("clip"), key.get("sampler")) != \
                (gen_hash, clip_hash, sampler):
            continue
        try:
            rel, stats = key["relevance"], key["stats"]
            config = RelevanceConfig(
                n_images=int(rel["n_images"]), k_sigma=float(rel["k_sigma"]),
                layers=tuple(rel["layers"]) if rel.get("layers") else None,
                seed=int(rel["seed"]), psi=float(rel["psi"]))
            found.append((int(stats["n_samples"]), config))
        except (KeyError, TypeError, ValueError):  # a header of another shape
            continue
    return found


# --------------------------------------------------------------------------- partial state


def _partial_tensors(state: RelevanceState, gen: Generator) -> tuple[dict, dict]:
    specs = gen.style_specs
    tensors = {f"done.{specs[i].name}": v for i, v in state.done.items()}
    info: dict = {"done": [specs[i].name for i in sorted(state.done)], "current": None}
    cur = state.current
    if cur is not None and cur.layer not in state.done:
        tensors[f"acc.{specs[cur.layer].name}"] = cur.acc
        info["current"] = {"layer": specs[cur.layer].name, "images_done": cur.images_done,
                           "channels_done": cur.channels_done, "image_chunk": cur.image_chunk}
    return tensors, info


def _state_from_partial(got: tuple[dict, dict] | None, gen: Generator,
                        config: RelevanceConfig) -> RelevanceState:
    """The saved progress, keeping only layers of this run whose tensors and records look
    right. The checksum covers the tensors, not the JSON around them: every field read
    here is checked, and a record that does not fit these settings is dropped (its layer
    starts over), never trusted or raised on."""
    state = RelevanceState()
    if got is None:
        return state
    tensors, info = got
    specs = gen.style_specs
    wanted = set(selected_layers(specs, config.layers))
    index = {s.name: i for i, s in enumerate(specs)}
    dims = set()
    done = info.get("done")
    for name in done if isinstance(done, list) else []:
        i = index.get(name) if isinstance(name, str) else None
        t = tensors.get(f"done.{name}") if i in wanted else None
        if t is not None and t.ndim == 2 and t.shape[0] == specs[i].channels and _finite(t):
            state.done[i] = t.float()
            dims.add(t.shape[1])
    cur = _saved_layer(info.get("current"), tensors, index, wanted, gen, config.n_images)
    if cur is not None and cur.layer not in state.done:
        dims.add(cur.acc.shape[1])
        state.current = cur
    if len(dims) > 1:  # inconsistent embedding sizes: trust nothing
        return RelevanceState()
    return state


def _count(value: object, low: int, high: int) -> int | None:
    """`value` if it is an int in [low, high] (JSON true/false and floats are not)."""
    return value if type(value) is int and low <= value <= high else None


def _saved_layer(cur: object, tensors: dict[str, torch.Tensor], index: dict[str, int],
                 wanted: set[int], gen: Generator, n_images: int) -> LayerProgress | None:
    """The layer under way from its partial record, or None when any field is missing,
    of the wrong type, or cannot come from a run with these settings."""
    if not isinstance(cur, dict) or not isinstance(cur.get("layer"), str):
        return None
    i = index.get(cur["layer"])
    if i not in wanted:
        return None
    n_ch = gen.style_specs[i].channels
    acc = tensors.get(f"acc.{cur['layer']}")
    chunk = _count(cur.get("image_chunk"), 1, n_images)
    images = _count(cur.get("images_done"), 0, n_images - 1)
    channels = _count(cur.get("channels_done"), 0, n_ch - 1)
    if acc is None or chunk is None or images is None or channels is None:
        return None
    # Image chunks start at multiples of the chunk size, and a saved layer has summed
    # something: (0 images, 0 channels) is never written.
    if images % chunk or (images == 0 and channels == 0):
        return None
    if acc.ndim != 2 or acc.shape[0] != n_ch or not _finite(acc):
        return None
    return LayerProgress(i, acc.float(), images, channels, chunk)


class _PartialWriter:
    """Saves the relevance state when it changed: after a finished layer, every
    `every_s` seconds within a layer, and when forced (the job stopping). The partial's
    info also holds the pairs done, the job's seconds so far (`elapsed`) and this run's
    id: a partial another run wrote since this one started (two precomputes where the
    system has no locks) that is further along is not overwritten."""

    def __init__(self, entry: TensorCache, gen: Generator, state: RelevanceState,
                 every_s: float, config: RelevanceConfig, elapsed: Callable[[], float]):
        self.entry, self.gen, self.state, self.every_s = entry, gen, state, every_s
        self.config, self.elapsed = config, elapsed
        self.layers = selected_layers(gen.style_specs, config.layers)
        self.run = f"{os.getpid()}-{time.time_ns()}-{id(self)}"
        found = entry.read_partial_info()
        self.resumed_run = found.get("run") if found else None  # the partial taken over
        self.behind = False  # another run's partial was further along (warned once)
        # The state as last saved: its finished layers and its (immutable) current layer
        # object, held by reference so that `is` tells whether it was replaced since.
        self.saved_done = tuple(sorted(state.done))
        self.saved_current = state.current
        self.t_saved = time.monotonic()
        self.error: str | None = None  # the last failed save (progress then not kept)

    def maybe_save(self, force: bool = False) -> bool:
        done = tuple(sorted(self.state.done))
        current = self.state.current
        if done == self.saved_done and current is self.saved_current:
            return False
        if not (force or done != self.saved_done
                or time.monotonic() - self.t_saved >= self.every_s):
            return False
        pairs = units_done(self.state, self.gen.style_specs, self.layers,
                           self.config.n_images)
        if self._further_along_elsewhere(pairs):
            self.saved_done, self.saved_current = done, current
            self.t_saved = time.monotonic()
            return False
        tensors, info = _partial_tensors(self.state, self.gen)
        info.update(relevance=self.config.to_dict(), pairs_done=pairs, run=self.run,
                    seconds=round(self.elapsed(), 1))
        # A failed save does not stop the job (it is only for resuming); it is tried again
        # at the next finished layer or after `every_s`, as a successful one would be.
        # a full disk stays full: its warning once, not at every save of a long run
        self.error = try_save_checked(self.entry, tensors, info, "progress so far",
                                      partial=True, warn=self.error is None)
        self.saved_done, self.saved_current = done, current
        self.t_saved = time.monotonic()
        return self.error is None

    def _further_along_elsewhere(self, pairs: int) -> bool:
        """Whether the partial on disk was written by another run (not this one, nor the
        one this run resumed) and holds more pairs than `pairs`: a header read."""
        found = self.entry.read_partial_info()
        if found is None or found.get("run") in (self.run, self.resumed_run):
            return False
        theirs = _count(found.get("pairs_done"), 0, 2**62)
        if theirs is None or theirs <= pairs:
            return False
        if not self.behind:
            log.warning("%s: another run saved more progress (%d pairs against %d); it is "
                        "kept", self.entry.partial_path, theirs, pairs)
        self.behind = True
        return True


# --------------------------------------------------------------------------- the job


def is_cancelled(cancel: CancelToken) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _kept_note(saved: bool) -> str:
    """What a stopped job kept, for its Cancelled's message (the job's note)."""
    return "progress saved, run again to resume" if saved else "the progress could not be saved"


def relay(items: Job, report: Callable[[Progress], Progress] = lambda p: p):
    """A job's Progress passed on (through `report`); `yield from` gives its result, the
    last item that is not a Progress. A Cancelled thrown in where it waits (a job runner
    stopping it) is thrown on into `items`, as `yield from` would: the job that holds the
    work says what it kept."""
    result = None
    thrown: Cancelled | None = None
    while True:
        try:
            item = next(items) if thrown is None else items.throw(thrown)
        except StopIteration:
            return result
        thrown = None
        if not isinstance(item, Progress):
            result = item
            continue
        try:
            yield report(item)
        except Cancelled as e:
            thrown = e


def sampled_stats(gen: Generator, n: int, psi: float, sample_w: WSampler | None,
                  cancel: CancelToken, phases: JobPhases, seed: int = STATS_SEED
                  ) -> Job[Progress, None, StyleStats]:
    """Style statistics of n sampled codes, with progress on the phase "style statistics"
    and cancel; the generator's return value is the StyleStats."""
    stats = None
    for item in iter_style_stats(gen, n, STATS_BATCH, seed, psi, sample_w):
        if isinstance(item, StyleStats):
            stats = item
            continue
        yield phases.report("style statistics", item)
        if is_cancelled(cancel):
            raise Cancelled("cancelled while computing style statistics (they take a "
                            "moment and start over next time)")
    assert stats is not None
    return stats


def style_stats_job(generator: Generator, gen_hash: str, stats_samples: int, psi: float,
                    sample_w: WSampler | None, sampler: str, root: Path | None,
                    cancel: CancelToken, phases: JobPhases
                    ) -> Job[Progress, None, StyleStats]:
    """The style statistics from their cache, or computed (progress on the phase "style
    statistics") and cached; the generator's return value is the StyleStats."""
    stats = load_stats(gen_hash, stats_samples, sampler, root, psi=psi)
    if stats is not None:
        phases.skip("style statistics")
        return stats
    stats = yield from sampled_stats(generator, stats_samples, psi, sample_w, cancel, phases)
    if not _finite(stats.mean, stats.std):
        raise ValueError("the generator's style codes are not finite numbers (NaN or "
                         "infinity): its checkpoint or configuration is damaged")
    try_save_checked(stats_cache(gen_hash, stats_samples, sampler, root, psi=psi),
                     stats.to_dict(), {"generator": gen_hash, "sampler": sampler},
                     "style statistics")
    return stats


def pack_phases(gen: Generator, stats_samples: int, config: RelevanceConfig) -> JobPhases:
    """The precompute's phases for one whole-job progress; a caller that goes on with
    more work (the co-variation) adds its phase and passes them to precompute_pack."""
    return JobPhases({"style statistics": stats_samples * STATS_RENDERS,
                      "relevance": relevance_work(gen, config) * RELEVANCE_RENDERS},
                     guessed={"style statistics"})


class _Elapsed:
    """Seconds a job has run, the runs it resumed included (`before`, from the partial)."""

    def __init__(self) -> None:
        self.before = 0.0
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return self.before + time.monotonic() - self.t0


def precompute_pack(
    generator: Generator,
    clip: ImageTextEncoder,
    gen_hash: str,
    clip_hash: str,
    stats_samples: int = 10_000,
    relevance_config: RelevanceConfig | None = None,
    sample_w: WSampler | None = None,
    cancel: CancelToken = None,
    *,
    sampler: str | None = None,
    root: Path | None = None,
    save_every_s: float = 60.0,
    phases: JobPhases | None = None,
) -> Iterator[Progress | PackData]:
    """A job: yields Progress (done/total, message, eta_s), then the PackData.

    A finished pack in the cache is returned at once. Otherwise the style statistics come
    from their cache or are computed, then relevance runs, resuming from a saved partial.
    `cancel` (a threading.Event or a callable returning True) is checked after every step;
    the job then saves its progress and raises Cancelled. Ctrl-C, errors and dropping the
    job also save progress before the exception goes on. `sampler` names a custom
    `sample_w` for the cache keys (see sampler_name). Progress is of the whole job
    (`phases`, from pack_phases, possibly with the caller's later phases added).

    While it computes, the job holds the pack entry's lock: a second precompute of the
    same pack (another window or command) raises EntryBusy at once, naming the process
    at work. A relevance step that gives NaN or infinity (a k_sigma that overflows)
    raises NonFiniteRelevance at once and drops the saved progress."""
    config = relevance_config or RelevanceConfig()
    phases = phases or pack_phases(generator, stats_samples, config)
    sampler = sampler_name(sample_w, sampler)
    entry = pack_cache(gen_hash, clip_hash, stats_samples, config, sampler, root)
    cached = finished_pack(entry)
    if cached is None:
        elapsed = _Elapsed()
        with entry.lock("precompute"):
            # finished by another precompute between the look above and the lock
            cached = finished_pack(entry, warn=False)  # (said above)
            if cached is None:
                stats = yield from style_stats_job(generator, gen_hash, stats_samples,
                                                   config.psi, sample_w, sampler, root,
                                                   cancel, phases)
                relevance = yield from _relevance_job(generator, clip, stats, config,
                                                      sample_w, cancel, entry, save_every_s,
                                                      phases, elapsed)
                if not _finite(relevance.vectors):  # saved, it would be refused, redone
                    entry.partial_path.unlink(missing_ok=True)  # its progress holds the NaN
                    raise NonFiniteRelevance(
                        f"the relevance came out as NaN or infinity: the pictures or CLIP "
                        f"features overflowed (k_sigma {config.k_sigma:g})")
                # the time of every run that went into it (a resumed job's own time alone
                # said "in 19 s" for five minutes of work)
                info = {"generator": gen_hash, "clip": clip_hash,
                        "stats_samples": stats.n_samples, "sampler": sampler,
                        "relevance": config.to_dict(), "seconds": round(elapsed(), 1)}
                error = try_save_checked(entry, {**stats.to_dict(), **relevance.to_dict()},
                                         info, "model pack's global directions")
                computed = PackData(stats, relevance, entry.key, info, save_error=error)
    if cached is not None:
        cached.from_cache = True
        phases.skip("style statistics")
        phases.skip("relevance")
        yield phases.report("relevance", Progress(1, 1, "loaded from cache", 0.0))
        yield cached
        return
    yield computed


def finished_pack(entry: TensorCache, warn: bool = True) -> PackData | None:
    """The pack `entry` holds, where it holds a sound one (see load_checked)."""
    got = load_checked(entry, warn=warn)
    return _pack_from(got[0], got[1], entry.key) if got else None


def _relevance_job(gen: Generator, clip: ImageTextEncoder, stats: StyleStats,
                   config: RelevanceConfig, sample_w: WSampler | None, cancel: CancelToken,
                   entry: TensorCache, save_every_s: float, phases: JobPhases,
                   elapsed: _Elapsed | None = None) -> Job[Progress, None, Relevance]:
    elapsed = elapsed or _Elapsed()
    got = load_checked(entry, partial=True)
    state = _state_from_partial(got, gen, config)
    if got is not None and (state.done or state.current is not None):
        elapsed.before = _seconds(got[1].get("seconds"))
    writer = _PartialWriter(entry, gen, state, save_every_s, config, elapsed)
    relevance: Relevance | None = None

    def stopped(fraction: float) -> Cancelled:
        writer.maybe_save(force=True)
        return Cancelled(f"cancelled at {100 * fraction:.1f}%; "
                         + _kept_note(writer.error is None))

    try:
        for item in compute_relevance(gen, clip, stats, config, sample_w=sample_w, state=state):
            if isinstance(item, Relevance):
                relevance = item
                continue
            writer.maybe_save()
            try:
                yield phases.report("relevance", item)
            except Cancelled:  # a job runner's, thrown in here: say what was kept
                raise stopped(item.fraction) from None
            if is_cancelled(cancel):
                raise stopped(item.fraction)
    except NonFiniteRelevance:
        # Found at the step it happened, not after hours: these settings give it again at
        # the same step, so the progress saved so far is of no use.
        entry.partial_path.unlink(missing_ok=True)
        raise
    except BaseException:  # Ctrl-C, errors, the caller closing the job: keep the progress
        writer.maybe_save(force=True)  # a failing save (disk full) is logged, not raised
        raise
    assert relevance is not None
    return relevance


def _seconds(value: object) -> float:
    """A saved time in seconds, or 0 where it is not a sound one."""
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        return 0.0
    return float(value)


def partial_summary(gen: Generator, gen_hash: str, clip_hash: str, stats_samples: int,
                    config: RelevanceConfig, sampler: str = DEFAULT_SAMPLER,
                    root: Path | None = None) -> tuple[int, int] | None:
    """(finished, total) (channel, image) pairs of a saved partial run, or None."""
    entry = pack_cache(gen_hash, clip_hash, stats_samples, config, sampler, root)
    got = load_checked(entry, partial=True)
    if got is None:
        return None
    state = _state_from_partial(got, gen, config)
    specs = gen.style_specs
    layers = selected_layers(specs, config.layers)
    total = sum(specs[i].channels for i in layers) * config.n_images
    return units_done(state, specs, layers, config.n_images), total


# --------------------------------------------------------------------------- co-variation


def covariation_cache(gen_hash: str, clip_hash: str, n_samples: int, psi: float,
                      sampler: str = DEFAULT_SAMPLER, root: Path | None = None) -> TensorCache:
    key = {"generator": gen_hash, "clip": clip_hash, "n_samples": int(n_samples),
           "seed_base": COVARIATION_SEED_BASE, "psi": psi, "sampler": sampler}
    return TensorCache(COVARIATION_KIND, key, COVARIATION_VERSION, root)


def load_covariation(entry: TensorCache) -> Covariation | None:
    """The cached co-variation, or None (absent, damaged or from another version)."""
    got = load_checked(entry)
    if got is None:
        return None
    tensors, info = got
    cross, emb, std = (tensors.get(k) for k in ("cross", "embedding_cov", "style_std"))
    n = _count(info.get("n_samples"), 2, 2**62)
    if cross is None or emb is None or std is None or n is None or cross.ndim != 2:
        return None
    c, d = cross.shape
    if emb.shape != (d, d) or std.shape != (c,):
        return None
    cov = Covariation(cross.float(), emb.float(), std.float(), n)
    return cov if _finite(cov.cross, cov.embedding_cov, cov.style_std) else None


def covariation_job(gen: Generator, clip: ImageTextEncoder, entry: TensorCache,
                    n_samples: int = COVARIATION_SAMPLES, psi: float = 1.0,
                    sample_w: WSampler | None = None, cancel: CancelToken = None,
                    save_every_s: float = 60.0) -> Job[Progress | Covariation, None, None]:
    """Sample n images, measure the co-variation, write it (atomically) and yield it last.
    The sampling resumes after an interruption (about 30 minutes at 1024 px on a CPU);
    the finished entry replaces its progress. When it cannot be written, the co-variation
    still comes, with the reason in save_error.

    It holds the entry's lock while it works, as the pack's precompute does: a second
    window or command measuring the same co-variation raises EntryBusy at once, where both
    ran and overwrote each other's resume file."""
    with entry.lock("co-variation measurement"):
        cov = load_covariation(entry)  # measured by the one that held the lock before
        if cov is None:
            samples = yield from resumable_sampling(
                gen, clip, n_samples, COVARIATION_SEED_BASE, psi, sample_w, entry,
                cancel=cancel, save_every_s=save_every_s, what="co-variation")
            cov = covariation_of(gen, samples)
            cov.save_error = try_save_checked(
                entry, {"cross": cov.cross, "embedding_cov": cov.embedding_cov,
                        "style_std": cov.style_std}, {"n_samples": cov.n_samples},
                "co-variation")
    yield cov


# --------------------------------------------------------------------------- sampling


def resumable_sampling(gen: Generator, clip: ImageTextEncoder, n: int, seed_base: int,
                       psi: float, sampler: WSampler | None, entry: TensorCache,
                       batch_size: int | None = None, cancel: CancelToken = None,
                       save_every_s: float = 60.0, what: str = "sampling",
                       keep_whole: bool = False) -> Job[Progress, None, Samples]:
    """covariation.Sampling (Progress with time left; `yield from` gives the Samples),
    resumable through `entry`'s partial: the images drawn are saved there every
    `save_every_s`, when the job stops early (cancel, Ctrl-C, an error, the caller
    dropping it) and when they are all drawn (a stop in the caller's later steps keeps
    them), and the next run with the same settings goes on after them. Cancel is looked
    at after every batch (Cancelled). The caller's finished entry replaces the partial;
    with `keep_whole` the finished samples are that entry (saved once, not as a partial
    first)."""
    settings = {"n": n, "seed_base": seed_base, "psi": psi}
    start = _samples_from_partial(load_checked(entry, partial=True), settings, n, gen.w_dim)
    run = Sampling(gen, clip, n, seed_base, psi, sampler, batch_size, start)
    clock = EtaClock(run.done, n)
    saved = {"done": run.done, "at": time.monotonic(), "error": None}

    def save(finished: bool = False) -> None:
        whole = finished and keep_whole
        if run.done == saved["done"] and not whole:
            return
        drawn = run.drawn()
        # a failing save (disk full) does not stop the job: it only keeps a resume
        saved["error"] = try_save_checked(
            entry, {"w": drawn.w, "embeddings": drawn.embeddings},
            {"sampling": settings, "drawn": run.done},
            "sampled images" if whole else "progress so far", partial=not whole,
            warn=saved["error"] is None)
        saved.update(done=run.done, at=time.monotonic())

    def stopped(fraction: float) -> Cancelled:
        save()
        return Cancelled(f"{what} cancelled at {100 * fraction:.1f}%; "
                         + _kept_note(saved["error"] is None))

    try:
        for item in run:
            if isinstance(item, Samples):
                save(finished=True)
                return item
            if time.monotonic() - saved["at"] >= save_every_s:
                save()
            try:
                yield clock.progress(item.done, f"{what}: {item.done}/{n} images")
            except Cancelled:  # a job runner's, thrown in here: say what was kept
                raise stopped(item.fraction) from None
            if is_cancelled(cancel):
                raise stopped(item.fraction)
    except BaseException:  # Ctrl-C, errors, the caller closing the job: keep the samples
        save()
        raise
    raise AssertionError("Sampling ends with its Samples")


def stored_sampling(gen: Generator, clip: ImageTextEncoder, n: int, seed_base: int,
                    psi: float, sampler: WSampler | None, entry: TensorCache,
                    batch_size: int | None = None, cancel: CancelToken = None,
                    what: str = "sampling") -> Job[Progress, None, Samples]:
    """resumable_sampling whose finished samples stay in `entry` itself (not only until a
    caller's result replaces them), for every later job that samples the same images:
    they come from it at once. A save that fails leaves the samples for this job only.

    It holds the entry's lock while it samples, as the co-variation does: a second window
    or command sampling the same images raises EntryBusy at once, where both drew every
    image (an hour or more at 1024 px on a CPU) and overwrote each other's resume file."""
    kept = _whole_samples(entry, n, seed_base, psi, gen.w_dim)
    if kept is None:
        with entry.lock(what):
            kept = _whole_samples(entry, n, seed_base, psi, gen.w_dim, warn=False)
            if kept is None:  # (else drawn by the one that held the lock before)
                return (yield from resumable_sampling(
                    gen, clip, n, seed_base, psi, sampler, entry, batch_size, cancel,
                    what=what, keep_whole=True))
    yield Progress(n, n, f"{what}: {n}/{n} images, kept from an earlier run", 0.0)
    return kept


def _whole_samples(entry: TensorCache, n: int, seed_base: int, psi: float, w_dim: int,
                   warn: bool = True) -> Samples | None:
    """All n samples `entry` holds for these settings, else None."""
    settings = {"n": n, "seed_base": seed_base, "psi": psi}
    kept = _samples_from_partial(load_checked(entry, warn=warn), settings, n, w_dim)
    return kept if kept is not None and len(kept.w) == n else None


def _samples_from_partial(got: tuple[dict, dict] | None, settings: dict, n: int,
                          w_dim: int) -> Samples | None:
    """The samples an interrupted run saved, when they are whole and for these settings."""
    if got is None:
        return None
    tensors, info = got
    w, emb = tensors.get("w"), tensors.get("embeddings")
    if info.get("sampling") != json.loads(json.dumps(settings)) or w is None or emb is None:
        return None
    if w.ndim != 2 or emb.ndim != 2 or w.shape[1] != w_dim or len(w) != len(emb) \
            or not 0 < len(w) <= n or not _finite(w, emb):
        return None
    return Samples(w.float(), emb.float())
