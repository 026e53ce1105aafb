"""Exports: the edited image, an α sweep as an animation, and the edit stack over many seeds.

Qt-free, so the CLI can use it too. The long exports are generators that yield `Progress`
and check a cancel token between frames, so a background job can show progress and stop
them; a cancel raises `Cancelled`, saying what was written. Once a file is in place the
export is done: a job's token is committed (JobToken.commit), so a later cancel is too
late. Files go through `core.image_io`: each one is written atomically, and nothing is
replaced unless `overwrite` is asked for. The UI asks first:
`existing_targets(plan_targets(plan))` lists what a plan would replace.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from editor.core.errors import AtelierError, ImageExistsError, ImageSaveError, error_message
from editor.core.image_io import (
    GIF_MIN_FRAME_MS,
    SavedImage,
    animation_format,
    image_format,
    save_animation,
    save_image,
)
from editor.core.paths import written_in_place
from editor.methods.global_directions import Progress
from editor.methods.precompute import Cancelled, CancelToken, is_cancelled

from .compose import EditingContext
from .export_formats import (
    ANIMATION_FORMATS,
    DEFAULT_QUALITY,
    IMAGE_FORMATS,
    LOSSY_FORMATS,
    MAX_SCALE,
    UPSCALE_FILTERS,
    format_suffixes,
    name_for_format,
)
from .renderer import rendering_platform, to_uint8_image
from .session import MAX_SEED, RecipeError, Session, refuse_unknown, shown_value

KINDS = ("image", "sweep", "batch")
MAX_GIF_FPS = 1000 // GIF_MIN_FRAME_MS  # faster plays no faster: each frame lasts 20 ms
OUTPUT_KEY = "output"  # in a file's recipe: how the file was made from the render
OUTPUT_SETTINGS = ("scale", "upscale_filter", "quality", "rendered_on")  # (file_recipe)

ExportJob = Generator[Progress, None, list[SavedImage]]
Report = Callable[[Progress], None]  # progress from inside one long step (JobToken.report)
LISTED_FILES = 3  # files named in a warning; the rest are counted


@dataclass(frozen=True)
class ExportResult:
    """What a window export wrote, and what the user must hear about it."""

    saved: list[SavedImage]
    left_out: tuple[str, ...] = ()  # "name: why" of edits skipped as the canvas skips them
    carries_recipes: bool = True  # still images; an animation never carries one

    def warnings(self) -> list[str]:
        notes = []
        if self.left_out:
            where = ("; they are disabled in the files' recipes" if self.carries_recipes
                     else "")
            notes.append("Exported without the edits that cannot be applied (the canvas "
                         f"leaves them out too{where}): " + "; ".join(self.left_out))
        lost = [s.path.name for s in self.saved if not s.recipe_embedded]
        if self.carries_recipes and lost:
            # a batch can be thousands of files: a count and the first few names
            names = ", ".join(lost[:LISTED_FILES])
            if len(lost) > LISTED_FILES:
                names = f"{len(lost)} files ({names}, …)"
            notes.append(f"{names}: the recipe is too large for this format's metadata, so "
                         "the file cannot be replayed. Export as PNG to keep it.")
        return notes


def without_failing_edits(ctx: EditingContext, session: Session
                          ) -> tuple[Session, tuple[str, ...]]:
    """The session as the window shows it: enabled edits that cannot be applied (no style
    channel passes β, a direction made for another generator) are disabled, so the file
    and its recipe are the picture on the canvas; with "name: why" for each of them."""
    statuses = {}
    ctx.compose(session, statuses)
    return disable_failing_edits(session, statuses)


def disable_failing_edits(session: Session, statuses: dict) -> tuple[Session, tuple[str, ...]]:
    """`without_failing_edits` from a render's edit statuses (edit id -> EditStatus)."""
    # an edit at strength 0 changes nothing, whether it can be applied or not
    failing = [e for e in session.active_edits
               if statuses.get(e.id) is not None and statuses[e.id].error]
    for edit in failing:
        session = session.update_edit(edit.id, enabled=False)
    # the directions are recorded only while a text edit uses them, as a replay records
    # them: with the only one off, a kept record made the replayed file's recipe differ
    session = session.with_models(session.generator, session.clip, session.directions)
    return session, tuple(f"{e.title}: {statuses[e.id].error}" for e in failing)


@dataclass(frozen=True)
class ExportPlan:
    """Everything one export needs besides the models and the session: what the export
    dialog returns and `run_plan` carries out. Plain data, so it can cross threads."""

    kind: str = "image"              # "image" | "sweep" | "batch"
    path: str = ""                   # image or sweep: the file to write
    format: str = "PNG"              # PNG/JPEG/WEBP; a sweep: GIF/WEBP
    scale: int = 1
    upscale_filter: str = "lanczos"  # or "nearest": keeps pixels sharp
    quality: int = DEFAULT_QUALITY   # JPEG and WebP
    overwrite: bool = False
    # sweep
    edit_id: str = ""
    start: float = -5.0
    stop: float = 5.0
    frames: int = 24
    fps: float = 12.0
    bounce: bool = False
    # batch
    folder: str = ""
    first_seed: int = 0
    count: int = 16
    name_pattern: str = "seed{seed:06d}.png"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown export kind {self.kind!r}; use one of {KINDS}")
        if not 1 <= self.scale <= MAX_SCALE:  # a file of more could not be replayed
            raise ValueError(f"scale must be from 1 to {MAX_SCALE}, got {self.scale}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be from 1 to 100, got {self.quality}")
        formats = ANIMATION_FORMATS if self.kind == "sweep" else IMAGE_FORMATS
        if (self.format or "").upper().replace("JPG", "JPEG") not in formats:
            # found before the work: the sweep's write came after all of its frames
            raise ValueError(f"cannot export a{'n' if self.kind == 'image' else ''} "
                             f"{self.kind} as {self.format!r}; use {', '.join(formats)}")
        if self.kind == "sweep" and (self.frames < 2 or not self.fps > 0):
            raise ValueError("a sweep needs at least 2 frames and a positive frame rate")
        if self.kind == "batch" and self.count < 1:
            raise ValueError("a batch needs at least one seed")
        if self.kind == "batch" and not 0 <= self.first_seed <= MAX_SEED - self.count + 1:
            # a file of a seed beyond them could not be replayed (recipes refuse it)
            raise ValueError(f"the seeds of a batch run from 0 to {MAX_SEED}; "
                             f"{self.count} from {self.first_seed} go past it")

    @property
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.count)


# ----------------------------------------------------------------------------- targets

def with_format_suffix(path: str | Path, format: str | None) -> Path:
    """`path` with an extension that matches `format`, so a file's name never lies about
    its content: a matching one is kept, another image extension replaced, and anything
    else ("take.final", "{seed}") kept with the extension added."""
    path = Path(path)
    if format_suffixes(format) is None:
        return path
    return path.with_name(name_for_format(path.name, format))


def batch_paths(folder: str | Path, seeds: Iterable[int], name_pattern: str,
                format: str | None = None) -> list[Path]:
    """The file of each seed: `name_pattern` formatted with `seed=` inside `folder`.
    Refuses patterns that leave the folder or give two seeds the same name."""
    folder = Path(folder)
    names = []
    for seed in seeds:
        try:
            name = name_pattern.format(seed=seed)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"bad file name pattern {name_pattern!r}: use {{seed}} (e.g. "
                             f"'seed{{seed:06d}}.png') ({e})") from e
        if not _plain_file_name(name):
            raise ValueError(f"the file name pattern {name_pattern!r} must give plain file "
                             "names inside the folder")
        names.append(name_for_format(name, format))
    if len(set(names)) != len(names):
        raise ValueError(f"the file name pattern {name_pattern!r} gives several seeds the "
                         "same file name; include {seed}")
    return [folder / name for name in names]


def _plain_file_name(name: str) -> bool:
    """Whether `name` names a file inside a folder: no folder part, drive or root."""
    return (name not in ("", ".", "..") and os.path.basename(name) == name
            and not os.path.splitdrive(name)[0])


def plan_targets(plan: ExportPlan) -> list[Path]:
    """Every file the plan would write."""
    return list(_plan_targets(plan))


@functools.lru_cache(maxsize=2)  # the dialog and the window ask in turn for one plan
def _plan_targets(plan: ExportPlan) -> tuple[Path, ...]:
    if plan.kind == "batch":
        return tuple(batch_paths(plan.folder, plan.seeds, plan.name_pattern, plan.format))
    return (with_format_suffix(plan.path, plan.format),)


NAME_MAX_BYTES = 255  # the longest file name the usual file systems take


def check_targets(paths: Iterable[str | Path]) -> None:
    """ValueError, in words, for a target that cannot be written whatever the user answers
    (a name the file system refuses, a folder, a place that is read-only), so the dialog
    can say so before anything runs. One lstat a file and one look at each folder: a
    batch checks 100,000 names before its dialog closes."""
    folders_seen: set[str] = set()
    for path in map(str, paths):
        if "\x00" in path:
            raise ValueError("A file name cannot contain a NUL character.")
        name = os.path.basename(path)
        if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
            raise ValueError(f"The file name '{name[:40]}…' is too long (the limit is "
                             f"{NAME_MAX_BYTES} bytes).")
        mode = _lstat_mode(path)
        if mode is not None and stat.S_ISLNK(mode):  # the write replaces what it leads to
            path = os.path.realpath(path)
            mode = _lstat_mode(path)
        if mode is not None and stat.S_ISDIR(mode):
            raise ValueError(f"'{path}' is a folder; choose a file name.")
        if mode is not None and written_in_place(path):
            continue  # written into (/dev/null, a FIFO): its folder is not written
        parent = os.path.dirname(path) or os.curdir
        if parent not in folders_seen:
            _check_folder(Path(parent))
            folders_seen.add(parent)


_NO_SUCH_FILE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
_NO_SUCH_FILE_WINDOWS = (21, 123, 1921)  # drive not ready, bad name, link loop (pathlib's)


def _lstat_mode(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError as e:  # the errors pathlib reads as "no such file"
        if e.errno in _NO_SUCH_FILE or getattr(e, "winerror", None) in _NO_SUCH_FILE_WINDOWS:
            return None
        raise


def _check_folder(folder: Path) -> None:
    """`check_targets` on the folder a file goes in: its nearest existing ancestor (the
    export makes the rest) must be a folder that can be written."""
    existing = next((f for f in (folder, *folder.parents) if f.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"'{existing}' is a file, not a folder.")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write into '{existing}' (no permission, or read-only).")


def resolved_targets(paths: Iterable[str | Path]) -> list[str]:
    """One spelling of each path (os.path.realpath's), for telling whether two exports
    write the same file; each folder is resolved once, not each of a batch's files."""
    folders: dict[str, str] = {}
    resolved = []
    for path in map(str, paths):
        folder, name = os.path.split(path)
        try:
            mode = _lstat_mode(path) if name not in ("", ".", "..") else stat.S_IFLNK
        except OSError:  # (no permission to look): realpath, which never raises, says
            mode = stat.S_IFLNK
        if mode is not None and stat.S_ISLNK(mode):  # only the file itself can say
            resolved.append(os.path.normcase(os.path.realpath(path)))
            continue
        if folder not in folders:
            folders[folder] = os.path.realpath(folder or os.curdir)
        # normcase: a.png and A.PNG are one file where names ignore case (Windows)
        resolved.append(os.path.normcase(os.path.join(folders[folder], name)))
    return resolved


def existing_targets(paths: Iterable[str | Path]) -> list[Path]:
    """Those of `paths` that exist already (what an export would replace)."""
    return [Path(p) for p in paths if os.path.exists(p)]


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [] if overwrite else existing_targets(paths)
    if existing:
        n = len(existing)
        what = f"'{existing[0]}' exists" if len(paths) == 1 else \
            f"{n} of the {len(paths)} files exist{'s' if n == 1 else ''} (first: " \
            f"'{existing[0]}')"
        raise ImageExistsError(f"Not exporting: {what}; allow overwriting to replace "
                               f"{'it' if n == 1 else 'them'}")


# ----------------------------------------------------------------------------- exports

def render_full(ctx: EditingContext, session: Session) -> np.ndarray:
    """The session at the generator's full resolution, as (H, W, 3) uint8."""
    return to_uint8_image(ctx.render(session))


def export_image(
    ctx: EditingContext, session: Session, path: str | Path, format: str | None = None,
    scale: int = 1, quality: int = DEFAULT_QUALITY, upscale_filter: str = "lanczos",
    overwrite: bool = False, cancel: CancelToken = None,
) -> SavedImage:
    """Render at full resolution and save with the session's recipe embedded. A cancel
    during the render (which takes the time) writes nothing."""
    _refuse_existing([Path(path)], overwrite)  # before the render: refusing costs nothing
    rgb = render_full(ctx, session)
    if is_cancelled(cancel):
        raise Cancelled(f"export cancelled before {Path(path).name} was written; "
                        "nothing written")
    return save_render(path, rgb, session, format=format,
                       quality=quality, scale=scale, overwrite=overwrite,
                       upscale_filter=upscale_filter, platform=rendering_platform(ctx.device))


def save_render(path: str | Path, rgb: np.ndarray, session: Session,
                format: str | None = None, quality: int = DEFAULT_QUALITY, scale: int = 1,
                overwrite: bool = False, upscale_filter: str = "lanczos",
                platform: dict | None = None) -> SavedImage:
    """Save the session's render `rgb` as an image file carrying the recipe that
    reproduces it (`file_recipe`); `platform`: what drew it."""
    lossy = image_format(path, format) in LOSSY_FORMATS
    return save_image(path, rgb,
                      recipe=file_recipe(session, scale, upscale_filter,
                                         quality if lossy else None, platform),
                      format=format, quality=quality, scale=scale, overwrite=overwrite,
                      upscale_filter=upscale_filter)


def file_recipe(session: Session, scale: int = 1, upscale_filter: str = "lanczos",
                quality: int | None = None, platform: dict | None = None) -> dict:
    """The recipe an exported file carries: the session's, plus how the file was made from
    the render, so that replaying the file writes the same pixels: the upscale, left out
    at 1x (where readers that ignore the block replay it exactly too), a lossy file's
    quality (None for a lossless file, which records none), and what drew it
    (renderer.rendering_platform; a replay elsewhere may differ slightly)."""
    recipe = session.to_recipe()
    output: dict = {}
    if scale != 1:
        output.update(scale=scale, upscale_filter=upscale_filter)
    if quality is not None:
        output["quality"] = quality
    if platform is not None:
        output["rendered_on"] = platform
    if output:
        recipe[OUTPUT_KEY] = output
    return recipe


def _recorded_block(recipe: dict) -> dict:
    """The output block of a file's recipe ({} when it has none)."""
    out = recipe.get(OUTPUT_KEY)
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise RecipeError("the recipe's output settings are malformed")
    refuse_unknown(out, OUTPUT_SETTINGS, "the recipe's output", "setting")
    return out


def recorded_output(recipe: dict, scale: int | None = None,
                    upscale_filter: str | None = None) -> tuple[int, str]:
    """(scale, upscale filter): those given, else what a file's recipe records ((1,
    "lanczos") when it records none). RecipeError for a recorded value this program cannot
    honour where it is used: a given value overrides it, and at scale 1 no filter is."""
    out = _recorded_block(recipe)
    if scale is None:
        scale = out.get("scale", 1)
        if type(scale) is not int or not 1 <= scale <= MAX_SCALE:
            raise RecipeError(f"the recipe's output scale must be a whole number from 1 to "
                              f"{MAX_SCALE}, got {shown_value(scale)}")
    if upscale_filter is None:
        upscale_filter = out.get("upscale_filter", "lanczos")
        if upscale_filter not in UPSCALE_FILTERS:
            if scale > 1:
                raise RecipeError(f"the recipe's upscale filter must be one of "
                                  f"{', '.join(UPSCALE_FILTERS)}, got "
                                  f"{shown_value(upscale_filter)}")
            upscale_filter = "lanczos"  # not used at scale 1
    return scale, upscale_filter


def recorded_quality(recipe: dict) -> int | None:
    """The JPEG/WebP quality a lossy file's recipe records; None when it records none (a
    lossless file, or one written before quality was recorded)."""
    quality = _recorded_block(recipe).get("quality")
    if quality is not None and (type(quality) is not int or not 1 <= quality <= 100):
        raise RecipeError(f"the recipe's output quality must be a whole number from 1 to "
                          f"100, got {shown_value(quality)}")
    return quality


def recorded_platform(recipe: dict) -> object:
    """What drew a file's picture, as its recipe records it (None when it does not);
    read by renderer.platform_differences, which ignores what it cannot read."""
    out = recipe.get(OUTPUT_KEY)
    return out.get("rendered_on") if isinstance(out, dict) else None


def sweep_strengths(start: float, stop: float, frames: int) -> list[float]:
    """The α of each rendered frame, evenly spaced, both ends included."""
    return [float(a) for a in np.linspace(start, stop, frames)]


def alpha_sweep(
    ctx: EditingContext, session: Session, edit_id: str, start: float, stop: float,
    frames: int, path: str | Path, fps: float = 12.0, bounce: bool = False,
    format: str | None = None, quality: int = DEFAULT_QUALITY, scale: int = 1,
    upscale_filter: str = "lanczos", overwrite: bool = False, cancel: CancelToken = None,
    report: Report | None = None,
) -> ExportJob:
    """Render one edit at `frames` strengths from `start` to `stop` (the edit enabled
    whatever its state in the session) and write them as an animated GIF or WebP.
    The file is written once, at the end, frame by frame: that write (most of a long
    sweep's time) goes to `report` and stops on a cancel; a cancelled sweep leaves
    nothing behind."""
    session.edit(edit_id)  # a KeyError before any rendering
    path = Path(path)
    _refuse_existing([path], overwrite)
    animation_format(path, format)  # a format it cannot be written in, before the frames
    strengths = sweep_strengths(start, stop, frames)
    written = 2 * frames - 2 if bounce else frames
    clock = _Clock(frames + written)  # one step per frame rendered, one per frame written
    images = []  # at the render's size: each is upscaled only as it is written
    for i, alpha in enumerate(strengths):
        if is_cancelled(cancel):
            raise _sweep_cancelled(i, frames)
        images.append(render_full(ctx, session.update_edit(edit_id, strength=alpha,
                                                           enabled=True)))
        try:
            yield clock.progress(i + 1, f"frame {i + 1}/{frames} (α = {alpha:+.2f})")
        except Cancelled:  # a job runner stops a cancelled job where it waits
            raise _sweep_cancelled(i + 1, frames) from None
    if bounce:  # back again without repeating either end, so the loop has no stutter
        images += images[-2:0:-1]  # the same arrays again: nothing is copied

    def writing(done: int, total: int) -> None:
        if is_cancelled(cancel):  # raised inside the write, which then removes its file
            raise Cancelled(f"sweep cancelled while writing {path.name}; nothing written")
        if report is not None:
            report(clock.progress(frames + done, f"writing {path.name}: frame "
                                                 f"{done + 1}/{total}"))

    saved = save_animation(path, images, fps=fps, format=format, quality=quality,
                           overwrite=overwrite, scale=scale, upscale_filter=upscale_filter,
                           progress=writing)
    _commit(cancel)
    yield clock.progress(clock.total, f"wrote {path.name}")
    return [saved]


class BatchStopped(AtelierError):
    """A batch export that failed part-way for a reason other than writing (out of
    memory, an edit a seed cannot take): its line says the reason and the files kept."""


def batch_export(
    ctx: EditingContext, session: Session, seeds: Iterable[int], folder: str | Path,
    name_pattern: str = "seed{seed:06d}.png", format: str | None = None, scale: int = 1,
    quality: int = DEFAULT_QUALITY, upscale_filter: str = "lanczos", overwrite: bool = False,
    cancel: CancelToken = None,
) -> ExportJob:
    """The session's edit stack applied to each seed, one file per seed with its own recipe.

    Before anything is rendered, existing targets are refused all together
    (ImageExistsError) unless `overwrite`. A cancel stops between files: the files written
    so far stay, each one complete."""
    if session.source.kind != "seed":
        raise ValueError("a batch over seeds needs a session that starts from a seed")
    seeds = list(seeds)
    paths = batch_paths(folder, seeds, name_pattern, format)
    _refuse_existing(paths, overwrite)
    if paths:
        image_format(paths[0], format)  # a format no file can be written in, before any
    clock = _Clock(len(seeds))
    platform = rendering_platform(ctx.device)  # one device draws every file
    saved = []
    for i, (seed, path) in enumerate(zip(seeds, paths, strict=True)):
        if is_cancelled(cancel):
            raise _batch_cancelled(i, len(seeds))
        one = session.with_source(replace(session.source, seed=seed))
        try:
            saved.append(save_render(path, render_full(ctx, one), one, format=format,
                                     quality=quality, scale=scale, overwrite=overwrite,
                                     upscale_filter=upscale_filter, platform=platform))
        except Exception as e:
            # a full disk, out of memory at a large scale, an edit this seed cannot take:
            # the files before it stay, and the message says how many
            if not saved or isinstance(e, Cancelled):
                raise
            were = "was" if len(saved) == 1 else "were"
            kept = f"{len(saved)} of {len(seeds)} files {were} written and kept"
            if isinstance(e, ImageSaveError):
                raise type(e)(f"{e}; {kept}") from e
            raise BatchStopped(f"{error_message(e)}; {kept}") from e
        if len(saved) == len(seeds):
            _commit(cancel)  # every file is in place: the batch is done
        try:
            yield clock.progress(i + 1, f"seed {seed} → {path.name}")
        except Cancelled:  # a job runner stops a cancelled job where it waits
            raise _batch_cancelled(i + 1, len(seeds)) from None
    return saved


def run_plan(ctx: EditingContext, session: Session, plan: ExportPlan,
             cancel: CancelToken = None, report: Report | None = None
             ) -> Generator[Progress, None, ExportResult]:
    """Carry out what the export dialog chose; yields Progress, returns what was saved;
    `report` hears the progress of a sweep's write, one long step. Meant for a background
    job on its own context: `run_plan(pack.context(), ..., cancel=token, report=...)`."""
    target = plan_targets(plan)[0]
    session, left_out = without_failing_edits(ctx, session)
    if plan.kind == "image":
        yield Progress(0, 1, f"rendering {target.name}")
        saved = export_image(ctx, session, target, plan.format, plan.scale, plan.quality,
                             plan.upscale_filter, plan.overwrite, cancel=cancel)
        _commit(cancel)
        yield Progress(1, 1, f"wrote {target.name}")
        return ExportResult([saved], left_out)
    if plan.kind == "sweep":
        return ExportResult((yield from alpha_sweep(
            ctx, session, plan.edit_id, plan.start, plan.stop, plan.frames, target,
            fps=plan.fps, bounce=plan.bounce, format=plan.format, quality=plan.quality,
            scale=plan.scale, upscale_filter=plan.upscale_filter, overwrite=plan.overwrite,
            cancel=cancel, report=report)), left_out, carries_recipes=False)
    return ExportResult((yield from batch_export(
        ctx, session, plan.seeds, plan.folder, plan.name_pattern, format=plan.format,
        scale=plan.scale, quality=plan.quality, upscale_filter=plan.upscale_filter,
        overwrite=plan.overwrite, cancel=cancel)), left_out)


# ----------------------------------------------------------------------------- helpers

def _commit(cancel: CancelToken) -> None:
    """The file is in place: a job's token (JobToken.commit) hears that the export is
    done, so a cancel from now on cannot call it cancelled."""
    commit = getattr(cancel, "commit", None)
    if commit is not None:
        commit()


def _sweep_cancelled(frames_done: int, frames: int) -> Cancelled:
    return Cancelled(f"sweep cancelled after {frames_done} of {frames} frames; "
                     "nothing written")


def _batch_cancelled(written: int, total: int) -> Cancelled:
    # the files written stay, each one complete
    return Cancelled(f"batch cancelled after {written} of {total} files written")


class _Clock:
    """Progress with an ETA at the rate so far."""

    def __init__(self, total: int):
        self.total = total
        self.t0 = time.monotonic()

    def progress(self, done: int, message: str) -> Progress:
        elapsed = time.monotonic() - self.t0
        eta = (self.total - done) * elapsed / done if done else None
        return Progress(done, self.total, message, eta)
