"""Model packs: a generator, a CLIP model and what was precomputed for the pair.

The bundled demo pack (editor/resources/models/toyfaces) is the default. Opening a pack loads both
models; its global-direction data comes from the cache, or from the precompute job, which
callers run with progress and cancel (the CLI prints it, the GUI shows it in a job panel).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from editor.core import zoo
from editor.core.cache import TensorCache
from editor.core.clip_model import ClipModel
from editor.core.errors import AtelierError, ClipError
from editor.core.paths import DEMO_MODELS_DIR
from editor.methods import precompute as pc
from editor.methods import styleclip_files as sf
from editor.methods.covariation import Covariation
from editor.methods.global_directions import (
    Progress,
    RelevanceConfig,
    relevance_seconds,
    selected_layers,
)
from editor.toyfaces import captions

from .compose import EditingContext
from .editor_state import DEFAULT_NEUTRAL, EditDefaults
from .models import ModelInfo, load_model_info
from .session import ModelIdentity

DEMO_CLIP = DEMO_MODELS_DIR / "clip.safetensors"
# The demo pack's precomputed global directions ship with the program (same cache format),
# so a first start never waits for the precompute.
DEMO_DIRECTIONS = DEMO_MODELS_DIR / "directions"
# The demo pack's global directions: the paper's settings, on its 928 style channels.
DEMO_RELEVANCE = RelevanceConfig(n_images=100, k_sigma=5.0, psi=1.0)
DEMO_STATS_SAMPLES = 10_000
# How the demo pack's text edits start (see EditDefaults). Chosen with benchmarks/meaning.py
# on seeds of their own (3,000,000+, 100 per edit, all 34 edits): auto-β keeping 20
# channels had the most edits that reach their target with nothing else changed (v2: 47 %;
# β 0.15 passes ~400 of 928 channels and scored 12 %, β 0.3 30 %, auto-β 10/40/80 channels
# 46/45/36 %). On v3 α 3 does better than v2's α 4: 50.6 % against 47.9 % (α 2.5 48.1 %,
# 3.5 49.4 %), and 3 edits meet both goals against 0. Gating the channels by co-variation
# (editor.methods.covariation) then passes 6 edits against 3 on the same seeds: 97 % of the
# channels it moves are the edited attribute's own, against 34 %.
DEMO_EDIT_DEFAULTS = EditDefaults(alpha=3.0, beta=0.15, auto_beta=True, min_channels=20,
                                  gate=True)
# Target prompts offered for real face generators (StyleCLIP's kind of edits), worded as
# the neutral "face" is: a leading article on one side only is a difference CLIP sees.
GENERAL_PROMPTS = (
    "face with blonde hair", "face with black hair", "face with grey hair",
    "face with curly hair", "smiling face", "surprised face", "angry face",
    "face with glasses", "face with sunglasses", "face with a beard",
    "face with makeup", "face with lipstick", "bald face", "old face",
    "young face", "face with a hat",
)


@dataclass(frozen=True)
class ClipSource:
    """Where a CLIP model comes from: our/open_clip file, or an open_clip (arch, tag)."""

    path: str | None = None
    arch: str | None = None
    tag: str | None = None

    def describe(self) -> str:
        return self.path or f"{self.arch}/{self.tag}"


def demo_clip_source() -> ClipSource:
    return ClipSource(path=str(DEMO_CLIP))


# The CLIP that real StyleGAN2 generators are edited with (StyleCLIP's choice).
REFERENCE_CLIP = ClipSource(arch="ViT-B-32", tag="openai")


def default_clip_source(generator_path: str | Path) -> ClipSource:
    return demo_clip_source() if is_demo_generator(generator_path) else REFERENCE_CLIP


def _clip_arch(source: ClipSource, path: Path) -> str | None:
    """The architecture of a CLIP weights file: the one named, else, for an installed
    file, the one its import found."""
    return source.arch or zoo.installed_clip_arch(path)


def load_clip(source: ClipSource, device: str | torch.device = "cpu") -> ClipModel:
    if source.path:
        path = Path(source.path)
        if not path.is_file():
            raise ClipError(f"the CLIP model file {path} is missing")
        arch = None  # looked up once (the installed models' index is read for it)
        if path.suffix == ".safetensors":
            try:
                return ClipModel.load(path, device=device)
            except ClipError:  # not our format: try it as an open_clip checkpoint
                if not (arch := _clip_arch(source, path)):
                    raise
        return ClipModel.from_checkpoint(arch or _clip_arch(source, path), path, device=device)
    if not (source.arch and source.tag):
        raise ValueError("a CLIP source needs a file or an (architecture, tag) pair")
    return ClipModel.from_pretrained(source.arch, source.tag, device=device)


T = TypeVar("T")
IMPORTED = "imported "  # how a recipe names directions imported from a file: "imported fs3.npy"


@dataclass(frozen=True)
class RefusedImport:
    """The end of an import whose file does not agree with the pack's models: nothing was
    kept. The caller may ask the user and import again with force."""

    message: str
    kind: str  # MismatchError.kind: "channels" or "statistics"
    fs3_path: str
    stats_path: str | None


@dataclass
class OpenPack:
    model: ModelInfo
    clip: ClipModel | None  # None: the generator alone (sampling works, text edits do not)
    relevance_config: RelevanceConfig
    stats_samples: int
    data: pc.PackData | None = None
    covariation: Covariation | None = None  # for gated text edits
    bundled_root: Path | None = None  # read-only precomputed data shipped with the program
    clip_error: str | None = None  # why no CLIP is loaded, for the user
    clip_source: ClipSource | None = None  # where the CLIP came from, to open it again
    # the caller chose relevance_config and stats_samples: no pack made with other
    # settings stands in for theirs
    settings_given: bool = False
    # the CLIP is on its way (open_pack(defer_clip=True)): not "no CLIP", whose clip_error
    # says why; with_clip() brings it
    clip_pending: bool = False

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def title(self) -> str:
        """The pack as a job names it: the generator, and its CLIP where that is not the
        generator's usual one (each CLIP has its own directions: two CLIPs' precomputes of
        one generator were two jobs of the same name)."""
        if self.clip is None or self._on_usual_clip():
            return self.name
        return f"{self.name} with {self.clip.name}"

    def _on_usual_clip(self) -> bool:
        """Whether the pack's CLIP is its generator's usual one (default_clip_source)."""
        source, usual = self.clip_source, default_clip_source(self.model.path)
        if source == usual:
            return True
        if source is None or not source.path:
            return False
        # the usual weights picked by their file (Models ▸ Model packs lists the zoo's
        # ViT-B-32/openai by its path): the same CLIP, not another
        try:
            usual_file = usual.path or zoo.installed_clip_weights(usual.arch, usual.tag)
            return usual_file is not None and \
                Path(source.path).resolve() == Path(usual_file).resolve()
        except (AtelierError, OSError, RuntimeError):  # an unreadable index, a link loop
            return False

    @property
    def has_directions(self) -> bool:
        return self.data is not None

    @property
    def edit_defaults(self) -> EditDefaults:
        return DEMO_EDIT_DEFAULTS if self.is_demo else EditDefaults()

    @property
    def sampler(self) -> str | None:
        return self.model.sampler

    def sample_w(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Seeds -> W+ with the generator's own sampler (None for Gaussian z)."""
        z_for_seed = self.model.z_for_seed
        if z_for_seed is None:
            return None
        gen = self.model.generator

        def sample(seeds: torch.Tensor) -> torch.Tensor:
            z = torch.cat([z_for_seed(int(s)) for s in seeds]).to(gen.w_avg.device)
            return gen.mapping(z, psi=1.0)

        return sample

    def cached_data(self) -> pc.PackData | None:
        if self.clip is None:
            return None
        clip_hash = self.clip.content_hash
        gen_hash = self.model.content_hash
        # the usual pack first, as at opening: a quick try's found then (the settings now
        # held) hid the usual one computed since
        samples, config = ((self.stats_samples, self.relevance_config) if self.settings_given
                           else self.default_settings())
        found = find_computed_pack(self.cache_roots, gen_hash, clip_hash,
                                   self.sampler or pc.DEFAULT_SAMPLER, samples, config,
                                   others=not self.settings_given)
        if found is not None:  # its settings are the pack's (the co-variation's ψ, say)
            data, self.stats_samples, self.relevance_config = found
        else:  # StyleCLIP's own precompute, imported (atelier import-styleclip)
            data = self.first_cached(
                lambda root: pc.load_imported_pack(gen_hash, clip_hash, root))
        # set once, never None meanwhile: the window reads it while the render thread
        # rereads (reread, after every precompute job)
        self.data = data
        self.covariation = self.first_cached(
            lambda root: pc.load_covariation(self.covariation_entry(root)))
        return self.data

    def reread(self) -> None:
        """Read the cached data again, after a precompute: it may have run on another
        OpenPack of these models (this one was opened again meanwhile, on another device
        say), whose results reach this one only through the cache. What this one holds
        that could not be saved (a full disk) is kept: it is nowhere else."""
        if not any(getattr(held, "save_error", None) for held in (self.data, self.covariation)):
            self.cached_data()

    def with_clip(self, device: str | torch.device = "cpu", require_clip: bool = True
                  ) -> OpenPack:
        """This pack with its CLIP (or, with require_clip=False, clip_error saying why
        there is none) and the directions cached for the two. A new pack: the window reads
        the one it has while the render thread loads."""
        clip, clip_error = None, None
        if self.clip_source is not None:
            try:
                clip = load_clip(self.clip_source, device)
            except (ClipError, OSError, ValueError) as e:
                if require_clip:
                    raise
                clip_error = str(e)
        else:
            clip_error = "no CLIP model was chosen for this generator"
        pack = dataclasses.replace(self, clip=clip, clip_error=clip_error, clip_pending=False)
        pack.cached_data()
        return pack

    def default_settings(self) -> tuple[int, RelevanceConfig]:
        """(style statistics samples, relevance settings) of this generator's usual pack:
        what the window precomputes and the cache is searched for first."""
        return DEMO_STATS_SAMPLES, default_relevance_config(self.model.path)

    def other_settings(self) -> str | None:
        """Where the global directions open were computed with other than the default
        settings (found because none with the defaults exists: `atelier precompute
        --layers convs.15 --n-images 2`, a quick try), those settings as the command's
        options; None where they are the defaults', imported, or the settings asked for."""
        data = self.data
        if data is None or data.imported_from or self.settings_given:
            return None
        default_samples, default = self.default_settings()
        used = self.relevance_config
        specs = self.model.generator.style_specs
        flags = []
        try:
            other_layers = (sorted(selected_layers(specs, used.layers))
                            != sorted(selected_layers(specs, default.layers)))
        except ValueError:  # layers this generator does not have: the pack says otherwise
            other_layers = True
        if other_layers:
            flags.append("--layers " + " ".join(used.layers or ()))
        if used.n_images != default.n_images:
            flags.append(f"--n-images {used.n_images}")
        if used.k_sigma != default.k_sigma:
            flags.append(f"--k-sigma {used.k_sigma:g}")
        if used.seed != default.seed:
            flags.append(f"--seed {used.seed}")
        if used.psi != default.psi:
            flags.append(f"--psi {used.psi:g}")
        if self.stats_samples != default_samples:
            flags.append(f"--stats-samples {self.stats_samples}")
        return " ".join(flags) or None

    def settings_note(self) -> str | None:
        """other_settings in a sentence with the channels they cover, e.g. "global
        directions from a pack computed with --layers convs.15 --n-images 2 (32 of 6048
        style channels), not with the default settings"; None where other_settings is."""
        flags = self.other_settings()
        if flags is None or self.data is None:
            return None
        total = sum(s.channels for s in self.model.generator.style_specs if not s.is_torgb)
        return (f"global directions from a pack computed with {flags} "
                f"({len(self.data.relevance.channels)} of {total} style channels), not "
                "with the default settings")

    @property
    def cache_roots(self) -> list[Path | None]:
        """Where precomputed data is looked for: what ships with the program first, then
        the user's cache (None)."""
        return ([self.bundled_root] if self.bundled_root is not None else []) + [None]

    def first_cached(self, load: Callable[[Path | None], T | None]) -> T | None:
        """The first thing `load` finds under cache_roots, or None."""
        return _first_found(self.cache_roots, load)

    def covariation_entry(self, root: Path | None = None) -> TensorCache:
        assert self.clip is not None
        return pc.covariation_cache(self.model.content_hash, self.clip.content_hash,
                                    pc.COVARIATION_SAMPLES, self.relevance_config.psi,
                                    self.sampler or pc.DEFAULT_SAMPLER, root)

    def covariation_job(self, cancel=None, root: Path | None = None
                        ) -> Iterator[Progress | Covariation]:
        """Measure the co-variation gated text edits need (a minute or less on a CPU for
        the demo pack); the final item is the Covariation."""
        if self.clip is None:
            raise ClipError("gated text edits need a CLIP model"
                            + (f": {self.clip_error}" if self.clip_error else ""))
        # relayed: a job runner's cancel reaches the sampling, which says what it kept
        self.covariation = yield from pc.relay(pc.covariation_job(
            self.model.generator, self.clip, self.covariation_entry(root),
            psi=self.relevance_config.psi, sample_w=self.sample_w(), cancel=cancel))
        yield self.covariation

    def precompute_seconds(self, render_s: float) -> float | None:
        """A first guess of the precompute's time, from one picture's `render_s` on the
        pack's device (its relevance: the rest is a small share); None without a CLIP."""
        if self.clip is None:
            return None
        return relevance_seconds(self.model.generator, self.clip, self.relevance_config,
                                 render_s)

    def precompute(self, cancel=None, with_defaults: bool = False
                   ) -> Iterator[Progress | pc.PackData]:
        """The precompute job (resumable); the final item is the PackData. With
        `with_defaults`, the default settings' pack in place of the one open (made with
        other settings: see other_settings), which is used until this one is done."""
        if self.clip is None:
            raise ClipError("precomputing directions needs a CLIP model"
                            + (f": {self.clip_error}" if self.clip_error else ""))
        stats_samples, config = (self.default_settings() if with_defaults
                                 else (self.stats_samples, self.relevance_config))
        covariation = self.covariation
        if covariation is not None and self.relevance_config.psi != config.psi:
            covariation = None  # measured at the open pack's ψ: this one's is measured
        # One progress for the whole job, co-variation included: its time left is known
        # from the start, at the rate the relevance phase measures.
        phases = pc.pack_phases(self.model.generator, stats_samples, config)
        if covariation is None:
            phases.add("co-variation", pc.COVARIATION_SAMPLES)
        # relayed: a job runner's cancel reaches the phase at work, which saves its progress
        # and says so; the PackData is held back while the co-variation is measured
        data = yield from pc.relay(pc.precompute_pack(
            self.model.generator, self.clip, self.model.content_hash,
            self.clip.content_hash, stats_samples, config,
            sample_w=self.sample_w(), cancel=cancel, sampler=self.sampler, phases=phases))
        assert isinstance(data, pc.PackData)
        self.data, self.stats_samples, self.relevance_config = data, stats_samples, config
        self.covariation = covariation
        if self.covariation is None:
            yield from pc.relay(self.covariation_job(cancel),
                                lambda p: phases.report("co-variation", p))
            if self.covariation is not None and self.covariation.save_error:
                # One place for the caller to read: the job's result says what was not kept.
                data.save_error = "; ".join(
                    e for e in (data.save_error, self.covariation.save_error) if e)
        yield data

    def import_styleclip(self, fs3_path: str | Path, stats_path: str | Path | None = None,
                         *, force: bool = False, cancel=None
                         ) -> Iterator[Progress | pc.PackData | RefusedImport]:
        """Import StyleCLIP's fs3.npy (and S_mean_std, given or beside it) as this pack's
        directions where none were computed here: Progress, then the PackData, or a
        RefusedImport where the file does not match these models."""
        if self.clip is None:
            raise ClipError("importing directions needs the CLIP model they were made with"
                            + (f": {self.clip_error}" if self.clip_error else ""))
        stats_path = stats_path or sf.companion_stats(fs3_path)
        try:
            for item in sf.import_styleclip_pack(
                    self.model.generator, self.clip, self.model.content_hash,
                    self.clip.content_hash, fs3_path, stats_path,
                    clip_dims=self.clip.embed_dim, stats_samples=self.stats_samples,
                    psi=self.relevance_config.psi, sample_w=self.sample_w(),
                    sampler=self.sampler, cancel=cancel, force=force):
                if isinstance(item, pc.PackData) and (
                        self.data is None or self.data.imported_from):
                    self.data = item
                yield item
        except sf.MismatchError as e:
            yield RefusedImport(str(e), e.kind, str(fs3_path),
                                None if stats_path is None else str(stats_path))

    def context(self) -> EditingContext:
        return EditingContext(
            self.model.generator, self.clip,
            self.data.stats if self.data else None,
            self.data.relevance if self.data else None,
            z_for_seed=self.model.z_for_seed,
            covariation=self.covariation,
            generator_hash=self.model.content_hash,
            known_words=self.clip_vocabulary(),
        )

    def clip_vocabulary(self) -> frozenset[str] | None:
        """Every word the pack's CLIP learned, where that is a closed set: the demo CLIP saw
        only the demo world's captions, so any other word in a prompt moves the edit in a
        direction nobody chose. None (any word) for other CLIP models."""
        source = self.clip_source
        if self.clip is None or source is None or source.path is None:
            return None
        if Path(source.path).resolve() != DEMO_CLIP.resolve():
            return None
        return frozenset(captions.vocabulary(content_only=False)) | set(captions.JOINING_MARKS)

    @property
    def is_demo(self) -> bool:
        return is_demo_generator(self.model.path)

    def neutral_prompt(self) -> str:
        """What an unedited image of this pack is, in words: the neutral prompt to offer."""
        return captions.style_prompt("normal") if self.is_demo else DEFAULT_NEUTRAL

    def suggestions(self) -> list[str]:
        """Target prompts to offer: for the demo pack, the phrases its CLIP was trained on."""
        if self.is_demo:
            return [e.target for e in captions.edit_prompts()]
        return list(GENERAL_PROMPTS)

    def identities(self) -> tuple[ModelIdentity, ModelIdentity | None, ModelIdentity | None]:
        """The generator, the CLIP and the global directions, as a recipe records them."""
        clip = (ModelIdentity(self.clip.name, self.clip.content_hash, "")
                if self.clip is not None else None)
        data = self.data
        directions = None if data is None else ModelIdentity(
            f"{IMPORTED}{data.imported_from}" if data.imported_from else "computed", data.key)
        return (ModelIdentity(self.model.name, self.model.content_hash, self.model.path), clip,
                directions)


def same_generator(a: OpenPack | None, b: OpenPack | None) -> bool:
    """Whether two packs draw with the same generator weights (a model opened again is a
    new pack object)."""
    return a is not None and b is not None and (
        a is b or a.model.content_hash == b.model.content_hash)


def same_pack(a: OpenPack | None, b: OpenPack | None) -> bool:
    """The same generator and the same CLIP weights (or neither has a CLIP)."""
    if not same_generator(a, b):
        return False
    clips = [None if p.clip is None else p.clip.content_hash for p in (a, b)]
    return clips[0] == clips[1]


def is_demo_generator(path: str | Path) -> bool:
    return Path(path).resolve().parent == DEMO_MODELS_DIR.resolve()


def default_relevance_config(generator_path: str | Path) -> RelevanceConfig:
    """The precompute settings a generator's pack is opened with (and cached under)."""
    return DEMO_RELEVANCE if is_demo_generator(generator_path) else RelevanceConfig()


def computed_pack(generator_path: str | Path, gen_hash: str, clip_hash: str,
                  sampler: str | None = None) -> pc.PackData | None:
    """The pack computed here that the window and `atelier edit` open for these models (the
    bundled one for the demo), or None. It is preferred to an imported one."""
    roots = ([DEMO_DIRECTIONS] if is_demo_generator(generator_path) else []) + [None]
    found = find_computed_pack(roots, gen_hash, clip_hash, sampler or pc.DEFAULT_SAMPLER,
                               DEMO_STATS_SAMPLES, default_relevance_config(generator_path))
    return found[0] if found is not None else None


def find_computed_pack(roots: list[Path | None], gen_hash: str, clip_hash: str, sampler: str,
                       stats_samples: int, config: RelevanceConfig, others: bool = True
                       ) -> tuple[pc.PackData, int, RelevanceConfig] | None:
    """The pack computed for these models with these settings, else (with `others`) the
    newest computed with settings of its own (`atelier precompute --layers conv1`, hours
    of work the window would otherwise never use); with the settings it was made with."""
    def with_settings(root: Path | None, n: int, cfg: RelevanceConfig):
        data = pc.load_pack_data(gen_hash, clip_hash, n, cfg, sampler, root)
        return (data, n, cfg) if data is not None else None

    found = _first_found(roots, lambda root: with_settings(root, stats_samples, config))
    if found is None and others:
        found = _first_found(roots, lambda root: _first_found(
            pc.computed_pack_settings(gen_hash, clip_hash, sampler, root),
            lambda settings: with_settings(root, *settings)))
    return found


def _first_found(candidates: list, load: Callable[..., T | None]) -> T | None:
    """The first thing `load` finds, trying these in order (cache roots: None is the user
    cache)."""
    for candidate in candidates:
        got = load(candidate)
        if got is not None:
            return got
    return None


def open_pack(generator_path: str | Path, clip_source: ClipSource | None,
              device: str | torch.device = "cpu",
              relevance_config: RelevanceConfig | None = None,
              stats_samples: int | None = None, require_clip: bool = True,
              defer_clip: bool = False) -> OpenPack:
    """Load a generator and its CLIP. With require_clip=False a CLIP that cannot be loaded
    (not downloaded, damaged) leaves a pack without text edits and says why in clip_error,
    instead of refusing the generator too. With defer_clip=True only the generator is
    loaded (clip_pending): the window draws with it while with_clip() loads the CLIP."""
    demo = is_demo_generator(generator_path)
    pack = OpenPack(load_model_info(generator_path, device),
                    None, relevance_config or default_relevance_config(generator_path),
                    stats_samples or DEMO_STATS_SAMPLES,
                    bundled_root=DEMO_DIRECTIONS if demo else None,
                    clip_source=clip_source,
                    settings_given=relevance_config is not None or stats_samples is not None,
                    clip_pending=True)
    return pack if defer_clip else pack.with_clip(device, require_clip)
