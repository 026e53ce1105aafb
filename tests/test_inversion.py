"""Inversion: metrics, the optimisation on a tiny generator, cancel, the embedded latent,
and `atelier invert` (bad inputs included)."""

from __future__ import annotations

import io
import json
import math
import re
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from editor.core.errors import InversionDivergedError
from editor.core.image_io import read_recipe
from editor.core.image_metrics import psnr, ssim
from editor.engine.compose import EditError, EditingContext, decode_wplus, encode_wplus
from editor.engine.session import RecipeError, Session, Source
from editor.methods.inversion import (
    VGG16_FILE,
    ClipFeatureLoss,
    InversionProgress,
    InversionResult,
    InversionSettings,
    PerceptualLoss,
    VggFeatureLoss,
    invert,
    make_perceptual,
    run_inversion,
    target_tensor,
)
from editor.methods.precompute import Cancelled
from tests.conftest import make_tiny_clip, make_tiny_generator
from tests.test_cli_main import _Terminal

FAST = InversionSettings(steps=60, candidates=8, starts=2, perceptual="none", preview_every=10)


def _target_from(gen, seed: int, psi: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = gen.mapping(torch.randn(1, gen.z_dim, generator=g), psi=psi)
        return gen.synthesize(gen.styles(w)), w


# ----------------------------------------------------------------------------- metrics

def test_psnr_and_ssim_known_values():
    a = torch.zeros(2, 3, 16, 16)
    b = a.clone()
    b[1] += 0.2  # 0.1 in [0, 1] units everywhere: MSE 0.01 -> 20 dB
    p = psnr(a, b)
    assert torch.isinf(p[0]) and p[1].item() == pytest.approx(20.0, abs=1e-4)
    s = ssim(a, b)
    assert s[0].item() == pytest.approx(1.0, abs=1e-6)
    noisy = a + 0.5 * torch.randn_like(a, generator=torch.Generator().manual_seed(0))
    assert ssim(a, noisy.clamp(-1, 1))[0] < 0.5
    with pytest.raises(ValueError):
        psnr(a, b[:, :, :8])


# ----------------------------------------------------------------------------- optimisation

def test_inversion_loss_goes_down_and_reconstructs(tiny_generator):
    gen = tiny_generator
    target, _ = _target_from(gen, 5)
    losses, result = [], None
    for item in invert(gen, target, FAST):
        if isinstance(item, InversionProgress) and item.loss is not None:
            losses.append(item.loss)
            assert item.preview is not None and item.preview.shape == target.shape
        elif isinstance(item, InversionResult):
            result = item
    assert result is not None and len(losses) == 6
    assert losses[-1] < 0.5 * losses[0]
    assert result.wplus.shape == (1, gen.n_latent, gen.w_dim)
    # the stored latent draws the image the quality readout describes
    with torch.no_grad():
        again = gen.synthesize(gen.styles(result.wplus))
    assert torch.allclose(again, result.images, atol=1e-5)
    start = psnr(gen.synthesize(gen.styles(gen.w_avg[None])).detach(), target)
    assert result.quality[0].psnr_db > float(start[0]) + 5


def test_the_candidate_search_reports_each_chunk_it_scored(tiny_generator):
    # at 1024 px on a CPU the search took about two minutes under one unchanging line,
    # "choosing starting points" at 0 %, as if the job had hung
    target, _ = _target_from(tiny_generator, 5)
    settings = InversionSettings(steps=1, candidates=39, perceptual="none")
    messages = []
    for item in invert(tiny_generator, target, settings):
        if isinstance(item, InversionProgress):
            if item.done:
                break
            messages.append(item.message)
    # w_avg and 39 random latents, scored 16 at a time
    assert messages == ["choosing starting points",
                        *(f"choosing starting points ({n} of 40 scored)" for n in (16, 32, 40))]


def test_several_targets_are_inverted_independently(tiny_generator):
    gen = tiny_generator
    t1, _ = _target_from(gen, 1)
    t2, _ = _target_from(gen, 2)
    both = run_inversion(gen, torch.cat([t1, t2]), FAST)
    assert both.wplus.shape[0] == 2
    p_right = psnr(both.images, torch.cat([t1, t2]))
    p_swapped = psnr(both.images, torch.cat([t2, t1]))
    assert (p_right > p_swapped).all()


def test_a_pictures_result_does_not_depend_on_its_batch_mates(tiny_generator):
    # The early latent noise used to be drawn for the whole batch, so a picture inverted
    # alone and the same picture second in a batch of three ended far apart (0.97 in u).
    gen = tiny_generator
    targets = torch.cat([_target_from(gen, s)[0] for s in (1, 2, 3)])
    alone = run_inversion(gen, targets[1:2], FAST)
    together = run_inversion(gen, targets, FAST)
    assert torch.allclose(alone.wplus[0], together.wplus[1], atol=1e-4)
    assert torch.allclose(alone.images[0], together.images[1], atol=1e-4)


def test_clip_perceptual_loss_is_used_and_scored(tiny_generator):
    gen = tiny_generator
    clip = make_tiny_clip()
    target, _ = _target_from(gen, 3)
    loss = make_perceptual("clip", clip)
    assert isinstance(loss, ClipFeatureLoss)
    r = run_inversion(gen, target, InversionSettings(steps=5, candidates=4, perceptual="clip"),
                      clip=clip)
    assert r.perceptual == "clip"
    assert r.quality[0].clip_similarity is not None and -1 <= r.quality[0].clip_similarity <= 1
    assert make_perceptual("auto", None).name in ("none", "vgg")
    with pytest.raises(ValueError):
        make_perceptual("clip", None)


@pytest.fixture(scope="module")
def _torch_home_with_vgg16(tmp_path_factory):
    """A torch home whose hub cache holds torchvision's VGG16 weights file. Random weights
    stand in (only the shapes matter); the classifier, which the loss never uses, as
    stride-0 zeros, so the file is the features' 59 MB, not 528 MB."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    state = {k: v if k.startswith("features.") else v.new_zeros(()).expand(v.shape)
             for k, v in torchvision.models.vgg16().state_dict().items()}
    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / VGG16_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return home


@pytest.fixture
def vgg16_in_torch_cache(_torch_home_with_vgg16, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(_torch_home_with_vgg16))


def test_vgg_perceptual_loss_from_torchvision_weights_inverts(tiny_generator,
                                                             vgg16_in_torch_cache):
    # With torchvision's VGG16 weights in the torch cache "auto" picks the VGG loss, whose
    # network, kept as `self.features`, hid the method features(): every inversion (CLI
    # and window) failed with a size mismatch.
    gen = tiny_generator
    target, _ = _target_from(gen, 8)
    loss = make_perceptual("auto", None)
    assert isinstance(loss, VggFeatureLoss)
    r = run_inversion(gen, target, InversionSettings(steps=3, candidates=4, perceptual="auto",
                                                     preview_every=1))
    assert r.perceptual == "vgg" and math.isfinite(r.quality[0].psnr_db)


def test_vgg_candidate_distances_are_those_of_the_copied_pairs(vgg16_in_torch_cache):
    # The candidate search scores every candidate against every target; it copied each
    # candidate's full-size VGG maps once per target (+0.8 GiB per picture at 256 px).
    # Without the copies, the distances must stay exactly what they were.
    loss = make_perceptual("vgg", None)
    g = torch.Generator().manual_seed(0)
    loss.prepare(torch.rand(3, 3, 32, 32, generator=g) * 2 - 1)
    fx = loss.features(torch.rand(5, 3, 32, 32, generator=g) * 2 - 1)
    all_pairs = (torch.arange(5).repeat(3), torch.arange(3).repeat_interleave(5))
    some_pairs = (torch.tensor([4, 0, 2, 4]), torch.tensor([2, 2, 0, 1]))
    for rows, index in (all_pairs, some_pairs):
        copied = sum((f[rows] - t[index]).square().sum(1).flatten(1).mean(1)
                     for f, t in zip(fx, loss.target, strict=True))
        assert torch.equal(loss.distance(fx, index, rows), copied)


class _ScoredSizes(PerceptualLoss):
    """Its features are the images themselves; it notes the sizes it is prepared on and
    the size of the candidates it scores (the candidate search passes `rows`)."""

    name = "sizes"

    def __init__(self):
        self.prepared, self.scored = [], []  # shared with the copies prepared_for() makes

    def prepare(self, target):
        self.prepared.append(target.shape[-1])

    def features(self, x):
        return x

    def distance(self, fx, index, rows=None):
        if rows is not None:
            self.scored.append(fx.shape[-1])
        return torch.zeros(len(index), device=index.device)


def test_the_candidate_search_scores_perceptual_distances_at_its_own_size():
    # The search renders candidates at 128 px, then upsampled each to full size for the
    # perceptual loss: 16 GiB of VGG16 maps at 1024 px. The targets are scored at 128 px
    # too now, and the optimisation still gets them at full size.
    gen = make_tiny_generator(resolution=256)
    target, _ = _target_from(gen, 3)
    sizes = _ScoredSizes()
    run_inversion(gen, target, InversionSettings(steps=1, candidates=20, preview_every=1),
                  perceptual=sizes)
    assert sizes.scored == [128, 128]  # 21 candidates in chunks of 16
    assert sizes.prepared == [256, 128]


def test_vgg_features_prepared_at_another_size_leave_the_full_size_ones(
        vgg16_in_torch_cache):
    loss = make_perceptual("vgg", None)
    loss.prepare(torch.zeros(2, 3, 128, 128))
    small = loss.prepared_for(torch.zeros(2, 3, 64, 64))
    assert [t.shape[-1] for t in loss.target] == [128, 64, 32, 16, 8]
    assert [t.shape[-1] for t in small.target] == [64, 32, 16, 8, 4]
    assert small.net is loss.net  # one network in memory


def test_a_diverging_optimisation_is_a_clear_error(tiny_generator):
    # Too high a learning rate sent the latents to inf/NaN; the user got a traceback from
    # the preview (FloatingPointError). The advice is the caller's (the CLI's --lr).
    target, _ = _target_from(tiny_generator, 9)
    with pytest.raises(InversionDivergedError, match="diverged .* infinite or NaN"):
        run_inversion(tiny_generator, target, InversionSettings(
            steps=20, lr=1e37, candidates=2, perceptual="none", preview_every=5))


def test_initial_wplus_is_the_start(tiny_generator):
    gen = tiny_generator
    target, w = _target_from(gen, 4)
    r = run_inversion(gen, target, InversionSettings(steps=0, perceptual="none"),
                      initial_wplus=w)
    assert torch.allclose(r.wplus, w, atol=1e-5)
    assert r.quality[0].psnr_db > 60  # steps=0 from the true latent: the same picture
    with pytest.raises(ValueError):
        run_inversion(gen, target, FAST, initial_wplus=w[:, :2])


def test_cancel_stops_with_cancelled(tiny_generator):
    gen = tiny_generator
    target, _ = _target_from(gen, 6)
    token = threading.Event()
    steps = 0
    with pytest.raises(Cancelled):
        for item in invert(gen, target, InversionSettings(steps=500, candidates=4,
                                                          perceptual="none", preview_every=1),
                           cancel=token):
            if isinstance(item, InversionProgress) and item.done >= 3:
                steps = item.done
                token.set()
    assert steps == 3


def test_every_step_moves_the_progress_and_the_loss_is_read_at_previews(tiny_generator):
    # a 1024 px step takes seconds on a CPU: the bar moved only at the previews
    target, _ = _target_from(tiny_generator, 6)
    steps = [item for item in invert(tiny_generator, target, InversionSettings(
                 steps=7, candidates=4, perceptual="none", preview_every=3))
             if isinstance(item, InversionProgress) and item.message.startswith("step")]
    assert [p.done for p in steps] == list(range(1, 8))
    assert [p.preview is not None for p in steps] == [False, False, True] * 2 + [True]
    assert [p.loss is not None for p in steps] == [False, False, True] * 2 + [True]
    assert steps[0].message == "step 1/7"
    # the loss last read stays in the message until the next read
    assert steps[3].message == f"step 4/7, loss {steps[2].loss:.4f}"
    assert all(p.eta_s is not None for p in steps[1:])


def test_bad_targets_are_refused(tiny_generator):
    with pytest.raises(ValueError, match="square"):
        target_tensor(np.zeros((10, 12, 3), np.uint8), 16)
    with pytest.raises(ValueError):
        target_tensor(np.zeros((10, 10), np.uint8), 16)
    with pytest.raises(ValueError):
        run_inversion(tiny_generator, torch.zeros(1, 3, 8, 8), FAST)
    with pytest.raises(ValueError):
        InversionSettings(perceptual="lpips-please")
    up = target_tensor(np.full((8, 8, 3), 255, np.uint8), 16)
    assert up.shape == (1, 3, 16, 16) and torch.allclose(up, torch.ones_like(up))


# ----------------------------------------------------------------------------- the source

def test_embedded_latent_round_trips_exactly_through_a_recipe(tiny_generator):
    gen = tiny_generator
    _, w = _target_from(gen, 7)
    text = encode_wplus(w)
    source = Source(kind="wplus", wplus_data=text, label="me.jpg")
    session = Session(source=source)
    recipe = json.loads(session.to_json())
    assert recipe["version"] == 3  # one w in every row: packed compressed (f32z)
    back = Session.from_json(session.to_json())
    assert back.source == source
    assert torch.equal(decode_wplus(back.source.wplus_data, gen.n_latent, gen.w_dim), w)
    ctx = EditingContext(gen)
    with torch.no_grad():
        direct = gen.synthesize(gen.styles(w))
    assert torch.equal(ctx.render(back), direct)
    # a seed recipe stays version 1 and carries no latent field (older readers take it)
    plain = json.loads(Session().to_json())
    assert plain["version"] == 1 and "wplus_data" not in plain["source"]


@pytest.mark.parametrize("text, match", [
    ("f32:2x3:AAAA", "shape"),
    ("nonsense", "malformed"),
    ("f32:{L}x{D}:AAAA", "truncated"),
])
def test_malformed_embedded_latents_are_clear_errors(tiny_generator, text, match):
    gen = tiny_generator
    text = text.format(L=gen.n_latent, D=gen.w_dim)
    with pytest.raises(EditError, match=match):
        decode_wplus(text, gen.n_latent, gen.w_dim)


def test_non_finite_embedded_latent_is_refused(tiny_generator):
    gen = tiny_generator
    w = torch.zeros(1, gen.n_latent, gen.w_dim)
    w[0, 0, 0] = float("nan")
    with pytest.raises(EditError, match="non-finite"):
        decode_wplus(encode_wplus(w), gen.n_latent, gen.w_dim)


def test_a_wplus_source_needs_a_latent():
    with pytest.raises(RecipeError):
        Source(kind="wplus")


# ----------------------------------------------------------------------------- the CLI

def _demo_args(tmp_path, *extra):
    return ["invert", *extra, "--steps", "3", "--candidates", "2", "--starts", "1",
            "--perceptual", "none"]


def _picture(tmp_path, name="face.png", size=(80, 60)):
    rng = np.random.default_rng(0)
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


def test_cli_inverts_writes_a_reproducible_png_and_latent(tmp_path, capsys):
    from editor.cli import main

    pic = _picture(tmp_path)
    out = tmp_path / "inv.png"
    rc = main(_demo_args(tmp_path, str(pic), "-o", str(out), "--latents",
                         "--json", str(tmp_path / "q.json")))
    assert rc == 0, capsys.readouterr().err
    assert "PSNR" in capsys.readouterr().out
    recipe = read_recipe(out)
    session = Session.from_json(recipe)
    assert session.source.kind == "wplus" and session.source.wplus_data
    assert session.source.label == "face.png"
    w = np.load(tmp_path / "inv.npy")
    assert w.shape == (10, 128)
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["images"][0]["psnr_db"] > 0
    # replaying the recipe gives the reconstruction's pixels
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(out), "-o", str(again)]) == 0
    assert np.array_equal(np.array(Image.open(again)), np.array(Image.open(out)))


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"not an image at all"), "not an image|cannot identify|unknown"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20), "bad.png"),
    (lambda p: None, "no such file|does not exist|not found"),
])
def test_cli_refuses_bad_pictures_and_writes_nothing(tmp_path, capsys, make, match):
    from editor.cli import main

    pic = tmp_path / "bad.png"
    make(pic)
    out = tmp_path / "out.png"
    rc = main(_demo_args(tmp_path, str(pic), "-o", str(out)))
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("atelier invert:")
    assert re.search(match, err, re.IGNORECASE), err
    assert not out.exists()


def test_cli_zero_steps_keep_the_best_start_and_never_say_done_before_it(tmp_path, capsys):
    # `atelier invert --steps 0` said 100 % from its first line, while it was still
    # choosing the starting points (a total of 0 steps read as all done)
    from editor.cli import main

    out = tmp_path / "inv.png"
    assert main(["invert", str(_picture(tmp_path)), "-o", str(out), "--steps", "0",
                 "--candidates", "20", "--perceptual", "none"]) == 0
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if line.startswith("inverting 1 of 1:")]
    assert progress and all(" 0.0% choosing starting points" in line for line in progress)
    assert "100.0%" not in "\n".join(lines)
    # no optimisation: the best of the starting points, as it is, in a replayable recipe
    assert Session.from_json(read_recipe(out)).source.kind == "wplus"


def test_cli_crop_box_must_be_square(tmp_path, capsys):
    from editor.cli import main

    pic = _picture(tmp_path)
    rc = main(_demo_args(tmp_path, str(pic), "-o", str(tmp_path / "o.png"),
                         "--crop", "0,0,30,20"))
    assert rc == 1 and "square" in capsys.readouterr().err


def test_cli_never_overwrites_unless_asked(tmp_path, capsys):
    from editor.cli import main

    pic = _picture(tmp_path)
    out = tmp_path / "o.png"
    out.write_bytes(b"mine")
    assert main(_demo_args(tmp_path, str(pic), "-o", str(out))) == 1
    assert out.read_bytes() == b"mine"
    assert "exists" in capsys.readouterr().err


def test_cli_refuses_outputs_that_cannot_or_must_not_be_written_before_any_work(
        tmp_path, capsys, monkeypatch):
    import editor.cli.invert as invert_cli
    from editor.cli import main

    def no_pack(*_a, **_k):
        raise AssertionError("the model was opened before the outputs were checked")

    monkeypatch.setattr(invert_cli, "open_pack", no_pack)
    pic = _picture(tmp_path)
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["-o", str(pic), "--overwrite"], "one of the pictures being inverted"),
        (["--out-dir", str(tmp_path), "--overwrite"], "one of the pictures being inverted"),
        (["-o", str(tmp_path / "o.png"), "--json", str(tmp_path / "a_folder")], "is a folder"),
        (["--out-dir", str(tmp_path / "a_file")], "is a file, not a folder"),
        (["-o", str(tmp_path / "o.txt")], "unknown extension"),
        # the readout would have replaced the picture (or the latent) just written
        (["-o", str(tmp_path / "k.png"), "--json", str(tmp_path / "k.png")],
         "named for two of the outputs"),
        (["-o", str(tmp_path / "j.png"), "--latents", "--json", str(tmp_path / "j.npy")],
         "named for two of the outputs"),
        (["-o", str(tmp_path / "o.png"), "--crop=-10,-10,40,40"], "not inside"),
        (["-o", str(tmp_path / "o.png"), "--crop", "50,10,90,50"], "not inside"),
    ]
    for extra, match in cases:
        assert main(_demo_args(tmp_path, str(pic), *extra)) == 1, extra
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err, (extra, err)
    assert Image.open(pic).size == (80, 60)  # the picture itself is untouched


def test_cli_names_the_pictures_that_would_share_an_output_and_odd_names_stay_one_line(
        tmp_path, capsys, monkeypatch):
    # "two pictures share a file name" named neither; a newline or an invisible character
    # in a name went into the terminal as is, breaking its line (helper-121)
    from editor.cli import invert as invert_cli
    from editor.cli import main
    from editor.cli.outputs import shown

    monkeypatch.setattr(invert_cli, "open_pack", lambda *a, **k: pytest.fail("opened"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _picture(tmp_path / "a"), _picture(tmp_path / "b")
    assert main(_demo_args(tmp_path, str(first), str(second), "--out-dir",
                           str(tmp_path / "out"))) == 1
    err = capsys.readouterr().err
    assert f"{first} and {second} would both be written as face.png" in err
    assert shown("/x/odd\u200bname\n.png") == "/x/odd\\u200bname\\n.png"
    assert shown("/x/ünïcode name.png") == "/x/ünïcode name.png"  # printable: as it is


def test_cli_crop_box_is_in_the_files_pixels_even_when_it_is_read_downscaled(tmp_path):
    from editor.cli.invert import _crop_of
    from editor.core.image_io import DEFAULT_MAX_AREA

    side = 2 * math.isqrt(DEFAULT_MAX_AREA)  # read at half size
    rgb = np.zeros((side, side, 3), np.uint8)
    rgb[side // 2:, side // 2:] = 255  # the bottom-right quarter is white
    path = tmp_path / "big.png"
    Image.fromarray(rgb).save(path)
    crop = _crop_of(str(path), (side // 2, side // 2, side, side))
    assert crop[8:, 8:].min() == 255 and crop.mean() > 250  # the quarter asked for
    assert crop.shape[0] <= 1024  # kept small until it is inverted


def test_cli_square_crop_stays_square_when_the_picture_is_read_downscaled(tmp_path,
                                                                          monkeypatch):
    # A 6000x4000 photo is read at 5017x3344: a square box touching its bottom edge, scaled
    # by the widths' factor, rounded past the edge and was cut 669x668 ("crop the image to
    # a square first"). Here at a tenth of the size, read at the same ratio.
    import functools

    import editor.cli.invert as invert_cli
    from editor.core.image_io import DEFAULT_MAX_AREA, load_image

    rgb = np.zeros((400, 600, 3), np.uint8)
    rgb[320:, 200:280] = 255  # the box asked for is white
    path = tmp_path / "wide.png"
    Image.fromarray(rgb).save(path)
    monkeypatch.setattr(invert_cli, "load_image",
                        functools.partial(load_image, max_area=DEFAULT_MAX_AREA // 100))
    crop = invert_cli._crop_of(str(path), (200, 320, 280, 400))
    assert crop.shape == (67, 67, 3)
    assert crop[2:, 2:-2].min() > 200  # the white box, not its black surroundings
    assert invert_cli._scaled_square((2000, 3200, 2800, 4000), (6000, 4000), (5017, 3344)) \
        == (1672, 2675, 2341, 3344)


def test_cli_divergence_is_a_one_line_error(tmp_path, capsys):
    from editor.cli import main

    pic = _picture(tmp_path)
    out = tmp_path / "o.png"
    assert main(["invert", str(pic), "-o", str(out), "--lr", "1e37", "--steps", "40",
                 "--candidates", "2", "--perceptual", "none"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "try a lower --lr than 1e+37" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("failure", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    # what torch's CPU allocator raises: a plain RuntimeError (a traceback before)
    RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                 "allocate memory: you tried to allocate 21474836480 bytes")])
def test_cli_running_out_of_memory_gives_advice_that_fits(tmp_path, capsys, monkeypatch,
                                                          failure):
    import editor.cli.invert as invert_cli
    from editor.cli import main

    def out_of_memory(*_a, **_k):
        raise failure
        yield

    monkeypatch.setattr(invert_cli, "invert_images", out_of_memory)
    out = tmp_path / "o.png"
    pictures = [str(_picture(tmp_path, f"p{i}.png")) for i in range(3)]
    assert main(_demo_args(tmp_path, *pictures, "--out-dir", str(tmp_path / "out"),
                           "--batch", "3")) == 1
    err = capsys.readouterr().err
    assert "out of memory; invert fewer pictures at once (--batch 1)" in err
    assert "Traceback" not in err
    assert main(_demo_args(tmp_path, pictures[0], "-o", str(out))) == 1  # one: no batch to cut
    err = capsys.readouterr().err
    assert "even one picture at a time does not fit" in err and not out.exists()


def test_cli_out_of_memory_with_the_vgg_loss_advises_the_clip_loss(tmp_path, capsys,
                                                                    monkeypatch,
                                                                    vgg16_in_torch_cache):
    # The VGG loss doubles what an optimisation step holds at 1024 px, but the advice
    # named only --starts and --candidates.
    import editor.cli.invert as invert_cli
    from editor.cli import main

    def out_of_memory(*_a, **_k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    monkeypatch.setattr(invert_cli, "invert_images", out_of_memory)
    picture = str(_picture(tmp_path))
    for perceptual, advised in (("auto", True), ("vgg", True), ("clip", False),
                                ("none", False)):
        # after _demo_args' own --perceptual none: the last one counts
        assert main([*_demo_args(tmp_path, picture, "-o", str(tmp_path / "o.png")),
                     "--perceptual", perceptual]) == 1
        err = capsys.readouterr().err
        assert "even one picture at a time does not fit" in err
        assert ("or --perceptual clip" in err) == advised, (perceptual, err)


def test_an_error_that_is_not_memory_stays_a_traceback(tmp_path, monkeypatch):
    import editor.cli.invert as invert_cli
    from editor.cli import main

    def broken(*_a, **_k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
        yield

    monkeypatch.setattr(invert_cli, "invert_images", broken)
    with pytest.raises(RuntimeError, match="shapes"):
        main(_demo_args(tmp_path, str(_picture(tmp_path)), "-o", str(tmp_path / "o.png")))


def test_cli_default_batch_fits_the_generator(tmp_path, capsys, monkeypatch):
    # 16 pictures x 2 starts per step, fine at 64 px, need tens of GB at 1024 px.
    from types import SimpleNamespace

    import editor.cli.invert as invert_cli
    from editor.cli import main
    from editor.core.checkpoints import load_generator
    from editor.core.generator import GeneratorConfig
    from editor.engine.models import DEMO_GENERATOR
    from editor.methods.inversion import suggested_pictures_per_batch

    demo = load_generator(DEMO_GENERATOR).generator
    assert suggested_pictures_per_batch(demo, starts=2) == 16
    ffhq = SimpleNamespace(config=GeneratorConfig(resolution=1024))
    assert suggested_pictures_per_batch(ffhq, starts=2) == 1

    batches = []
    real = invert_cli.invert_images

    def spy(pack, crops, *args, **kwargs):
        batches.append(len(crops))
        yield from real(pack, crops, *args, **kwargs)

    monkeypatch.setattr(invert_cli, "invert_images", spy)
    monkeypatch.setattr(invert_cli, "suggested_pictures_per_batch", lambda gen, starts: 2)
    pics = [str(_picture(tmp_path, f"p{i}.png")) for i in range(3)]
    out = str(tmp_path / "out")
    assert main(_demo_args(tmp_path, *pics, "--out-dir", out)) == 0, capsys.readouterr().err
    assert main(_demo_args(tmp_path, *pics, "--out-dir", out, "--overwrite",
                           "--batch", "3")) == 0
    assert batches == [2, 1, 3]


def test_cli_reconstructions_replay_exactly_after_a_batched_inversion(tmp_path, capsys):
    """Several starts and pictures optimise in one batch; each saved picture is what its
    recipe replays (it was the batch render, a level off in a few pixels)."""
    from editor.cli import main

    pics = [_picture(tmp_path, f"p{i}.png", size=(40 + 10 * i, 50)) for i in range(3)]
    out = tmp_path / "out"
    rc = main(["invert", *map(str, pics), "--out-dir", str(out), "--steps", "3",
               "--candidates", "6", "--starts", "3", "--perceptual", "none"])
    assert rc == 0, capsys.readouterr().err
    for pic in pics:
        saved = out / f"{pic.stem}.png"
        again = tmp_path / f"again-{pic.stem}.png"
        assert main(["edit", "--recipe", str(saved), "-o", str(again)]) == 0
        assert np.array_equal(np.array(Image.open(again)), np.array(Image.open(saved)))


def test_cli_writes_a_whole_batch_and_prints_names_that_are_not_utf8(tmp_path, capsys):
    # a Latin-1 name (legal on Linux) was printed raw: the print failed once its picture
    # was written, and the rest of the batch was not
    import os

    from editor.cli import main

    odd = _picture(tmp_path, os.fsdecode(b"caf\xe9.png"))
    pics = [str(odd), str(_picture(tmp_path, "b.png")), str(_picture(tmp_path, "c.png"))]
    out = tmp_path / "out"
    assert main(_demo_args(tmp_path, *pics, "--out-dir", str(out), "--batch", "3")) == 0, \
        capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "c.png", odd.name]
    assert "caf\ufffd.png: PSNR" in capsys.readouterr().out


def test_cli_seed_beyond_the_largest_is_refused_before_any_work(tmp_path, capsys):
    # 2**64 - 1 was taken, and the inversion failed at its start ("Overflow when
    # unpacking long long") once the models were open
    from editor.cli import main
    from editor.engine.session import MAX_SEED

    pic, out = _picture(tmp_path), tmp_path / "o.png"
    with pytest.raises(SystemExit):
        main(_demo_args(tmp_path, str(pic), "-o", str(out), "--seed", str(2**64 - 1)))
    assert f"use from 0 to {MAX_SEED}" in capsys.readouterr().err and not out.exists()
    assert main(_demo_args(tmp_path, str(pic), "-o", str(out), "--seed", str(MAX_SEED))) == 0


def _spy_on_reads_and_batches(monkeypatch):
    """Record, at each batch inverted, how many pictures had been read for inversion so
    far and how many of their crops were still alive."""
    import gc
    import weakref

    import editor.cli.invert as invert_cli

    reads: list[weakref.ref] = []
    batches: list[tuple[int, int, int]] = []  # (pictures, read so far, crops alive)
    real_crop, real_invert = invert_cli._crop_of, invert_cli.invert_images

    def crop_of(*args, **kwargs):
        crop = real_crop(*args, **kwargs)
        reads.append(weakref.ref(crop))
        return crop

    def invert_images(pack, crops, *args, **kwargs):
        gc.collect()
        batches.append((len(crops), len(reads), sum(r() is not None for r in reads)))
        yield from real_invert(pack, crops, *args, **kwargs)

    monkeypatch.setattr(invert_cli, "_crop_of", crop_of)
    monkeypatch.setattr(invert_cli, "invert_images", invert_images)
    return batches


def test_cli_reads_each_batchs_pictures_just_before_inverting_it(tmp_path, capsys,
                                                                   monkeypatch):
    # Every crop (up to 1024 px, 3 MiB) was read and held before the first batch: a
    # thousand photos held 3 GB, after minutes of reading with nothing inverted.
    from editor.cli import main

    batches = _spy_on_reads_and_batches(monkeypatch)
    pics = [str(_picture(tmp_path, f"p{i}.png")) for i in range(5)]
    rgba = np.zeros((30, 30, 4), np.uint8)  # a note, said once although read twice
    Image.fromarray(rgba).save(tmp_path / "p1.png")
    out = tmp_path / "out"
    assert main(_demo_args(tmp_path, *pics, "--out-dir", str(out), "--batch", "2")) == 0, \
        capsys.readouterr().err
    # read a batch at a time, each batch's crops let go before the next is read
    assert batches == [(2, 2, 2), (2, 4, 2), (1, 5, 1)]
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}.png" for i in range(5)]
    assert capsys.readouterr().err.count("p1.png: alpha flattened") == 1


def test_cli_refuses_a_bad_picture_among_many_before_any_inversion(tmp_path, capsys,
                                                                    monkeypatch):
    from editor.cli import main

    batches = _spy_on_reads_and_batches(monkeypatch)
    pics = [str(_picture(tmp_path, f"p{i}.png")) for i in range(4)]
    (tmp_path / "p3.png").write_bytes(b"not a picture")  # the last, in the last batch
    out = tmp_path / "out"
    assert main(_demo_args(tmp_path, *pics, "--out-dir", str(out), "--batch", "1")) == 1
    err = capsys.readouterr().err
    assert "atelier invert: " in err and "p3.png" in err and "Traceback" not in err
    assert batches == [] and not out.exists()


def test_cli_says_when_a_crop_is_enlarged_for_the_generator(tmp_path, capsys):
    # the crop dialog says "enlarged 64.0x for the generator"; the CLI said nothing
    from editor.cli import main

    tiny, big = _picture(tmp_path, "tiny.png", (1, 1)), _picture(tmp_path, "big.png", (90, 70))
    assert main(_demo_args(tmp_path, str(tiny), str(big), "--out-dir",
                           str(tmp_path / "out"))) == 0
    err = capsys.readouterr().err
    assert "tiny.png: enlarged from 1x1 to 64x64 for the generator (64.0x)" in err
    assert "big.png: enlarged" not in err  # 70 px, reduced to the generator's 64


def test_cli_tells_what_was_done_to_a_picture(tmp_path, capsys):
    from editor.cli.invert import _crop_of

    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 3] = 128
    path = tmp_path / "half.png"
    Image.fromarray(rgba).save(path)
    _crop_of(str(path), None)
    assert "half.png:" in capsys.readouterr().err  # e.g. its transparency was flattened


def test_cli_shows_progress_while_it_checks_many_pictures(tmp_path, monkeypatch):
    # a thousand photos were all read before any work with nothing on the screen
    from editor.cli.invert import _check_pictures

    pics = [str(_picture(tmp_path, f"p{i}.png")) for i in range(3)]
    Image.fromarray(np.zeros((30, 30, 4), np.uint8)).save(tmp_path / "p1.png")
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    _check_pictures(pics, None)
    lines = log.getvalue().splitlines()
    assert lines[0] == "checking pictures: 1 of 3 p0.png"
    assert "p1.png: alpha flattened" in log.getvalue()
    assert lines[-1] == "checking pictures: 3 of 3 p2.png"

    tty = _Terminal()  # a note is a line of its own, not written over the progress
    monkeypatch.setattr(sys, "stderr", tty)
    _check_pictures(pics, None)
    text = tty.getvalue()
    assert text.startswith("\rchecking pictures: 1 of 3 p0.png\x1b[K")
    assert "\x1b[K\np1.png: alpha flattened" in text  # (later redraws may be too soon)
    assert text.endswith("\n")

    one = io.StringIO()  # one picture: no progress line
    monkeypatch.setattr(sys, "stderr", one)
    _check_pictures(pics[:1], None)
    assert one.getvalue() == ""


def test_a_real_generator_is_not_given_the_demo_clip(tmp_path, capsys, monkeypatch):
    # Without CLIP options the demo CLIP (64 px cartoons) was used for any generator: a
    # real generator's edits and inversions were steered by it, and its recipe named it.
    import argparse

    from editor.cli import main
    from editor.cli.model_options import clip_source
    from editor.core.checkpoints import save_generator
    from editor.engine import packs
    from editor.engine.models import DEMO_GENERATOR
    from tests.conftest import make_tiny_generator

    none = argparse.Namespace(clip_file=None, clip_arch=None, clip_pretrained=None)
    assert clip_source(none, DEMO_GENERATOR) == packs.demo_clip_source()
    gen = save_generator(make_tiny_generator(resolution=16), tmp_path / "real.safetensors")
    assert clip_source(none, gen) == packs.REFERENCE_CLIP

    # the reference CLIP is not on this machine: inversion goes on without CLIP features
    monkeypatch.setattr(packs, "REFERENCE_CLIP",
                        packs.ClipSource(path=str(tmp_path / "no-such-clip.safetensors")))
    out = tmp_path / "inv.png"
    rc = main(_demo_args(tmp_path, str(_picture(tmp_path)), "--generator", str(gen),
                         "-o", str(out)))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "no CLIP model" in captured.err
    assert Session.from_json(read_recipe(out)).clip is None
    # ... while a text edit, which needs one, says so in one line
    rc = main(["edit", "--generator", str(gen), "--seed", "1", "--target", "a smile",
               "-o", str(tmp_path / "edit.png")])
    err = capsys.readouterr().err
    assert rc != 0 and "no-such-clip" in err and "Traceback" not in err
