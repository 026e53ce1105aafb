"""`atelier edit` at work: the session its options describe (or a recipe's), rendered and
written with its recipe. Its options and help are in `edit_args`, which `atelier edit
--help` reads without loading torch."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from editor.core.devices import pick_device
from editor.core.errors import (
    AtelierError,
    ClipError,
    ImageExistsError,
    is_out_of_memory,
    out_of_memory_text,
    shortened,
)
from editor.core.image_io import check_export_path, looks_like_image, read_recipe
from editor.engine.compose import (
    EditError,
    ManyLatentsError,
    check_made_for,
    wplus_file_source,
    wplus_of_source,
)
from editor.engine.editor_state import DEFAULT_NEUTRAL, EditDefaults, replayed_session
from editor.engine.export import (
    recorded_output,
    recorded_platform,
    recorded_quality,
    save_render,
    without_failing_edits,
)
from editor.engine.export_formats import DEFAULT_QUALITY, LOSSY_FORMATS, format_from_suffix
from editor.engine.models import DEMO_GENERATOR, local_generator
from editor.engine.packs import (
    IMPORTED,
    default_clip_source,
    default_relevance_config,
    open_pack,
)
from editor.engine.renderer import (
    platform_differences,
    rendering_platform,
    to_uint8_image,
)
from editor.engine.session import (
    Edit,
    ModelIdentity,
    RecipeError,
    Session,
    Source,
    load_recipe,
    parse_recipe,
)
from editor.methods.global_directions import NoChannelsError, Progress

from .edit_args import SOURCE_OPTIONS
from .failures import failure_line
from .model_options import clip_source
from .outputs import StatusLine, check_outputs, format_eta, shown, warnings_prefixed


def check_options(args: argparse.Namespace) -> None:
    """Refuse combinations that would be silently ignored."""
    if args.recipe:
        given = [f"--{name.replace('_', '-')}" for name in SOURCE_OPTIONS
                 if getattr(args, name) is not None]
        given += ["edit options (--target, --alpha, ...)"] if args.edits else []
        if given:
            raise RecipeError(f"--recipe replays a whole recipe; it cannot be combined with "
                              f"{', '.join(given)}")
    if args.wplus and args.seed is not None:
        raise RecipeError("start from --seed or from --wplus, not both")
    if args.wplus and args.psi is not None:
        raise RecipeError("--psi truncates a seed's latent; a --wplus latent is used as it is")
    if args.wplus_index is not None and not args.wplus:
        raise RecipeError("--wplus-index picks a latent of a --wplus file; no --wplus given")
    if args.quality is not None and format_from_suffix(args.output) not in LOSSY_FORMATS:
        raise RecipeError(f"--quality applies to JPEG and WebP outputs (.jpg, .webp), not "
                          f"to {Path(args.output).name}")
    for spec in args.edits or []:
        if "target" not in spec and "neutral" in spec:
            raise RecipeError(f"--neutral {spec['neutral']!r} has no --target after it; "
                              "write each edit as --neutral N --target T")
        if "target" not in spec:
            raise RecipeError("each edit needs a --target (what the image should become)")
        if "beta" in spec and "auto_beta" in spec:
            raise RecipeError("an edit takes --beta or --auto-beta, not both")
        if "gate" in spec and "no_gate" in spec:
            raise RecipeError("an edit takes --gate or --no-gate, not both")


def read_recipe_file(path: Path) -> dict:
    """The recipe a file holds: a .json recipe (whatever its name: a recipe pasted into
    'recipe.txt') or an image that carries one."""
    try:
        if path.suffix.lower() == ".json" or _starts_like_json(path):
            return load_recipe(path)
        text = read_recipe(path)
    except OSError as e:
        raise RecipeError(f"cannot read {path}: {e}") from e
    if text is None:
        raise RecipeError(f"{path.name} carries no Latent Atelier recipe")
    return parse_recipe(text)


def _starts_like_json(path: Path) -> bool:
    """Whether the file's first non-blank character opens a JSON object (no image does)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:  # missing, a folder: the image reader says so in its words
        return False
    return head.startswith(b"{")


def output_settings(args: argparse.Namespace, recipe: dict | None) -> tuple[int, str, int]:
    """(scale, upscale filter, quality): the options where given, else what the replayed
    file's recipe records, so that replaying an upscaled or lossy export writes the same
    pixels."""
    recipe = recipe or {}
    # what the options give is not read from the recipe (a value this version does not
    # take, from a newer one, is then no obstacle), nor a quality for a lossless output;
    # a setting this version does not know at all is refused whatever is given (it may
    # change the pixels: export.OUTPUT_SETTINGS)
    scale, upscale_filter = recorded_output(recipe, args.scale, args.upscale_filter)
    lossy = format_from_suffix(args.output) in LOSSY_FORMATS
    quality = args.quality or (recorded_quality(recipe) if lossy else None) or DEFAULT_QUALITY
    if args.upscale_filter and scale == 1:
        raise RecipeError("--upscale-filter applies when the picture is enlarged (--scale 2 "
                          "or more)")
    return scale, upscale_filter, quality


def build_session(args: argparse.Namespace, default_psi: float,
                  defaults: EditDefaults | None = None,
                  wplus_source: Callable[[str], Source] | None = None,
                  recipe: dict | None = None, neutral: str = DEFAULT_NEUTRAL) -> Session:
    """The session the options describe. `wplus_source(path)` reads a --wplus file into
    a source that carries its latent (default: a source naming the file only); `recipe`
    is --recipe's content when the caller has read it already; `neutral` is an edit's
    neutral prompt when it names none (the pack's, as the window offers it)."""
    defaults = defaults or EditDefaults()
    if args.recipe:
        session = replayed_session(recipe if recipe is not None
                                   else read_recipe_file(Path(args.recipe)))
        # a latent it names by a relative path is beside it, as the window reads it
        source = session.source.found_in(Path(args.recipe).parent)
        if source.latent_file is not None and not Path(source.latent_file).exists():
            # where it was looked for, as the window says it: "could not read the latent
            # file face.npy" sent the user to the face.npy in the folder they were in
            raise RecipeError(f"{shown(Path(args.recipe).name)} starts from the latent file "
                              f"{shown(source.latent_file)}, which is not there (moved or "
                              "deleted?)")
        if source.latent_file is not None and wplus_source is not None:
            # carried in the output's recipe, as --wplus does: it replays that picture
            # after the file has changed or gone
            source = replace(source, wplus_data=wplus_source(source.latent_file).wplus_data)
        return session.with_source(source)
    psi = default_psi if args.psi is None else args.psi
    if args.wplus:
        source = (wplus_source(args.wplus) if wplus_source is not None
                  else Source(kind="wplus", wplus_path=args.wplus))
    else:
        source = Source(seed=args.seed or 0, psi=psi)
    session = Session(source=source)
    for spec in args.edits or []:  # each with its target (check_options)
        params = {"neutral": spec.get("neutral", neutral), "target": spec["target"]}
        if "beta" in spec:
            params["beta"] = spec["beta"]
        else:  # the pack's β setting, or its auto-β when asked for
            params.update(replace(defaults, auto_beta=defaults.auto_beta or "auto_beta" in spec)
                          .beta_params())
        params.pop("gate", None)
        if "gate" in spec or (defaults.gate and "no_gate" not in spec):
            params["gate"] = True
        session = session.add_edit(Edit("global", params,
                                        strength=spec.get("alpha", defaults.alpha)))
    return session


def wplus_source(path: str, latent_shape: tuple[int, int], index: int | None) -> Source:
    """--wplus: a saved latent, or a picture whose recipe carries one (what `atelier
    invert` writes: its recipe's source is the latent it found)."""
    if not looks_like_image(path):
        return wplus_file_source(path, *latent_shape, index)
    name = Path(path).name
    if index is not None:
        raise RecipeError(f"--wplus-index picks a latent of a file of several; {name} is a "
                          "picture, which carries one at most")
    text = read_recipe(path)
    if text is None:
        raise RecipeError(f"{name} is a picture, not a saved latent: invert it first "
                          f"(atelier invert {shlex.quote(path)} -o inverted.png), then "
                          "use --wplus inverted.png")
    latent = Session.from_json(text).source.wplus_data
    if not latent:
        raise RecipeError(f"{name}'s recipe starts from a seed, not a W+ latent: replay it "
                          f"with --recipe {shlex.quote(path)}")
    return Source(kind="wplus", wplus_path=path, label=name, wplus_data=latent)


def _print_progress(line: StatusLine, item: Progress) -> None:
    fraction = item.done / max(item.total, 1)
    eta = getattr(item, "eta_s", None)
    eta_text = f" {format_eta(eta)}" if eta is not None else ""
    # room for "step 2 of 3: relevance: layer convs.10 (12/26)"
    line.progress(f"precompute {100 * fraction:5.1f}% {item.message[:56]:56s}{eta_text}",
                  fraction)


class PackJobInterrupted(KeyboardInterrupt):
    """Ctrl-C during the precompute (its progress is kept and resumes)."""


def _run_job(message: str, job: Iterable, resumable: bool = False) -> None:
    """Say what a pack job is for, then run it with a progress line on stderr."""
    print(message, file=sys.stderr)
    line = StatusLine()
    try:
        for item in job:
            if isinstance(item, Progress):
                _print_progress(line, item)
    except KeyboardInterrupt:
        if resumable:
            raise PackJobInterrupted from None
        raise
    except (MemoryError, RuntimeError) as e:
        if resumable and is_out_of_memory(e):  # hours of work on FFHQ: say it is not lost
            raise AtelierError(f"{out_of_memory_text(e)}; the precompute's progress is "
                               "saved, and the next run goes on from it") from e
        raise
    finally:
        line.close()


@warnings_prefixed("atelier edit")
def run(args: argparse.Namespace) -> int:
    settings = None  # how the pack's global directions were computed, where not as usual
    try:
        check_options(args)
        recipe = read_recipe_file(Path(args.recipe)) if args.recipe else None
        scale, upscale_filter, quality = output_settings(args, recipe)
        # the output is checked before any long work (a first precompute takes minutes)
        check_export_path(args.output, args.overwrite)
        check_outputs([Path(args.output)], args.overwrite)  # read-only place, bad name
        # a replay draws with the generator its recipe names where that file is here
        generator = args.generator or _recorded_generator(recipe) or str(DEMO_GENERATOR)
        # Only text edits need a CLIP: without one named, a render without them goes on
        # when the generator's usual CLIP is not on this machine.
        pack = open_pack(generator, clip_source(args, generator),
                         device=str(pick_device(args.device)),
                         # only the count changes: the pack's own settings (and cache
                         # entry) otherwise, as `atelier precompute` and the window use
                         relevance_config=replace(default_relevance_config(generator),
                                                  n_images=args.precompute_images)
                         if args.precompute_images else None,
                         stats_samples=args.stats_samples,
                         require_clip=bool(args.clip_file or args.clip_arch))
        gen = pack.model.generator
        session = build_session(args, pack.model.seed_psi, pack.edit_defaults,
                                lambda path: wplus_source(path, (gen.n_latent, gen.w_dim),
                                                          args.wplus_index),
                                recipe, pack.neutral_prompt())
        if pack.clip is None and session.has_text_edits:
            error = str(pack.clip_error)
            if hint := _recorded_clip_hint(args, session, generator):
                error = error.rstrip(".") + hint
            raise ClipError(f"text edits need a CLIP model: {error}")
        # model mismatches are told before the pack jobs, which can take hours; so is a
        # recipe's latent made for another generator (its shape)
        recorded = session
        if args.recipe and session.noise_mode == "random":
            print("warning: the recipe draws random noise: each render of it differs, so "
                  "this is not the recorded picture", file=sys.stderr)
        gen_id, clip_id, _ = pack.identities()
        if recipe is not None and not args.generator:
            _refuse_missing_generator(recorded.generator, gen_id)
        session = _with_models(session, gen_id, clip_id, replaying=bool(args.recipe))
        _check_made_for(session, recorded.generator, gen_id, (gen.n_latent, gen.w_dim))
        if session.has_text_edits and pack.data is None:
            _refuse_missing_import(recorded, gen_id, clip_id)
            _run_job("First use of this model pack: computing its global directions (once; "
                     "the result is cached and resumes if interrupted).", pack.precompute(),
                     resumable=True)
        if (any(e.kind == "global" and e.params.get("gate") for e in session.active_edits)
                and pack.covariation is None):
            _run_job("Gated text edits: measuring how this pack's style channels vary with "
                     "CLIP (once; cached).", pack.covariation_job(), resumable=True)
        if session.has_text_edits and (settings := pack.settings_note()):
            # (a pack made for a quick try covers few channels: edits may find none)
            print(f"note: the text edits use {settings}", file=sys.stderr)
        session = _with_directions(session, recorded, pack.identities(),
                                   replaying=bool(args.recipe))
        context = pack.context()
        if args.recipe:  # the picture the window shows for it: what cannot apply is left out
            session, left_out = without_failing_edits(context, session)
            for why in left_out:
                print(f"warning: left out (it cannot be applied): {why}", file=sys.stderr)
        for edit, notes in context.prompt_warnings(session):
            for note in notes:  # as the window says under the prompt
                print(f"warning: {shortened(edit.title, 60)}: {note}", file=sys.stderr)
        t0 = time.perf_counter()
        try:
            image = to_uint8_image(context.render(session))
        except FloatingPointError as e:
            raise EditError(f"{e}: the strengths or ψ are too large for this generator") \
                from e
        elapsed = time.perf_counter() - t0
        platform = rendering_platform(context.device)
        saved = save_render(args.output, image, session, quality=quality, scale=scale,
                            overwrite=args.overwrite, upscale_filter=upscale_filter,
                            platform=platform)
        if recipe is not None and (differ := platform_differences(recorded_platform(recipe),
                                                                   platform)):
            print(f"note: the recipe's picture was drawn elsewhere ({'; '.join(differ)}): "
                  "this one may differ from it slightly", file=sys.stderr)
    except ImageExistsError:  # the export's own advice names the window's choice
        print(f"atelier edit: {shown(args.output)} exists; pass --overwrite to replace it",
              file=sys.stderr)
        return 1
    except (AtelierError, EditError, RecipeError, FileNotFoundError) as e:
        hint = (" with --wplus-index" if isinstance(e, ManyLatentsError)
                else f" (the text edits use {settings})"
                if settings and isinstance(e.__cause__, NoChannelsError) else "")
        print(f"atelier edit: {e}{hint}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:  # out of memory: one line; a bug: its traceback
        print(f"atelier edit: {failure_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print("\ninterrupted; nothing was written" + (
            " (the precompute resumes where it stopped next time)"
            if isinstance(e, PackJobInterrupted) else ""), file=sys.stderr)
        return 130
    print(f"wrote {shown(saved.path)} ({saved.size[0]}x{saved.size[1]}, rendered in "
          f"{elapsed * 1000:.0f} ms)")
    if not saved.recipe_embedded:
        print(f"warning: the recipe is too large for a {saved.format} file's metadata and was "
              "left out; this image cannot be replayed with --recipe", file=sys.stderr)
    return 0


def _with_models(session: Session, gen_id: ModelIdentity, clip_id: ModelIdentity | None,
                 replaying: bool) -> Session:
    """Record the models used; warn when replaying a recipe made with other models."""
    for kind, recorded, used in session.model_mismatches(gen_id, clip_id) if replaying else []:
        print(f"warning: the recipe was made with {kind} {recorded.name} "
              f"({recorded.content_hash[:12]}); rendering with {used.name} "
              f"({used.content_hash[:12]})", file=sys.stderr)
    return replace(session, generator=gen_id, clip=clip_id)


def _recorded_clip_hint(args: argparse.Namespace, session: Session, generator: str) -> str:
    """A replay without CLIP options tries the generator's usual CLIP: where that is not
    here and the recipe names another, say which, so the advice is not only to download
    the usual one."""
    recorded = session.clip
    if not args.recipe or args.clip_file or args.clip_arch or recorded is None \
            or recorded.name == default_clip_source(generator).describe():
        return ""
    return (f"; the recipe was made with CLIP {recorded.name}: name it with --clip-file, "
            "or --clip-arch with --clip-pretrained")


def _file_here(path: object) -> str | None:
    return path if isinstance(path, str) and path and Path(path).is_file() else None


def _recorded_generator(recipe: dict | None) -> str | None:
    """The generator file a recipe names, when it is on this machine (the demo of another
    installation here: this one's, which has its directions and CLIP)."""
    made = recipe.get("generator") if recipe is not None else None
    if not isinstance(made, dict):
        return None
    path, content_hash = made.get("path"), made.get("content_hash")
    local = local_generator(ModelIdentity(
        str(made.get("name") or ""), content_hash if isinstance(content_hash, str) else "",
        path if isinstance(path, str) else ""))
    return str(local) if local is not None else None


def _refuse_missing_generator(made_with: ModelIdentity | None, used: ModelIdentity) -> None:
    """A replay with no --generator whose recipe names a generator that is not here: the
    demo it fell back to would draw another picture, which no one asked for."""
    if made_with is not None and made_with.content_hash != used.content_hash \
            and not _file_here(made_with.path):
        where = f" ({made_with.path})" if made_with.path else ""
        raise EditError(f"the recipe was made with generator {made_with.name}{where}, which "
                        f"is not on this machine: replay it with --generator PATH")


def _check_made_for(session: Session, made_with: ModelIdentity | None,
                    gen_id: ModelIdentity, latent_shape: tuple[int, int]) -> None:
    """EditError for an edit (a discovered one) or a latent made for another generator;
    where the recipe names the generator it was made with, the error says how to use it."""
    try:
        for edit in session.active_edits:
            check_made_for(edit, gen_id.content_hash)
        if session.source.kind == "wplus":
            wplus_of_source(session.source, *latent_shape)
    except EditError as e:
        if made_with is None or made_with.content_hash == gen_id.content_hash:
            raise
        raise EditError(f"{e}; the recipe was made with generator {made_with.name}: replay "
                        f"it with --generator {shlex.quote(made_with.path or made_with.name)}"
                        ) from e


def _refuse_missing_import(recorded: Session, gen_id: ModelIdentity,
                           clip_id: ModelIdentity | None) -> None:
    """A recipe whose text edits used imported directions, replayed where there are none
    yet: computing this pack's own (hours on a CPU for FFHQ) would not replay it."""
    made = recorded.directions
    if recorded.has_text_edits and made is not None and made.name.startswith(IMPORTED) \
            and not recorded.model_mismatches(gen_id, clip_id):  # (else told, and moot)
        raise EditError(
            f"the recipe's text edits were made with directions {made.name}, which this "
            f"cache does not hold: import that file first (atelier import-styleclip), or "
            f"compute this pack's own (atelier precompute) to replay with those")


def _with_directions(session: Session, recorded: Session,
                     identities: tuple[ModelIdentity, ModelIdentity | None,
                                       ModelIdentity | None], replaying: bool) -> Session:
    """Record the global directions the text edits use (known once the pack jobs ran);
    warn when replaying a recipe (`recorded`, as read) whose text edits used others with
    the same models (an imported file, say)."""
    for kind, made, used in recorded.model_mismatches(*identities) if replaying else []:
        if kind == "directions":
            print(f"warning: the recipe's text edits were made with other global directions "
                  f"({made.name}, {made.content_hash[:12]}); rendering with this pack's "
                  f"({used.name}, {used.content_hash[:12]}), so they may look different",
                  file=sys.stderr)
    return session.with_models(session.generator, session.clip, identities[2])
