"""Exports with a tiny generator: recipes round-trip, scaling, α sweeps, batches, cancel and
the no-overwrite rule."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from editor.core.errors import ImageExistsError
from editor.core.image_io import load_image, read_recipe
from editor.engine.compose import EditingContext
from editor.engine.export import (
    ExportPlan,
    alpha_sweep,
    batch_export,
    batch_paths,
    check_targets,
    existing_targets,
    export_image,
    plan_targets,
    recorded_output,
    recorded_quality,
    render_full,
    run_plan,
    with_format_suffix,
)
from editor.engine.renderer import rendering_platform
from editor.engine.session import Edit, Session, Source
from editor.methods.precompute import Cancelled
from tests.conftest import make_tiny_generator


@pytest.fixture(scope="module")
def ctx():
    return EditingContext(make_tiny_generator(resolution=16))


@pytest.fixture(scope="module")
def session(ctx):
    g = ctx.generator
    n = g.styles(g.mapping(torch.zeros(1, g.z_dim), psi=1.0)).num_channels
    delta = (torch.randn(n, generator=torch.Generator().manual_seed(1)) * 0.5).tolist()
    edit = Edit(kind="delta", params={"delta": delta}, strength=1.5, name="random")
    return Session(source=Source(seed=3, psi=0.8), edits=(edit,))


def _run(job):
    """Drive an export generator to the end; its progress and its return value."""
    progress = []
    while True:
        try:
            progress.append(next(job))
        except StopIteration as stop:
            return progress, stop.value


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_png_carries_a_recipe_that_rebuilds_the_session(ctx, session, tmp_path):
    saved = export_image(ctx, session, tmp_path / "out.png")
    assert saved.recipe_embedded and saved.size == (16, 16)
    assert Session.from_json(read_recipe(saved.path)) == session
    assert np.array_equal(load_image(saved.path).rgb, render_full(ctx, session))


def test_scale_two_doubles_the_size_and_nearest_keeps_pixels(ctx, session, tmp_path):
    saved = export_image(ctx, session, tmp_path / "big.png", scale=2, upscale_filter="nearest")
    rgb = load_image(saved.path).rgb
    assert rgb.shape == (32, 32, 3)
    native = render_full(ctx, session)
    assert np.array_equal(rgb, native.repeat(2, axis=0).repeat(2, axis=1))
    # the file's recipe records how it was made from the render; the session is unchanged
    recipe = json.loads(read_recipe(saved.path))
    assert recorded_output(recipe) == (2, "nearest")
    assert Session.from_recipe(recipe) == session
    # at 1x it records only what drew the picture: readers from before the block, which
    # ignore it, replay such a file exactly
    native = json.loads(read_recipe(export_image(ctx, session, tmp_path / "native.png").path))
    assert list(native["output"]) == ["rendered_on"]
    assert native["output"]["rendered_on"] == {"device": "cpu", "name": "cpu",
                                               "torch": torch.__version__}


def test_a_file_or_session_block_a_newer_version_added_is_not_ignored(ctx, session, tmp_path):
    # a setting this version does not know was skipped without a word: a newer one may
    # have written it to change the pixels
    from editor.engine.editor_state import DRAFT_KEY
    from editor.engine.export import OUTPUT_KEY, OUTPUT_SETTINGS
    from editor.engine.session import RECIPE_BLOCKS_READ_ELSEWHERE, RecipeError

    assert {OUTPUT_KEY, DRAFT_KEY} == set(RECIPE_BLOCKS_READ_ELSEWHERE)
    recipe = json.loads(read_recipe(export_image(ctx, session, tmp_path / "a.png",
                                                 scale=2).path))
    assert set(recipe["output"]) <= set(OUTPUT_SETTINGS)
    recipe["output"]["crop"] = [0, 0, 8, 8]
    with pytest.raises(RecipeError, match=r"output has a setting this version does not know "
                                          r"\(crop\)"):
        recorded_output(recipe)
    recipe["output"].pop("crop")
    assert recorded_output(recipe) == (2, "lanczos")
    recipe["lighting"] = {"sun": 1}
    with pytest.raises(RecipeError, match=r"the recipe has a field this version does not "
                                          r"know \(lighting\)"):
        Session.from_recipe(recipe)


def test_a_window_export_records_a_lossy_files_quality(ctx, session, tmp_path):
    # The export dialog's quality reached the encoder but not the recipe, so a JPEG or
    # WebP export replayed at 95 whatever it was written at.
    _, result = _run(run_plan(ctx, session, ExportPlan(
        kind="image", path=str(tmp_path / "out"), format="JPEG", quality=70)))
    (jpeg,) = result.saved
    recipe = json.loads(read_recipe(jpeg.path))
    cpu = rendering_platform(torch.device("cpu"))
    assert recipe["output"] == {"quality": 70, "rendered_on": cpu}
    assert recorded_quality(recipe) == 70
    assert recorded_output(recipe) == (1, "lanczos")
    _, result = _run(run_plan(ctx, session, ExportPlan(
        kind="batch", folder=str(tmp_path), first_seed=5, count=2, format="WEBP", quality=60,
        scale=2)))
    assert [json.loads(read_recipe(s.path))["output"] for s in result.saved] == \
        [{"scale": 2, "upscale_filter": "lanczos", "quality": 60, "rendered_on": cpu}] * 2
    # a lossless file records none: its recipe is what it was
    png = export_image(ctx, session, tmp_path / "out.png", quality=70)
    assert recorded_quality(json.loads(read_recipe(png.path))) is None


def test_export_image_refuses_an_existing_file_unless_asked(ctx, session, tmp_path):
    path = tmp_path / "taken.png"
    path.write_bytes(b"mine")
    with pytest.raises(ImageExistsError):
        export_image(ctx, session, path)
    assert path.read_bytes() == b"mine"
    export_image(ctx, session, path, overwrite=True)
    assert Session.from_json(read_recipe(path)) == session


@pytest.mark.parametrize(("name", "bounce", "expected"), [("sweep.gif", False, 5),
                                                            ("sweep.webp", True, 8)])
def test_sweep_writes_an_animation_of_distinct_frames(ctx, session, tmp_path, name, bounce,
                                                      expected):
    off = session.update_edit(session.edits[0].id, enabled=False)  # the sweep turns it on
    progress, saved = _run(alpha_sweep(ctx, off, session.edits[0].id, -3, 3, 5,
                                       tmp_path / name, fps=10, bounce=bounce))
    total = 5 + expected  # a step per frame rendered and per frame written
    assert [p.done for p in progress] == [1, 2, 3, 4, 5, total]
    assert all(p.total == total for p in progress)
    with Image.open(saved[0].path) as im:
        assert im.n_frames == expected
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")).copy())
    assert all(f.shape == (16, 16, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[4])
    assert len({f.tobytes() for f in frames[:5]}) == 5
    if bounce:  # back again: frame 5 repeats frame 3, the last repeats frame 1
        assert np.array_equal(frames[5], frames[3]) and np.array_equal(frames[7], frames[1])


def test_sweep_frames_are_renders_at_those_strengths(ctx, session, tmp_path):
    eid = session.edits[0].id
    _, saved = _run(alpha_sweep(ctx, session, eid, 0, 2, 3, tmp_path / "s.webp", fps=5,
                                format="WEBP", quality=100))
    renders = [render_full(ctx, session.update_edit(eid, strength=a)).astype(int)
               for a in (0.0, 1.0, 2.0)]
    with Image.open(saved[0].path) as im:
        for i in range(3):
            im.seek(i)
            frame = np.asarray(im.convert("RGB")).astype(int)
            # lossy WebP: each frame is nearest to the render at its own strength
            errors = [np.abs(frame - r).mean() for r in renders]
            assert int(np.argmin(errors)) == i, errors


def test_cancelled_sweep_writes_nothing(ctx, session, tmp_path):
    cancel = threading.Event()
    job = alpha_sweep(ctx, session, session.edits[0].id, -2, 2, 6, tmp_path / "s.gif",
                      cancel=cancel)
    next(job)
    next(job)
    cancel.set()
    with pytest.raises(Cancelled):
        next(job)
    assert _files(tmp_path) == []


def test_sweep_of_an_unknown_edit_fails_before_rendering(ctx, session, tmp_path):
    with pytest.raises(KeyError):
        next(alpha_sweep(ctx, session, "nope", 0, 1, 3, tmp_path / "s.gif"))


def test_batch_writes_each_seed_with_its_own_recipe(ctx, session, tmp_path):
    progress, saved = _run(batch_export(ctx, session, range(10, 13), tmp_path,
                                        "face-{seed}.png"))
    assert _files(tmp_path) == ["face-10.png", "face-11.png", "face-12.png"]
    assert [p.done for p in progress] == [1, 2, 3]
    for seed, s in zip(range(10, 13), saved, strict=True):
        back = Session.from_json(read_recipe(s.path))
        assert back.source.seed == seed and back.source.psi == 0.8
        assert back.edits == session.edits
        assert np.array_equal(load_image(s.path).rgb, render_full(ctx, back))
    assert not np.array_equal(load_image(saved[0].path).rgb, load_image(saved[1].path).rgb)


def test_batch_refuses_existing_targets_and_writes_nothing(ctx, session, tmp_path):
    taken = tmp_path / "seed000002.png"
    taken.write_bytes(b"keep me")
    with pytest.raises(ImageExistsError, match="1 of the 4 files"):
        _run(batch_export(ctx, session, range(4), tmp_path))
    assert _files(tmp_path) == ["seed000002.png"] and taken.read_bytes() == b"keep me"

    _run(batch_export(ctx, session, range(4), tmp_path, overwrite=True))
    assert _files(tmp_path) == [f"seed{s:06d}.png" for s in range(4)]
    assert Session.from_json(read_recipe(taken)).source.seed == 2


def test_batch_cancel_keeps_only_complete_files(ctx, session, tmp_path):
    cancel = threading.Event()
    job = batch_export(ctx, session, range(6), tmp_path, "s{seed}.jpg", format="JPEG",
                       cancel=cancel)
    next(job)
    next(job)
    cancel.set()
    with pytest.raises(Cancelled, match="after 2 of 6"):
        next(job)
    assert _files(tmp_path) == ["s0.jpg", "s1.jpg"]  # no temporary files left over
    for name, seed in (("s0.jpg", 0), ("s1.jpg", 1)):
        assert load_image(tmp_path / name).format == "JPEG"
        assert Session.from_json(read_recipe(tmp_path / name)).source.seed == seed


def test_batch_names_must_be_distinct_plain_files(tmp_path):
    with pytest.raises(ValueError, match="same file name"):
        batch_paths(tmp_path, range(3), "face.png")
    with pytest.raises(ValueError, match="inside the folder"):
        batch_paths(tmp_path, range(3), "../{seed}.png")
    with pytest.raises(ValueError, match="bad file name pattern"):
        batch_paths(tmp_path, range(3), "{sed}.png")
    assert batch_paths(tmp_path, [7], "{seed:03d}.png", "WEBP") == [tmp_path / "007.webp"]


def test_batch_needs_a_seed_source(ctx, session, tmp_path):
    w = session.with_source(Source(kind="wplus", wplus_path=str(tmp_path / "w.npy")))
    with pytest.raises(ValueError, match="seed"):
        next(batch_export(ctx, w, range(2), tmp_path))


def test_format_suffix_and_targets(tmp_path):
    assert with_format_suffix("a/b.png", "JPEG").name == "b.jpg"
    assert with_format_suffix("a/b.jpeg", "JPEG").name == "b.jpeg"
    assert with_format_suffix("a/b", "GIF").name == "b.gif"
    assert with_format_suffix("take.final", "PNG").name == "take.final.png"
    assert with_format_suffix("face.{seed}", "WEBP").name == "face.{seed}.webp"
    plan = ExportPlan(kind="batch", folder=str(tmp_path), first_seed=5, count=3,
                      name_pattern="{seed}.png", format="PNG")
    assert plan_targets(plan) == [tmp_path / f"{s}.png" for s in (5, 6, 7)]
    (tmp_path / "6.png").write_bytes(b"x")
    assert existing_targets(plan_targets(plan)) == [tmp_path / "6.png"]
    with pytest.raises(ValueError):
        ExportPlan(kind="gallery")


def test_run_plan_dispatches_each_kind(ctx, session, tmp_path):
    progress, result = _run(run_plan(ctx, session, ExportPlan(
        kind="image", path=str(tmp_path / "one.png"), format="WEBP", scale=2)))
    saved = result.saved
    assert saved[0].path == tmp_path / "one.webp" and saved[0].format == "WEBP"
    assert saved[0].size == (32, 32) and progress[-1].done == progress[-1].total
    assert Session.from_json(read_recipe(saved[0].path)) == session

    _, result = _run(run_plan(ctx, session, ExportPlan(
        kind="sweep", path=str(tmp_path / "anim"), format="GIF", edit_id=session.edits[0].id,
        frames=3, scale=2, upscale_filter="nearest")))
    saved = result.saved
    assert result.warnings() == []  # an animation carries no recipe by design
    with Image.open(saved[0].path) as im:
        assert saved[0].path.name == "anim.gif" and im.n_frames == 3 and im.size == (32, 32)

    _, result = _run(run_plan(ctx, session, ExportPlan(
        kind="batch", folder=str(tmp_path / "many"), first_seed=1, count=2, format="PNG")))
    assert _files(tmp_path / "many") == ["seed000001.png", "seed000002.png"]


def test_a_window_export_leaves_out_edits_that_cannot_be_applied_as_the_canvas_does(
        ctx, session, tmp_path):
    # The canvas skips an edit that cannot be applied (here a text edit on a context with
    # no directions) and shows the rest; the export failed as a whole and wrote nothing.
    broken = Edit(kind="global", params={"neutral": "face", "target": "face with glasses"},
                  strength=2.0, name="glasses")
    with_broken = session.add_edit(broken)
    statuses = {}
    ctx.compose(with_broken, statuses)
    assert statuses[broken.id].error
    shown = render_full(ctx, session)  # what the canvas shows: the stack without it
    _, result = _run(run_plan(ctx, with_broken, ExportPlan(
        kind="image", path=str(tmp_path / "shown.png"), format="PNG")))
    assert np.array_equal(load_image(result.saved[0].path).rgb, shown)
    assert result.left_out == (f"glasses: {statuses[broken.id].error}",)
    assert "glasses" in result.warnings()[0] and len(result.warnings()) == 1
    replay = Session.from_json(read_recipe(result.saved[0].path))  # replays what it shows
    assert not replay.edit(broken.id).enabled
    assert np.array_equal(render_full(ctx, replay), shown)


def test_an_export_whose_recipe_did_not_fit_the_format_says_so(ctx, session, tmp_path):
    # A JPEG holds at most 64 KB of metadata: a large recipe was dropped without a word.
    notes = [Edit(kind="delta", params={"delta": [0.0]}, strength=0.0, enabled=False,
                  name=f"note {i} " + "x" * 2000) for i in range(40)]
    large = Session(source=session.source, edits=session.edits + tuple(notes))
    _, jpeg = _run(run_plan(ctx, large, ExportPlan(
        kind="image", path=str(tmp_path / "big.jpg"), format="JPEG")))
    assert not jpeg.saved[0].recipe_embedded
    assert "big.jpg: the recipe is too large" in jpeg.warnings()[0]
    _, png = _run(run_plan(ctx, large, ExportPlan(
        kind="image", path=str(tmp_path / "big.png"), format="PNG")))
    assert png.saved[0].recipe_embedded and png.warnings() == []


def test_export_warnings_count_many_files_and_skip_edits_at_strength_zero(
        ctx, session, tmp_path):
    # A failing edit at strength 0 changes nothing, yet it was named and disabled; a batch
    # whose recipes did not fit listed every file name in one message box.
    idle = Edit(kind="global", params={"neutral": "face", "target": "a hat"}, strength=0.0,
                name="idle")
    notes = [Edit(kind="delta", params={"delta": [0.0]}, strength=0.0, enabled=False,
                  name=f"note {i} " + "x" * 2000) for i in range(40)]
    large = Session(source=session.source, edits=session.edits + (idle, *notes))
    _, result = _run(run_plan(ctx, large, ExportPlan(
        kind="batch", folder=str(tmp_path), first_seed=1, count=5, format="JPEG")))
    assert result.left_out == ()
    (note,) = result.warnings()
    assert note.startswith("5 files (seed000001.jpg, seed000002.jpg, seed000003.jpg, …)")
    broken = Edit(kind="global", params={"neutral": "face", "target": "a hat"},
                  strength=1.0, name="hat")
    _, sweep = _run(run_plan(ctx, session.add_edit(broken), ExportPlan(
        kind="sweep", path=str(tmp_path / "anim"), format="GIF",
        edit_id=session.edits[0].id, frames=2)))
    assert sweep.left_out and "recipe" not in sweep.warnings()[0]


class _JobToken(threading.Event):
    """A cancel token as the job runner hands it: set on cancel, committed by the export
    once its work is in place (after that, a cancel is too late)."""

    committed = False

    def commit(self):
        self.committed = True


def test_an_export_commits_its_token_once_its_files_are_in_place(ctx, session, tmp_path):
    # A cancel after the file was renamed into place reported "cancelled".
    token = _JobToken()
    job = run_plan(ctx, session, ExportPlan(kind="image", path=str(tmp_path / "a.png")),
                   cancel=token)
    next(job)
    assert not token.committed and _files(tmp_path) == []
    next(job)
    assert token.committed and _files(tmp_path) == ["a.png"]

    token = _JobToken()
    job = alpha_sweep(ctx, session, session.edits[0].id, -1, 1, 2, tmp_path / "s.gif",
                      cancel=token)
    _ = [next(job) for _ in range(2)]
    assert not token.committed
    next(job)
    assert token.committed and (tmp_path / "s.gif").is_file()

    token = _JobToken()
    job = batch_export(ctx, session, range(3), tmp_path / "b", cancel=token)
    _ = [next(job) for _ in range(2)]
    assert not token.committed  # a batch is done with its last file
    next(job)
    assert token.committed and len(_files(tmp_path / "b")) == 3


def test_a_batch_stopped_where_it_waits_says_how_many_files_it_wrote(ctx, session,
                                                                     tmp_path):
    # The job runner stops a cancelled job by raising Cancelled at its yield.
    job = batch_export(ctx, session, range(5), tmp_path)
    next(job)
    next(job)
    with pytest.raises(Cancelled, match="^batch cancelled after 2 of 5 files written$"):
        job.throw(Cancelled())
    assert len(_files(tmp_path)) == 2
    sweep = alpha_sweep(ctx, session, session.edits[0].id, -1, 1, 4, tmp_path / "s.gif")
    next(sweep)
    with pytest.raises(Cancelled, match="after 1 of 4 frames; nothing written"):
        sweep.throw(Cancelled())
    assert not (tmp_path / "s.gif").exists()


def test_a_sweeps_write_reports_each_frame_and_counts_in_the_total(ctx, session, tmp_path):
    # The write (most of a long sweep's time) was one silent step: the bar sat at
    # frames/(frames + 1) while the GIF was encoded.
    reports = []
    progress, _ = _run(alpha_sweep(ctx, session, session.edits[0].id, -1, 1, 3,
                                   tmp_path / "s.gif", bounce=True, report=reports.append))
    assert [p.done for p in progress] == [1, 2, 3, 7]  # 3 rendered + 4 written
    assert [p.done for p in reports] == [3, 4, 5, 6]  # before each written frame
    assert all(p.total == 7 for p in progress + reports)
    assert reports[-1].message == "writing s.gif: frame 4/4"


def test_a_cancel_during_a_sweeps_write_stops_it_and_leaves_no_file(ctx, session, tmp_path):
    # The write ignored Cancel: the job ran on and wrote the file; quitting meanwhile
    # left a hidden temporary file in the export folder.
    cancel = threading.Event()
    job = alpha_sweep(ctx, session, session.edits[0].id, -1, 1, 2, tmp_path / "s.gif",
                      cancel=cancel)
    _ = [next(job) for _ in range(2)]  # both frames rendered; the write comes next
    cancel.set()
    with pytest.raises(Cancelled, match="^sweep cancelled while writing s.gif; nothing "
                                        "written$"):
        next(job)
    assert _files(tmp_path) == []

    def cancel_at_the_third(progress):
        if progress.done == 4 + 2:  # 4 rendered, 2 written
            cancel.set()

    cancel.clear()
    with pytest.raises(Cancelled, match="while writing"):
        _run(alpha_sweep(ctx, session, session.edits[0].id, -1, 1, 4, tmp_path / "s.webp",
                         bounce=True, cancel=cancel, report=cancel_at_the_third))
    assert _files(tmp_path) == []


def test_a_sweep_keeps_its_frames_at_the_renders_size(ctx, session, tmp_path):
    # Every frame was held upscaled (bounce copies too) until the write: 1.4 GB for 24
    # frames of a 1024 px model at 2x. Now each is upscaled as the encoder takes it.
    import tracemalloc

    frames, scale = 30, 8
    upscaled = (16 * scale) ** 2 * 3  # bytes of one upscaled frame
    tracemalloc.start()
    try:
        _run(alpha_sweep(ctx, session, session.edits[0].id, -1, 1, frames,
                         tmp_path / "s.webp", bounce=True, scale=scale))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * upscaled, f"{peak / upscaled:.1f} upscaled frames held at once"


def test_a_cancel_during_an_image_exports_render_writes_nothing(ctx, session, tmp_path,
                                                               monkeypatch):
    from editor.engine import export

    cancel = threading.Event()

    def render_then_cancel(*args):
        rgb = render_full(*args)
        cancel.set()  # the user pressed Cancel while it rendered
        return rgb

    monkeypatch.setattr(export, "render_full", render_then_cancel)
    job = run_plan(ctx, session, ExportPlan(kind="image", path=str(tmp_path / "a.png")),
                   cancel=cancel)
    next(job)
    with pytest.raises(Cancelled, match="before a.png was written; nothing written"):
        next(job)
    assert _files(tmp_path) == []


def test_a_batch_stopped_by_a_render_failure_says_what_it_kept(ctx, session, tmp_path,
                                                               monkeypatch):
    # only a failed write said so: out of GPU memory at scale 8 on the third seed ended
    # the job with the memory line alone, the two files written unmentioned (helper-120)
    from editor.core.errors import says_out_of_memory
    from editor.engine import export
    from editor.engine.jobs import error_message

    real, calls = export.render_full, []

    def out_of_memory_at_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "render_full", out_of_memory_at_the_third)
    with pytest.raises(export.BatchStopped) as stopped:
        _run(batch_export(ctx, session, range(5), tmp_path))
    line = error_message(stopped.value)
    assert line == ("out of GPU memory (asked for 2.00 GiB more); 2 of 5 files were "
                    "written and kept")
    assert says_out_of_memory(line)  # the window's advice on memory still comes
    assert len(_files(tmp_path)) == 2


def test_an_export_plan_past_what_a_recipe_replays_is_refused():
    for bad in ({"scale": 16}, {"scale": 0}, {"quality": 0}, {"quality": 101}):
        with pytest.raises(ValueError, match="must be from 1 to"):
            ExportPlan(kind="image", path="x.png", **bad)


def test_a_batch_that_fails_part_way_says_what_it_kept(ctx, session, tmp_path, monkeypatch):
    # "Cannot export 'seed000002.png': No space left on device" said nothing of the two
    # files already written, and kept.
    from editor.core.errors import ImageSaveError
    from editor.engine import export

    real, calls = export.save_render, []

    def full_disk_at_the_third(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise ImageSaveError(f"Cannot export '{path}': No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(export, "save_render", full_disk_at_the_third)
    with pytest.raises(ImageSaveError, match="No space left on device; 2 of 5 files were "
                                             "written and kept$"):
        _run(batch_export(ctx, session, range(5), tmp_path))
    assert len(_files(tmp_path)) == 2
    calls.clear()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(export, "save_render", lambda *a, **k: (_ for _ in ()).throw(
        ImageSaveError("Cannot export: No space left on device")))
    with pytest.raises(ImageSaveError, match="device$"):  # nothing written: nothing to say
        _run(batch_export(ctx, session, range(5), tmp_path / "b"))


def test_a_sweep_of_an_edit_that_cannot_be_applied_fails_in_plain_words(ctx, session,
                                                                        tmp_path):
    # The job said "Export failed: EditError: no style channel passes β…".
    from editor.core.errors import AtelierError
    from editor.engine.compose import EditError
    from editor.engine.jobs import error_message

    broken = Edit(kind="global", params={"neutral": "face", "target": "face with glasses"},
                  strength=2.0, name="glasses")
    with pytest.raises(EditError) as info:
        _run(run_plan(ctx, session.add_edit(broken), ExportPlan(
            kind="sweep", path=str(tmp_path / "s.gif"), format="GIF", edit_id=broken.id,
            frames=2)))
    assert isinstance(info.value, AtelierError) and isinstance(info.value, ValueError)
    assert error_message(info.value) == str(info.value).splitlines()[0]
    assert not error_message(info.value).startswith("EditError")


def test_a_platform_note_names_what_differs_once():
    from editor.engine.renderer import platform_differences

    cpu = {"device": "cpu", "name": "cpu", "torch": "2.14.1"}
    h100 = {"device": "cuda", "name": "NVIDIA H100", "torch": "2.14.1"}
    assert platform_differences(h100, cpu) == ["device cuda there, cpu here"]
    assert platform_differences(dict(h100, name="NVIDIA A100"), h100) == [
        "processor NVIDIA A100 there, NVIDIA H100 here"]
    assert platform_differences(cpu, dict(cpu, torch="2.15.0")) == [
        "torch 2.14.1 there, 2.15.0 here"]
    assert platform_differences(None, cpu) == [] and platform_differences(cpu, cpu) == []


def test_a_link_into_a_folder_that_cannot_be_written_is_refused_before_the_export(
        tmp_path, monkeypatch):
    # the write replaces the file a link leads to: the link's own folder was checked, and
    # the export failed only after rendering
    import os
    from pathlib import Path

    from editor.engine import export

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "shared.png").write_bytes(b"old")
    (tmp_path / "mine.png").symlink_to(locked / "shared.png")
    real_access = os.access
    monkeypatch.setattr(export.os, "access",  # as for a user other than root
                        lambda p, mode: Path(p) != locked and real_access(p, mode))
    with pytest.raises(ValueError, match="Cannot write into '.*locked'"):
        export.check_targets([tmp_path / "mine.png"])
    export.check_targets([tmp_path / "other.png"])  # the link's own folder takes files


def test_a_failing_only_text_edit_leaves_no_directions_in_the_recipe():
    # the window records the directions while a text edit is on; the export turned the
    # failing one off but kept them, and `atelier edit --recipe` (which records them only
    # for a text edit in use) wrote a file whose recipe differed: not byte for byte
    from editor.engine.compose import EditStatus
    from editor.engine.export import disable_failing_edits
    from editor.engine.session import Edit, ModelIdentity, Session

    models = [ModelIdentity(name, f"{name}-hash") for name in ("g", "c", "computed")]
    edit = Edit("global", {"neutral": "face", "target": "smiling cartoon face", "beta": 0.6},
                strength=2.0)
    session = Session(edits=(edit,)).with_models(*models)
    assert session.directions == models[2]
    off, notes = disable_failing_edits(session, {edit.id: EditStatus(error="no channel")})
    assert not off.edits[0].enabled and off.directions is None and len(notes) == 1
    assert (off.generator, off.clip) == tuple(models[:2])
    kept, _ = disable_failing_edits(session, {edit.id: EditStatus(n_channels=20)})
    assert kept == session


@pytest.mark.parametrize("name", ["b.png", "b.PNG", "b.jpeg", "b.jpg", "b", "take.final",
                                  "face.{seed}", "x.", "x..", "...", ".png", ".hidden.webp",
                                  "a.b.gif", "seed.000007", "é.Jpe"])
@pytest.mark.parametrize("format", ["PNG", "JPEG", "jpg", "WEBP", "GIF", None, "TIFF"])
def test_a_name_gets_the_extension_pathlib_would_give_it(name, format):
    # batch names are made in string operations (pathlib took most of 19 s for 100,000
    # seeds); they must be what the pathlib version of the rule gives
    from pathlib import PurePosixPath

    from editor.engine.export_formats import format_suffixes, name_for_format

    suffixes = format_suffixes(format)
    path = PurePosixPath("folder") / name
    if suffixes is not None:
        if path.name.rstrip("."):
            path = path.with_name(path.name.rstrip("."))
        known = [s for group in ((".png",), (".jpg", ".jpeg", ".jpe"), (".webp",),
                                 (".gif",)) for s in group]
        if path.suffix.lower() in suffixes:
            pass
        elif path.suffix.lower() in known:
            path = path.with_suffix(suffixes[0])
        else:
            path = path.with_name(path.name + suffixes[0])
    assert name_for_format(name, format) == path.name
    assert with_format_suffix(f"folder/{name}", format).name == path.name


def test_targets_resolve_through_links_to_files_and_folders(tmp_path):
    from editor.engine.export import resolved_targets

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real)
    (real / "a.png").write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(real / "a.png")
    paths = [tmp_path / "via" / "a.png", tmp_path / "via" / "new.png",
             tmp_path / "link.png", tmp_path / "via" / ".", tmp_path / "gone" / "x.png"]
    assert resolved_targets(paths) == [os.path.realpath(p) for p in paths]
    assert resolved_targets(paths)[:3] == [str(real / "a.png"), str(real / "new.png"),
                                           str(real / "a.png")]


def test_target_checks_name_folders_files_and_links_to_folders(tmp_path):
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "to_dir.png").symlink_to(tmp_path / "dir.png")
    (tmp_path / "file").write_bytes(b"x")
    for bad, why in ((tmp_path / "dir.png", "is a folder"),
                     (tmp_path / "to_dir.png", "is a folder"),
                     (tmp_path / "file" / "in" / "x.png", "is a file, not a folder"),
                     (tmp_path / ("n" * 256 + ".png"), "too long"),
                     (tmp_path / "nul\x00.png", "NUL")):
        with pytest.raises(ValueError, match=why):
            check_targets([tmp_path / "fine.png", bad])
    check_targets([tmp_path / "fine.png", tmp_path / "new" / "deeper" / "x.png"])


def test_a_format_the_export_cannot_write_is_refused_before_any_rendering(ctx, session,
                                                                          tmp_path):
    # ExportPlan(kind="sweep") kept its PNG default and failed at the write, after every
    # frame had been rendered
    for kind, fmt in (("sweep", "PNG"), ("image", "GIF"), ("batch", "GIF"),
                      ("image", "TIFF")):
        with pytest.raises(ValueError, match=f"cannot export an? {kind} as '{fmt}'"):
            ExportPlan(kind=kind, path=str(tmp_path / "x"), format=fmt)
    assert ExportPlan(kind="image", path="x", format="jpg").format == "jpg"
    edit_id = session.edits[0].id
    rendered = []
    real = ctx.render
    ctx.render = lambda s: rendered.append(s) or real(s)
    with pytest.raises(ValueError, match="cannot export format 'PNG'"):
        next(alpha_sweep(ctx, session, edit_id, -1, 1, 3, tmp_path / "s.png", format="PNG"))
    with pytest.raises(ValueError, match="cannot export format 'GIF'"):
        next(batch_export(ctx, session, range(2), tmp_path, format="GIF"))
    assert rendered == [] and list(tmp_path.iterdir()) == []


def test_a_target_that_cannot_be_looked_at_still_resolves(tmp_path, monkeypatch):
    # the export dialog resolves the files of running exports as it opens: an lstat that
    # failed (no permission to look) kept it from opening, where realpath never raised
    from editor.engine import export

    target = tmp_path / "x.png"

    def refused(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(export.os, "lstat", refused)
    assert export.resolved_targets([target]) == [os.path.realpath(target)]


def test_a_batch_lists_its_folder_once_not_once_a_file(ctx, session, tmp_path, monkeypatch):
    # Each file's write listed the folder again for a killed write's leftovers: a batch
    # was quadratic in its size (45 ms a file among 100,000 files, twice the demo's render)
    import time

    from editor.core import paths

    folder = tmp_path / "b"
    folder.mkdir()
    day_old = time.time() - paths.STALE_TEMP_S - 60
    stale = folder / ".seed000003.png.0badcafe.tmp"  # a killed batch's, of the 4th file
    stale.write_bytes(b"partial")
    os.utime(stale, (day_old, day_old))
    listed, real = [], os.scandir

    def scandir(path="."):
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _run(batch_export(ctx, session, range(6), folder))
    assert listed.count(str(folder)) == 1
    assert _files(folder) == [f"seed{s:06d}.png" for s in range(6)]  # the leftover gone
