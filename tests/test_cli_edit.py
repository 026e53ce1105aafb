"""`atelier edit` end to end on tiny models: edits, recipe in the PNG, exact replay."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from editor.cli import main
from editor.core.checkpoints import save_generator
from editor.core.image_io import read_recipe
from editor.engine.compose import encode_wplus
from editor.engine.models import DEMO_GENERATOR
from editor.engine.renderer import rendering_platform
from editor.engine.session import Edit, ModelIdentity, Session, Source
from tests.conftest import make_tiny_clip, make_tiny_generator


@pytest.fixture
def models(tmp_path):
    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    return ["--generator", str(gen), "--clip-file", str(clip), "--precompute-images", "3",
            "--stats-samples", "500"]


def test_edit_writes_a_png_with_its_recipe_and_replays_exactly(tmp_path, models, capsys):
    out = tmp_path / "out.png"
    rc = main(["edit", "--seed", "7", "--neutral", "face", "--target", "face with glasses",
               "--alpha", "4", "--auto-beta", "--neutral", "face", "--target", "smiling face",
               "--alpha", "-2", "--beta", "0.01", *models, "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    session = Session.from_json(read_recipe(out))
    assert [e.params["target"] for e in session.edits] == ["face with glasses", "smiling face"]
    assert [e.strength for e in session.edits] == [4.0, -2.0]
    assert session.edits[0].params.get("auto_beta") and session.edits[1].params["beta"] == 0.01
    assert session.source.seed == 7 and session.generator.content_hash
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(out), *models, "-o", str(again)]) == 0
    a, b = np.asarray(Image.open(out)), np.asarray(Image.open(again))
    assert a.shape == (8, 8, 3) and np.array_equal(a, b)
    plain = tmp_path / "plain.png"
    assert main(["edit", "--seed", "7", *models, "-o", str(plain)]) == 0
    assert not np.array_equal(np.asarray(Image.open(plain)), a), "the edits changed nothing"
    # the recipe's text pasted into a file of another name replays too (it was "not an
    # image format this program can read")
    pasted = tmp_path / "recipe.txt"
    pasted.write_text("\n" + read_recipe(out), encoding="utf-8")
    third = tmp_path / "third.png"
    assert main(["edit", "--recipe", str(pasted), *models, "-o", str(third)]) == 0
    assert np.array_equal(np.asarray(Image.open(third)), a)


def test_edit_errors_are_one_clear_line(tmp_path, models, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"existing")
    assert main(["edit", "--seed", "1", *models, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    # the option that allows it, by name, and no other advice (the window's choice)
    assert err == f"atelier edit: {out} exists; pass --overwrite to replace it\n"
    assert out.read_bytes() == b"existing"
    notes = tmp_path / "notes.png"
    Image.new("RGB", (4, 4)).save(notes)
    assert main(["edit", "--recipe", str(notes), *models, "-o", str(tmp_path / "x.png")]) == 1
    assert "carries no Latent Atelier recipe" in capsys.readouterr().err
    assert main(["edit", "--alpha", "3", *models, "-o", str(tmp_path / "y.png")]) == 1
    assert "--target" in capsys.readouterr().err
    rc = main(["edit", "--target", "a smiling face", "--beta", "5", *models, "-o",
               str(tmp_path / "z.png")])
    assert rc == 1 and "no style channel passes beta" in capsys.readouterr().err
    assert not (tmp_path / "z.png").exists()


@pytest.mark.parametrize("argv,match", [
    (["--target", "a smile", "--alpha", "nan"], "--alpha: 'nan' is not a finite number"),
    (["--target", "a smile", "--alpha", "1e30"], "--alpha: 1e30 is out of range (use -100 "
                                                  "to 100)"),
    (["--psi", "inf"], "--psi: 'inf' is not a finite number"),
    (["--seed", "-5"], "--seed: -5 is out of range"),
    (["--scale", "0"], "--scale: 0 is out of range"),
    (["--scale", "100000"], "--scale: 100000 is out of range"),
    (["--target", "a smile", "--beta", "-1"], "--beta: -1 is negative"),
    (["--precompute-images", "100000"], "--precompute-images: 100000 is out of range"),
])
def test_bad_numbers_are_refused_when_the_command_is_read(tmp_path, models, capsys, argv,
                                                          match):
    with pytest.raises(SystemExit) as exit_info:
        main(["edit", *argv, *models, "-o", str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv,match", [
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["--device", "meta"], "is not supported"),
    (["--seed", "1", "--wplus", "w.npy"], "not both"),
    (["--target", "a smile", "--beta", "0.1", "--auto-beta"], "--beta or --auto-beta"),
    (["--target", "a smile", "--gate", "--no-gate"], "--gate or --no-gate"),
])
def test_contradictory_or_impossible_options_are_one_clear_line(tmp_path, models, capsys,
                                                                 argv, match):
    assert main(["edit", *argv, *models, "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_clip_options_need_each_other(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["edit", "--clip-pretrained", "openai", "-o", out]) == 1
    assert "--clip-pretrained needs --clip-arch" in capsys.readouterr().err
    assert main(["edit", "--clip-arch", "ViT-B-32", "-o", out]) == 1
    assert "--clip-arch needs --clip-pretrained" in capsys.readouterr().err
    # edit and invert took both and drew with the file, the tag silently ignored
    for command in (["edit"], ["invert", "face.png"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--clip-file", __file__, "--clip-arch", "ViT-B-32",
                  "--clip-pretrained", "openai", "-o", out])
        assert exit_info.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err


def test_a_recipe_replay_refuses_options_it_would_ignore(tmp_path, models, capsys):
    out = tmp_path / "out.png"
    assert main(["edit", "--seed", "3", *models, "-o", str(out)]) == 0
    for extra in (["--seed", "9"], ["--target", "a smile", "--alpha", "9"]):
        assert main(["edit", "--recipe", str(out), *extra, *models, "-o",
                     str(tmp_path / "y.png")]) == 1
        assert "cannot be combined" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()


def test_the_output_is_checked_before_any_work(tmp_path, models, capsys, monkeypatch):
    import editor.cli.edit as edit_cli

    def no_pack(*_a, **_k):
        raise AssertionError("the pack was opened before the output was checked")

    monkeypatch.setattr(edit_cli, "open_pack", no_pack)
    (tmp_path / "taken.png").write_bytes(b"mine")
    cases = (("taken.png", "exists"),
             ("out.gif", "unknown extension '.gif'; name it with one of .jpe, .jpeg, .jpg, .png"),
             (".", "it is a folder"), ("a" * 300 + ".png", "Cannot export"))
    for name, match in cases:
        assert main(["edit", "--seed", "1", *models, "-o", str(tmp_path / name)]) == 1
        assert match in capsys.readouterr().err
    assert (tmp_path / "taken.png").read_bytes() == b"mine"


def test_a_long_but_valid_output_name_is_written(tmp_path, models):
    out = tmp_path / ("b" * 245 + ".png")  # 249 bytes: within the file system's 255
    assert main(["edit", "--seed", "1", *models, "-o", str(out)]) == 0
    assert Image.open(out).size == (8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.safetensors",
                                                                 "clip.safetensors",
                                                                 out.name])


def test_a_wplus_recipe_carries_the_latent_and_replays_after_the_file_changes(
        tmp_path, models):
    from editor.core.checkpoints import load_generator

    gen = load_generator(models[1]).generator
    path = tmp_path / "w.npy"
    rng = np.random.default_rng(0)
    np.save(path, (0.1 * rng.standard_normal((gen.n_latent, gen.w_dim))).astype(np.float32))
    out, again = tmp_path / "w.png", tmp_path / "again.png"
    assert main(["edit", "--wplus", str(path), *models, "-o", str(out)]) == 0
    np.save(path, np.zeros((gen.n_latent, gen.w_dim), np.float32))
    assert main(["edit", "--recipe", str(out), *models, "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    assert Session.from_json(read_recipe(out)).source.wplus_data


def test_a_picture_whose_recipe_carries_a_latent_is_taken_as_wplus(tmp_path, models,
                                                                    capsys):
    # `atelier invert`'s output carries the W+ it found; --wplus said "not a saved latent"
    from editor.core.checkpoints import load_generator

    gen = load_generator(models[1]).generator
    rng = np.random.default_rng(1)
    np.save(tmp_path / "w.npy", rng.standard_normal((gen.n_latent, gen.w_dim)).astype("f4"))
    made, again = tmp_path / "made.png", tmp_path / "again.png"
    assert main(["edit", "--wplus", str(tmp_path / "w.npy"), *models, "-o", str(made)]) == 0
    assert main(["edit", "--wplus", str(made), *models, "-o", str(again)]) == 0, \
        capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(again)))
    assert Session.from_json(read_recipe(again)).source.label == "made.png"
    seeded = tmp_path / "seeded.png"
    assert main(["edit", "--seed", "2", *models, "-o", str(seeded)]) == 0
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    for picture, words in ((seeded, f"replay it with --recipe {seeded}"),
                           (tmp_path / "photo.png", "invert it first")):
        assert main(["edit", "--wplus", str(picture), *models, "-o", str(tmp_path / "x.png")]) \
            == 1
        assert words in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_recipe_too_large_for_the_file_is_a_warning(tmp_path, models, capsys):
    out = tmp_path / "big.jpg"
    assert main(["edit", "--target", "smiling face " * 6000, "--alpha", "1", *models,
                 "-o", str(out)]) == 0
    assert "too large" in capsys.readouterr().err
    assert read_recipe(out) is None


def test_an_upscaled_export_replays_at_its_scale_and_filter(tmp_path, models, capsys):
    # The recipe records the upscale; a replay used to write the 1x render instead.
    out = tmp_path / "big.png"
    assert main(["edit", "--seed", "3", "--target", "smiling face", "--auto-beta", *models,
                 "--scale", "4", "--upscale-filter", "nearest", "-o", str(out)]) == 0
    recipe = json.loads(read_recipe(out))
    assert recipe["output"] == {"scale": 4, "upscale_filter": "nearest",
                                "rendered_on": rendering_platform(torch.device("cpu"))}
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(out), *models, "-o", str(again)]) == 0
    a, b = np.asarray(Image.open(out)), np.asarray(Image.open(again))
    assert a.shape == (32, 32, 3) and np.array_equal(a, b)
    assert json.loads(read_recipe(again))["output"] == recipe["output"]
    # options still win over the recorded settings
    small = tmp_path / "small.png"
    assert main(["edit", "--recipe", str(out), *models, "--scale", "1", "-o", str(small)]) == 0
    assert np.asarray(Image.open(small)).shape == (8, 8, 3)
    assert list(json.loads(read_recipe(small))["output"]) == ["rendered_on"]
    smooth = tmp_path / "smooth.png"
    assert main(["edit", "--recipe", str(out), *models, "--upscale-filter", "lanczos",
                 "-o", str(smooth)]) == 0
    assert np.asarray(Image.open(smooth)).shape == (32, 32, 3)
    assert not np.array_equal(np.asarray(Image.open(smooth)), a)


def test_a_replay_elsewhere_says_the_picture_may_differ(tmp_path, models, capsys):
    # "Reproduces exactly on the same device": nothing said which device drew a file,
    # so a replay on another one could not tell why its pixels differed.
    out = tmp_path / "out.png"
    assert main(["edit", "--seed", "3", *models, "-o", str(out)]) == 0
    recipe = json.loads(read_recipe(out))
    assert recipe["output"]["rendered_on"]["device"] == "cpu"
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(out), *models, "-o", str(again)]) == 0
    assert "drawn elsewhere" not in capsys.readouterr().err  # same device: no note
    recipe["output"]["rendered_on"] = {"device": "cuda", "name": "NVIDIA H100 80GB HBM3",
                                       "torch": "2.14.1+cu130"}
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(recipe), encoding="utf-8")
    assert main(["edit", "--recipe", str(moved), *models, "-o", str(tmp_path / "3.png")]) == 0
    err = capsys.readouterr().err
    assert ("note: the recipe's picture was drawn elsewhere (device cuda there, cpu here): "
            "this one may differ from it slightly") in err
    recipe["output"]["rendered_on"] = ["not", "a", "platform"]  # ignored, not refused
    moved.write_text(json.dumps(recipe), encoding="utf-8")
    assert main(["edit", "--recipe", str(moved), *models, "-o", str(tmp_path / "4.png")]) == 0
    assert "drawn elsewhere" not in capsys.readouterr().err


@pytest.mark.parametrize("block, match", [
    ({"scale": 0}, "scale must be a whole number from 1 to 8"),
    ({"scale": 9}, "scale must be a whole number from 1 to 8"),
    ({"scale": "2"}, "scale must be a whole number"),
    ({"scale": True}, "scale must be a whole number"),
    ({"scale": 2, "upscale_filter": "magic"}, "upscale filter must be one of"),
    ([2], "output settings are malformed"),
])
def test_a_recipes_bad_output_settings_are_refused_before_any_work(
        tmp_path, models, capsys, monkeypatch, block, match):
    import editor.cli.edit as edit_cli

    session = Session.from_recipe(json.loads(_plain_recipe(tmp_path, models)))
    d = session.to_recipe()
    d["output"] = block
    (tmp_path / "bad.json").write_text(json.dumps(d))
    monkeypatch.setattr(edit_cli, "open_pack", lambda *a, **k: pytest.fail("models opened"))
    assert main(["edit", "--recipe", str(tmp_path / "bad.json"), *models, "-o",
                 str(tmp_path / "x.png")]) == 1
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def _plain_recipe(tmp_path, models) -> str:
    out = tmp_path / "plain.png"
    assert main(["edit", "--seed", "2", *models, "-o", str(out)]) == 0
    return read_recipe(out)


def test_a_recipe_made_with_a_relative_generator_path_replays_from_another_folder(
        tmp_path, models, monkeypatch, capsys):
    # the recipe recorded "g.safetensors" as typed: a replay from elsewhere said the
    # generator "is not on this machine", or drew with another file of that name
    rel = ["g.safetensors" if a == models[1] else a for a in models]
    monkeypatch.chdir(tmp_path)
    assert main(["edit", "--seed", "5", *rel, "-o", "made.png"]) == 0
    assert read_recipe_generator_path(tmp_path / "made.png") == str(tmp_path / "g.safetensors")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["edit", "--recipe", "../made.png", "-o", "again.png",
                 *models[2:]]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(elsewhere / "again.png")),
                          np.asarray(Image.open(tmp_path / "made.png")))


def read_recipe_generator_path(png) -> str:
    return json.loads(read_recipe(png))["generator"]["path"]


def test_a_pack_another_process_computes_is_one_line_not_a_traceback(tmp_path, models,
                                                                     capsys):
    # EntryBusy is an OSError, which `atelier edit` did not catch: the lock that keeps two
    # precomputes (or co-variation measurements) of one pack apart ended it in a traceback
    from dataclasses import replace

    from editor.engine.packs import ClipSource, default_relevance_config, open_pack
    from editor.methods import precompute as pc

    pack = open_pack(models[1], ClipSource(path=models[3]),
                     relevance_config=replace(default_relevance_config(models[1]), n_images=3),
                     stats_samples=500)
    entry = pc.pack_cache(pack.model.content_hash, pack.clip.content_hash, 500,
                          pack.relevance_config, pack.sampler or pc.DEFAULT_SAMPLER)
    out = tmp_path / "x.png"
    with entry.lock("precompute"):
        assert main(["edit", "--target", "smiling face", *models, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "atelier edit: another precompute of this pack is running" in err
    assert "Traceback" not in err and not out.exists()


def test_every_command_takes_both_names_of_the_clip_file_option(tmp_path, models):
    # edit and invert said --clip-file, discover and precompute --clip-checkpoint
    from editor.cli import build_parser

    for command, dest, required in [("edit", "clip_file", ["-o", "x.png"]),
                                    ("invert", "clip_file", ["p.png", "-o", "x.png"]),
                                    ("discover", "clip_file", []),
                                    ("precompute", "clip_checkpoint", ["--generator", __file__])]:
        for name in ("--clip-file", "--clip-checkpoint"):
            args = build_parser().parse_args([command, *required, name, __file__])
            assert getattr(args, dest) == __file__, (command, name)
    out = tmp_path / "alias.png"
    aliased = [a if a != "--clip-file" else "--clip-checkpoint" for a in models]
    assert main(["edit", "--seed", "3", "--target", "smiling face", *aliased, "-o", str(out)]) == 0


class _Opened(Exception):
    pass


def test_every_command_picks_the_device_the_window_picks(tmp_path, models, monkeypatch):
    # edit, invert and discover ran on the CPU unless told otherwise, while the window
    # renders on CUDA where there is one: a window export then did not replay exactly
    # from the command line, and a first precompute or an inversion ran on the CPU.
    import torch

    import editor.cli.edit as edit_cli
    import editor.cli.invert as invert_cli
    import editor.engine.packs as packs
    from editor.engine.renderer import Renderer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    # a GPU this torch build runs on (auto tries a kernel, which there is no GPU here for)
    monkeypatch.setattr("editor.core.devices._cuda_unusable", lambda device: None)
    window_device = str(Renderer().device)
    assert window_device == "cuda:0"
    opened: list[str] = []

    def record(generator, clip, device="cpu", **kwargs):
        opened.append(device)
        raise _Opened

    for module in (edit_cli, invert_cli, packs):
        monkeypatch.setattr(module, "open_pack", record)
    picture = tmp_path / "face.png"
    Image.new("RGB", (8, 8)).save(picture)
    for argv in (["edit", "--seed", "1", "-o", str(tmp_path / "e.png")],
                 ["invert", str(picture), "-o", str(tmp_path / "i.png")],
                 ["discover"]):
        with pytest.raises(_Opened):
            main([*argv, "--generator", models[1]])
    assert opened == [window_device] * 3


def _hand_written_recipe(tmp_path, *edits, generator_hash="f" * 64, name="recipe.json"):
    """A recipe made, it says, on another generator (hash `generator_hash`)."""
    session = Session(source=Source(seed=3, psi=0.7), edits=edits,
                      generator=ModelIdentity("elsewhere", generator_hash))
    path = tmp_path / name
    path.write_text(session.to_json())
    return path


SMILE = Edit("global", {"neutral": "face", "target": "smiling face", "beta": 0.01}, 2.0)


def test_a_recipe_for_another_generator_warns_before_the_first_precompute(
        tmp_path, models, capsys):
    # The warning came only after pack.precompute(), which takes hours on a new generator.
    recipe = _hand_written_recipe(tmp_path, SMILE)
    assert main(["edit", "--recipe", str(recipe), *models, "-o", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err
    warning = err.index("warning: the recipe was made with generator elsewhere")
    assert warning < err.index("First use of this model pack")


def test_a_discovered_edit_for_another_generator_is_refused_before_any_precompute(
        tmp_path, models, capsys):
    discovered = Edit("delta", {"delta": [0.0], "generator": "e" * 64, "source": "discovery"},
                      1.5, name="discovered: smile")
    recipe = _hand_written_recipe(tmp_path, SMILE, discovered)
    assert main(["edit", "--recipe", str(recipe), *models, "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "discovered: smile was made for another generator" in err
    assert "First use of this model pack" not in err and "precompute" not in err
    assert not (tmp_path / "x.png").exists()


def test_a_recipe_made_on_another_generator_says_which_to_replay_it_with(
        tmp_path, models, capsys):
    # "the recipe's latent has shape (4, 16); expected (10, 128)" said nothing of the
    # generator the recipe names, nor how to use it
    from editor.core.checkpoints import load_generator

    gen = load_generator(models[1]).generator
    np.save(tmp_path / "w.npy", np.zeros((gen.n_latent, gen.w_dim), np.float32))
    made = tmp_path / "made.png"
    assert main(["edit", "--wplus", str(tmp_path / "w.npy"), *models, "-o", str(made)]) == 0
    demo = ["--generator", str(DEMO_GENERATOR)]
    assert main(["edit", "--recipe", str(made), *demo, "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "latent has shape" in err and f"replay it with --generator {models[1]}" in err
    discovered = Edit("delta", {"delta": [0.0], "generator": "e" * 64}, 1.5, name="smile")
    recipe = tmp_path / "discovered.json"
    recipe.write_text(Session(source=Source(seed=3), edits=(discovered,), generator=ModelIdentity(
        "faces", "e" * 64, "/models/my faces.pt")).to_json())
    assert main(["edit", "--recipe", str(recipe), *demo, "-o", str(tmp_path / "x.png")]) == 1
    assert "smile was made for another generator; it would move unrelated channels of this " \
           "one; the recipe was made with generator faces: replay it with --generator " \
           "'/models/my faces.pt'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_replay_draws_with_the_generator_its_recipe_names(tmp_path, models, capsys):
    # Without --generator a replay drew the demo: a 64 px demo face from a recipe made on
    # another generator, with only a warning and exit 0.
    made = tmp_path / "made.png"
    assert main(["edit", "--seed", "3", *models, "-o", str(made)]) == 0
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(made), *models[2:], "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(again)))
    assert "warning" not in capsys.readouterr().err
    # named but not here: refused, saying which and how, before anything is drawn
    recipe = json.loads(read_recipe(made))
    recipe["generator"]["path"] = str(tmp_path / "gone" / "faces.safetensors")
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(recipe), encoding="utf-8")
    assert main(["edit", "--recipe", str(moved), *models[2:], "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert f"the recipe was made with generator {recipe['generator']['name']} " \
           f"({tmp_path / 'gone' / 'faces.safetensors'}), which is not on this machine: " \
           "replay it with --generator PATH" in err
    assert not (tmp_path / "x.png").exists()


def test_a_recipes_text_edits_replayed_with_another_clip_warn(tmp_path, models, capsys):
    # Only the generator was compared: text edits computed with another CLIP went unsaid.
    edited, plain = tmp_path / "edited.png", tmp_path / "plain.png"
    assert main(["edit", "--seed", "3", "--target", "smiling face", "--beta", "0.01",
                 *models, "-o", str(edited)]) == 0
    assert main(["edit", "--seed", "3", *models, "-o", str(plain)]) == 0
    other_clip = str(make_tiny_clip(seed=1).save(tmp_path / "other-clip.safetensors"))
    with_other_clip = [other_clip if a == models[3] else a for a in models]
    capsys.readouterr()
    assert main(["edit", "--recipe", str(edited), *with_other_clip, "-o",
                 str(tmp_path / "again.png")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning")]
    assert len(warnings) == 1 and warnings[0].startswith(
        "warning: the recipe was made with CLIP tiny-clip"), warnings
    # without text edits the CLIP changes nothing, so nothing is said
    assert main(["edit", "--recipe", str(plain), *with_other_clip, "-o",
                 str(tmp_path / "plain-again.png")]) == 0
    assert "warning" not in capsys.readouterr().err


def _cli_edits(*argv):
    from editor.cli import build_parser
    from editor.cli.edit import build_session, check_options

    args = build_parser().parse_args(["edit", "-o", "x.png", *argv])
    check_options(args)
    return [(e.params["neutral"], e.params["target"], e.strength)
            for e in build_session(args, 1.0).edits]


def test_a_neutral_belongs_to_the_target_after_it():
    # "--neutral N --target T" after a first edit gave N to the first edit, and T the
    # default neutral.
    assert _cli_edits("--seed", "1", "--target", "a cartoon face with glasses", "--alpha", "2",
                      "--neutral", "a cartoon face", "--target", "a cartoon face with a cap") \
        == [("face", "a cartoon face with glasses", 2.0),
            ("a cartoon face", "a cartoon face with a cap", 4.0)]
    # the documented forms read as before
    assert _cli_edits("--neutral", "face", "--target", "face with sunglasses", "--alpha", "4",
                      "--beta", "0.15") == [("face", "face with sunglasses", 4.0)]
    assert _cli_edits("--target", "a smile") == [("face", "a smile", 4.0)]
    assert _cli_edits("--target", "a smile", "--alpha", "3", "--target", "a frown") == [
        ("face", "a smile", 3.0), ("face", "a frown", 4.0)]
    assert _cli_edits("--alpha", "2", "--neutral", "a face", "--target", "a smile",
                      "--neutral", "a face", "--target", "a frown", "--alpha", "-1") == [
        ("a face", "a smile", 2.0), ("a face", "a frown", -1.0)]


@pytest.mark.parametrize("argv", [["--target", "a smile", "--neutral", "a face"],
                                  ["--neutral", "a face"]])
def test_a_neutral_without_a_target_after_it_is_one_clear_line(tmp_path, models, capsys,
                                                               argv):
    assert main(["edit", *argv, *models, "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err == ("atelier edit: --neutral 'a face' has no --target after it; write each "
                   "edit as --neutral N --target T\n")
    assert not (tmp_path / "x.png").exists()


def test_a_render_without_text_edits_needs_no_clip(tmp_path, models, capsys, monkeypatch):
    # `atelier edit --seed 3` on a real generator failed when its default CLIP
    # (ViT-B-32/openai) was not on the machine, though nothing needed it.
    from editor.engine import packs

    monkeypatch.setattr(packs, "REFERENCE_CLIP",
                        packs.ClipSource(path=str(tmp_path / "no-such-clip.safetensors")))
    generator = models[:2]
    plain, again = tmp_path / "plain.png", tmp_path / "again.png"
    assert main(["edit", "--seed", "3", *generator, "-o", str(plain)]) == 0, \
        capsys.readouterr().err
    assert main(["edit", "--recipe", str(plain), *generator, "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(plain)), np.asarray(Image.open(again)))
    capsys.readouterr()
    # a text edit needs one, and says so in one line
    assert main(["edit", "--seed", "3", "--target", "a smile", *generator, "-o",
                 str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("atelier edit: text edits need a CLIP model: ") and \
        "no-such-clip" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_a_jpeg_replays_at_its_recorded_quality(tmp_path, models, capsys):
    # The recipe recorded no quality and `edit` had no --quality: a JPEG replayed at 95.
    out, again = tmp_path / "out.jpg", tmp_path / "again.jpg"
    argv = ["--seed", "3", "--target", "smiling face", "--beta", "0.01", *models,
            "--scale", "4"]
    assert main(["edit", *argv, "--quality", "80", "-o", str(out)]) == 0
    assert json.loads(read_recipe(out))["output"] == {
        "scale": 4, "upscale_filter": "lanczos", "quality": 80,
        "rendered_on": rendering_platform(torch.device("cpu"))}
    assert main(["edit", "--recipe", str(out), *models, "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    # --quality wins over the recorded one, and the quality shows in the pixels
    finer = tmp_path / "finer.jpg"
    assert main(["edit", "--recipe", str(out), *models, "--quality", "95", "-o",
                 str(finer)]) == 0
    assert json.loads(read_recipe(finer))["output"]["quality"] == 95
    assert not np.array_equal(np.asarray(Image.open(finer)), np.asarray(Image.open(out)))
    # a recipe from before quality was recorded replays at the old 95
    older = json.loads(read_recipe(out))
    del older["output"]["quality"]
    (tmp_path / "older.json").write_text(json.dumps(older))
    assert main(["edit", "--recipe", str(tmp_path / "older.json"), *models, "-o",
                 str(tmp_path / "older.jpg")]) == 0
    assert (tmp_path / "older.jpg").read_bytes() == finer.read_bytes()
    # a PNG records no quality, and --quality for one is refused: it would be ignored
    assert main(["edit", "--recipe", str(out), *models, "-o", str(tmp_path / "p.png")]) == 0
    assert json.loads(read_recipe(tmp_path / "p.png"))["output"] == {
        "scale": 4, "upscale_filter": "lanczos",
        "rendered_on": rendering_platform(torch.device("cpu"))}
    capsys.readouterr()
    assert main(["edit", *argv, "--quality", "80", "-o", str(tmp_path / "q.png")]) == 1
    assert "--quality applies to JPEG and WebP" in capsys.readouterr().err
    # the refusal names the file, not "PNG is lossless" for a .gif or .bmp
    assert main(["edit", *argv, "--quality", "80", "-o", str(tmp_path / "q.gif")]) == 1
    err = capsys.readouterr().err
    assert "q.gif" in err and "PNG" not in err


@pytest.mark.parametrize("quality", ["0", "101", "high"])
def test_a_quality_out_of_range_is_refused_when_the_command_is_read(tmp_path, models, capsys,
                                                                   quality):
    with pytest.raises(SystemExit) as exit_info:
        main(["edit", "--quality", quality, *models, "-o", str(tmp_path / "x.jpg")])
    assert exit_info.value.code == 2 and "--quality" in capsys.readouterr().err


@pytest.mark.parametrize("quality", [0, 101, "80", True, 80.0])
def test_a_recipes_bad_quality_is_refused_before_any_work(tmp_path, models, capsys,
                                                          monkeypatch, quality):
    import editor.cli.edit as edit_cli

    d = json.loads(_plain_recipe(tmp_path, models))
    d["output"] = {"quality": quality}
    (tmp_path / "bad.json").write_text(json.dumps(d))
    monkeypatch.setattr(edit_cli, "open_pack", lambda *a, **k: pytest.fail("models opened"))
    assert main(["edit", "--recipe", str(tmp_path / "bad.json"), *models, "-o",
                 str(tmp_path / "x.jpg")]) == 1
    assert "quality must be a whole number from 1 to 100" in capsys.readouterr().err


def test_a_session_files_unfinished_prompt_is_not_replayed_into_the_stack(tmp_path, models):
    # A session file keeps the prompt being written at strength 0 (to give it back to the
    # prompt panel); a command-line replay wrote it into its own recipe as a stack edit.
    from editor.engine.editor_state import EditorState, new_draft

    stacked = Edit("global", {"neutral": "face", "target": "smiling face", "beta": 0.1},
                   strength=2.0)
    state = EditorState(Session(source=Source(seed=4, psi=1.0)).add_edit(stacked),
                        new_draft(target="face with glasses", strength=0))
    session_file = tmp_path / "s.atelier.json"
    session_file.write_text(json.dumps(state.to_session_file(state.rendered_session())))
    out = tmp_path / "replayed.png"
    assert main(["edit", "--recipe", str(session_file), *models, "-o", str(out)]) == 0
    replayed = Session.from_json(read_recipe(out))
    assert [e.id for e in replayed.edits] == [stacked.id]


def test_a_recipes_latent_for_another_generator_is_refused_before_any_pack_job(
        tmp_path, models, capsys, monkeypatch):
    import editor.engine.packs as packs

    def no_precompute(*_a, **_k):
        pytest.fail("a pack job ran before the latent was checked")

    monkeypatch.setattr(packs.OpenPack, "precompute", no_precompute)
    wrong = Session(source=Source(kind="wplus", wplus_data=encode_wplus(torch.zeros(3, 5))),
                    edits=(Edit("global", {"neutral": "face", "target": "smiling face"},
                                strength=1.0),))
    recipe = tmp_path / "wrong.json"
    recipe.write_text(wrong.to_json())
    assert main(["edit", "--recipe", str(recipe), *models, "-o",
                 str(tmp_path / "x.png")]) == 1
    assert "latent" in capsys.readouterr().err


def test_precompute_images_uses_the_pack_that_atelier_precompute_made(tmp_path, models,
                                                                       monkeypatch, capsys):
    # `atelier edit --precompute-images N` asked for a pack at psi 1.0 where `atelier
    # precompute --n-images N` (and the window) make it at 0.7: a real generator's
    # precompute (hours) ran again.
    gen, clip = models[1], models[3]
    assert main(["precompute", "--generator", gen, "--clip-file", clip, "--n-images", "3",
                 "--stats-samples", "500", "--device", "cpu"]) == 0, capsys.readouterr().err

    def no_second_precompute(*a, **k):
        raise AssertionError("the pack was computed again")

    monkeypatch.setattr("editor.methods.precompute.compute_relevance", no_second_precompute)
    rc = main(["edit", "--seed", "3", "--target", "face with glasses", "--alpha", "2",
               "--auto-beta", *models, "-o", str(tmp_path / "out.png")])
    assert rc == 0, capsys.readouterr().err


def test_a_pack_precomputed_with_settings_of_its_own_is_the_one_opened(tmp_path, models,
                                                                        monkeypatch, capsys):
    # `atelier precompute --layers conv1` (StyleCLIP's own runs stop at 128 px) wrote a
    # pack that neither the window nor `atelier edit` ever read: hours of work on FFHQ,
    # then the same precompute again from scratch.
    from editor.engine.packs import ClipSource, open_pack

    gen, clip = models[1], models[3]
    assert main(["precompute", "--generator", gen, "--clip-file", clip, "--n-images", "3",
                 "--stats-samples", "500", "--layers", "conv1", "--k-sigma", "3",
                 "--device", "cpu"]) == 0, capsys.readouterr().err
    pack = open_pack(gen, ClipSource(path=clip))  # as the window opens it
    assert pack.has_directions
    assert (pack.relevance_config.layers, pack.relevance_config.k_sigma,
            pack.stats_samples) == (("conv1",), 3.0, 500)
    asked = open_pack(gen, ClipSource(path=clip),  # settings asked for are kept to
                      relevance_config=dataclasses.replace(pack.relevance_config, layers=None))
    assert not asked.has_directions

    def no_second_precompute(*a, **k):
        raise AssertionError("the pack was computed again")

    monkeypatch.setattr("editor.methods.precompute.compute_relevance", no_second_precompute)
    rc = main(["edit", "--seed", "3", "--target", "face with glasses", "--alpha", "2",
               "--auto-beta", "--generator", gen, "--clip-file", clip,
               "-o", str(tmp_path / "out.png")])
    assert rc == 0, capsys.readouterr().err
    monkeypatch.undo()

    # of several such packs, the newest
    assert main(["precompute", "--generator", gen, "--clip-file", clip, "--n-images", "3",
                 "--stats-samples", "500", "--device", "cpu"]) == 0, capsys.readouterr().err
    again = open_pack(gen, ClipSource(path=clip))
    assert (again.relevance_config.layers, again.relevance_config.k_sigma) == (None, 5.0)


def test_an_edit_without_a_neutral_takes_the_packs_own(tmp_path, models, capsys):
    # The command line wrote "face" into every edit; the window offers the pack's own
    # neutral ("a cartoon face" on the demo pack, whose CLIP learned only its captions).
    out = tmp_path / "demo.png"
    assert main(["edit", "--seed", "3", "--target", "a cartoon face with sunglasses",
                 "--alpha", "2", "--device", "cpu", "-o", str(out)]) == 0, \
        capsys.readouterr().err
    (edit,) = Session.from_json(read_recipe(out)).edits
    assert edit.params["neutral"] == "a cartoon face"
    real = tmp_path / "real.png"
    assert main(["edit", "--seed", "3", "--target", "face with glasses", "--beta", "0.01",
                 *models, "-o", str(real)]) == 0, capsys.readouterr().err
    assert Session.from_json(read_recipe(real)).edits[0].params["neutral"] == "face"


def test_wplus_index_picks_one_latent_of_a_file_of_several(tmp_path, models, capsys):
    from editor.core.checkpoints import load_generator

    gen = load_generator(models[1]).generator
    path = tmp_path / "latents.pt"
    torch.save(0.1 * torch.randn(4, gen.n_latent, gen.w_dim,
                                 generator=torch.Generator().manual_seed(0)), path)
    out = tmp_path / "two.png"
    assert main(["edit", "--wplus", str(path), *models, "-o", str(out)]) == 1
    assert "holds 4 latents; choose one (0 to 3) with --wplus-index" in capsys.readouterr().err
    assert main(["edit", "--wplus", str(path), "--wplus-index", "2", *models,
                 "-o", str(out)]) == 0
    assert Session.from_json(read_recipe(out)).source.label == "latents.pt #2"
    assert main(["edit", "--wplus-index", "2", *models, "-o", str(tmp_path / "x.png")]) == 1
    assert "no --wplus given" in capsys.readouterr().err


# --------------------------------------------------------------------------- from an audit


def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys,
                                                                     monkeypatch):
    """Not after a precompute and a render: a file where a folder should be is told first."""
    (tmp_path / "out1.png").write_bytes(b"x")

    def no_work(*a, **k):
        raise AssertionError("models were loaded for an output that cannot be written")

    monkeypatch.setattr("editor.cli.edit.open_pack", no_work)
    assert main(["edit", "--seed", "1", "-o", str(tmp_path / "out1.png" / "x.png")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_a_file_name_that_is_not_utf8_is_written(tmp_path, capsys):
    """Legal on Linux (a name from an old Latin-1 disk); Python hands it over as surrogates."""
    import os

    name = os.fsdecode(b"caf\xe9.png")
    assert main(["edit", "--seed", "1", "-o", str(tmp_path / name)]) == 0, \
        capsys.readouterr().err
    assert (tmp_path / name).exists()
    assert [p.name for p in tmp_path.iterdir()] == [name]  # and no temporary file left


def _raising(error: BaseException):
    """A stand-in for any function: it raises `error`."""
    def fn(*_a, **_k):
        raise error
    return fn


def test_ctrl_c_outside_a_precompute_does_not_speak_of_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("editor.cli.edit.open_pack", _raising(KeyboardInterrupt()))
    assert main(["edit", "--seed", "1", "-o", str(tmp_path / "o.png")]) == 130
    err = capsys.readouterr().err
    assert "nothing was written" in err and "precompute" not in err


def test_a_latent_file_name_in_capitals_is_read(tmp_path, capsys):
    from editor.core.checkpoints import load_generator
    from editor.core.paths import DEMO_MODELS_DIR

    gen = load_generator(DEMO_MODELS_DIR / "generator.safetensors").generator
    with open(tmp_path / "LATENT.NPY", "wb") as f:  # (np.save would add ".npy")
        np.save(f, np.zeros((1, gen.n_latent, gen.w_dim), np.float32))
    assert main(["edit", "--wplus", str(tmp_path / "LATENT.NPY"), "-o",
                 str(tmp_path / "o.png")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(auto_beta="false"), "auto_beta must be true or false"),
    (lambda p: p.update(gate="no"), "gate must be true or false"),
    (lambda p: p.update(note=json.loads("[" * 40 + "]" * 40)), "nested too deeply"),
    # a traceback (int(None)) after the models loaded
    (lambda p: p.update(auto_beta=True, min_channels=None), "min_channels must be a finite"),
])
def test_hand_edited_text_edit_params_are_refused_not_misread(tmp_path, capsys, change,
                                                              message):
    """"false" as text read as true (auto-β on), and params nested a few hundred deep
    crashed with a RecursionError after the render."""
    out = tmp_path / "o.png"
    assert main(["edit", "--seed", "7", "--target", "a cartoon face with blonde hair",
                 "-o", str(out)]) == 0
    recipe = json.loads(read_recipe(out))
    change(recipe["edits"][0]["params"])
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    assert main(["edit", "--recipe", str(tmp_path / "r.json"), "-o",
                 str(tmp_path / "again.png")]) == 1
    assert message in capsys.readouterr().err


def test_prompts_the_window_warns_about_are_warned_about_on_the_command_line(tmp_path,
                                                                             capsys):
    """Words the demo CLIP never learned, no words at all, more than the CLIP reads."""
    for target, said in [("a cartoon face with zzqx hair", "Words this CLIP never learned: “zzqx”"),
                         ("😀🎉", "The target prompt has no words"),
                         ("hair " * 200, "longer than this CLIP reads")]:
        assert main(["edit", "--seed", "1", "--target", target, "--overwrite", "-o",
                     str(tmp_path / "o.png")]) == 0
        err = capsys.readouterr().err
        assert said in err and err.count("warning:") == 1, err
    assert main(["edit", "--seed", "1", "--target", "a cartoon face with blonde hair",
                 "--overwrite", "-o", str(tmp_path / "o.png")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_words_warned_about_are_the_ones_the_clip_reads(tmp_path, capsys):
    # The warning looked at the typed letters, not at what the tokenizer reads: an emoji,
    # and words glued by a pasted NUL, moved the edit unwarned; HTML entities were warned
    # about as the words "lt" and "gt", which CLIP reads as "<" and ">".
    for target, said in [("a cartoon face with 😎", "“😎”"),
                         ("a cartoon face with\x00sunglasses", "“withsunglasses”"),
                         ("a cartoon face with &lt;glasses&gt;", "“<”, “>”")]:
        assert main(["edit", "--seed", "1", "--target", target, "--overwrite", "-o",
                     str(tmp_path / "o.png")]) == 0
        err = capsys.readouterr().err
        assert f"Words this CLIP never learned: {said}" in err and \
            err.count("warning:") == 1, err
    # the demo's captions join their items with commas: a comma is no unknown word
    assert main(["edit", "--seed", "1", "--target", "a cartoon face with a hat, glasses",
                 "--overwrite", "-o", str(tmp_path / "o.png")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--wplus", "w.npy", "--psi", "0.1"], "a --wplus latent is used as it is"),
    (["--seed", "1", "--upscale-filter", "nearest"], "--scale 2 or more"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, capsys, argv, message):
    assert main(["edit", *argv, "-o", str(tmp_path / "o.png")]) == 1
    assert message in capsys.readouterr().err


def test_given_output_options_override_a_recorded_value_this_version_does_not_take(
        tmp_path, capsys):
    """A recipe from a newer version recording a larger scale replays at a given one."""
    out = tmp_path / "o.png"
    assert main(["edit", "--seed", "3", "-o", str(out)]) == 0
    recipe = json.loads(read_recipe(out))
    recipe["output"] = {"scale": 16, "upscale_filter": "nearest"}
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    replay = ["edit", "--recipe", str(tmp_path / "r.json"), "-o", str(tmp_path / "s.png")]
    assert main(replay) == 1
    assert "output scale" in capsys.readouterr().err
    assert main([*replay, "--scale", "2", "--upscale-filter", "nearest"]) == 0
    assert Image.open(tmp_path / "s.png").size == tuple(2 * n for n in Image.open(out).size)
    # one option given is enough for its own value; a filter does not matter at 1x; a
    # quality is not read for a lossless output
    assert main([*replay, "--scale", "2", "--overwrite"]) == 0
    recipe["output"] = {"scale": 2, "upscale_filter": "bicubic", "quality": "lossless"}
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    assert main([*replay, "--upscale-filter", "nearest", "--overwrite"]) == 0
    assert main([*replay, "--scale", "1", "--overwrite"]) == 0
    capsys.readouterr()
    assert main([*replay, "--overwrite"]) == 1  # the filter is used at 2x: refused
    assert "upscale filter must be one of" in capsys.readouterr().err
    # and a filter at 1x is refused with a recipe too
    assert main(["edit", "--recipe", str(out), "--upscale-filter", "nearest", "-o",
                 str(tmp_path / "t.png")]) == 1
    assert "--scale 2 or more" in capsys.readouterr().err


def test_a_text_file_given_as_a_latent_is_called_what_it_is(tmp_path, capsys):
    (tmp_path / "notes.npy").write_text("not an array")
    assert main(["edit", "--wplus", str(tmp_path / "notes.npy"), "-o",
                 str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "not a saved latent" in err and "allow_pickle" not in err


def test_a_recipe_of_random_noise_says_its_replay_differs(tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["edit", "--seed", "2", "-o", str(out)]) == 0
    recipe = json.loads(read_recipe(out))
    recipe["noise_mode"] = "random"
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    assert main(["edit", "--recipe", str(tmp_path / "r.json"), "-o",
                 str(tmp_path / "again.png")]) == 0
    assert "each render of it differs" in capsys.readouterr().err
    assert main(["edit", "--recipe", str(out), "--overwrite", "-o",
                 str(tmp_path / "again.png")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_huge_beta_is_told_in_few_digits(tmp_path, capsys):
    assert main(["edit", "--seed", "1", "--target", "a cartoon face with blonde hair",
                 "--beta", "1e300", "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "beta = 1e+300" in err and len(err) < 300


def test_a_long_name_of_many_byte_characters_gets_a_whole_temporary_name(tmp_path):
    from editor.core.paths import _create_temp_beside

    tmp = _create_temp_beside(tmp_path / ("a" + "é" * 60 + ".png"))
    tmp.name.encode("utf-8")  # no half character (Windows names are UTF-16)
    tmp.unlink()


def test_ctrl_c_in_the_co_variation_says_it_resumes(tmp_path, capsys, monkeypatch, models):
    """The co-variation keeps its sampled images, as the precompute keeps its progress."""
    from editor.engine.packs import OpenPack

    def interrupted(self, cancel=None):
        raise KeyboardInterrupt
        yield

    assert main(["edit", "--seed", "1", "--target", "smiling face", *models, "-o",
                 str(tmp_path / "first.png")]) == 0
    capsys.readouterr()
    # a pack computed before gated edits existed: directions, no co-variation
    monkeypatch.setattr("editor.methods.precompute.load_covariation", lambda entry: None)
    monkeypatch.setattr(OpenPack, "covariation_job", interrupted)
    assert main(["edit", "--seed", "1", "--target", "smiling face", "--gate", *models,
                 "-o", str(tmp_path / "o.png")]) == 130
    err = capsys.readouterr().err
    assert "the precompute resumes where it stopped next time" in err


def test_a_session_with_an_edit_that_cannot_apply_replays_the_picture_the_window_shows(
        tmp_path, capsys):
    # A session saved while its live prompt failed ("mean the same to CLIP": the window
    # shows the picture without it) could not be replayed: atelier edit stopped with the
    # error. It is left out, as the window and its exports leave it out, and said.
    from PIL import Image

    session = Session(source=Source(seed=3, psi=1.0)).add_edit(
        Edit("global", {"neutral": "a cartoon face", "target": "A CARTOON FACE",
                        "beta": 0.15}, strength=3.0))
    (tmp_path / "s.json").write_text(session.to_json())
    assert main(["edit", "--recipe", str(tmp_path / "s.json"), "-o",
                 str(tmp_path / "again.png")]) == 0
    err = capsys.readouterr().err
    assert "warning: left out (it cannot be applied): " in err and "mean the same" in err
    assert main(["edit", "--seed", "3", "--psi", "1", "-o", str(tmp_path / "plain.png")]) == 0
    again, plain = (np.asarray(Image.open(tmp_path / n)) for n in ("again.png", "plain.png"))
    assert np.array_equal(again, plain)
    replayed = Session.from_json(read_recipe(tmp_path / "again.png"))
    assert [e.enabled for e in replayed.edits] == [False]  # its recipe is that picture


def test_the_command_list_and_each_commands_help_are_shown_without_loading_torch():
    # `atelier --help` imported every command's module, and with them torch: 5 s before
    # the list of commands appeared. The list comes from editor.cli.COMMANDS; each
    # command's own module is imported when it is the one asked for. `atelier edit --help`
    # and `atelier invert --help` then still imported torch and open_clip for their
    # options' defaults: 4 s on the 2-core CPU for a page of text (the others: 0.2 s).
    import subprocess
    import sys

    from editor.cli import COMMANDS

    probe = ("import sys, contextlib, io\n"
             "from editor.cli import COMMANDS, main\n"
             "for name in ['', *COMMANDS]:\n"
             "    out = io.StringIO()\n"
             "    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
             "        main([name, '--help'] if name else ['--help'])\n"
             "    text = out.getvalue()\n"
             "    print(name or 'all', 'import-styleclip' in text if not name\n"
             "          else text.startswith(f'usage: atelier {name}'))\n"
             "print('torch', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == [*(w for name in ("all", *COMMANDS) for w in (name, "True")),
                                   "torch", "False"], done.stderr


def test_each_command_lists_the_help_its_module_registers():
    # the short list and the commands' own parsers describe each command the same way,
    # and a command asked for gets its module's options
    import argparse

    from editor.cli import COMMANDS, build_parser

    def commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    def summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
        return {c.dest: c.help for c in commands(parser)._choices_actions}

    listed = summaries(build_parser(""))
    assert listed == summaries(build_parser()) and set(COMMANDS) < set(listed)
    for name in COMMANDS:
        own = commands(build_parser(name)).choices[name]
        assert len(own._actions) > 1 and own.get_default("func") is not None, name
        assert len(commands(build_parser("")).choices[name]._actions) == 1  # -h only


GPU_FULL = torch.OutOfMemoryError(
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.70 GiB "
    "of which 1.06 GiB is free. Of the allocated memory ... PYTORCH_CUDA_ALLOC_CONF=...")


def test_running_out_of_memory_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    # An out-of-memory render ended `atelier edit` with an uncaught traceback.
    monkeypatch.setattr("editor.engine.compose.EditingContext.render", _raising(GPU_FULL))
    assert main(["edit", "--seed", "1", "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("atelier edit: out of GPU memory (asked for 2.00 GiB more; 1.06 GiB "
                           "of 15.70 GiB free on GPU 0)")
    assert not (tmp_path / "o.png").exists()


def test_out_of_memory_in_a_first_precompute_says_its_progress_is_kept(tmp_path, models,
                                                                       capsys, monkeypatch):
    def out_of_memory(*_a, **_k):
        yield from ()
        raise GPU_FULL

    monkeypatch.setattr("editor.engine.packs.OpenPack.precompute", out_of_memory)
    assert main(["edit", "--seed", "1", "--target", "face with glasses", *models,
                 "-o", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "out of GPU memory (asked for 2.00 GiB more" in err
    assert "the precompute's progress is saved, and the next run goes on from it" in err
    assert "Traceback" not in err


def test_a_bug_still_shows_its_traceback(tmp_path, monkeypatch):
    bug = RuntimeError("shape mismatch in a layer")  # not the user's to fix
    monkeypatch.setattr("editor.engine.compose.EditingContext.render", _raising(bug))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["edit", "--seed", "1", "-o", str(tmp_path / "o.png")])


def test_a_pack_jobs_progress_in_a_log_is_plain_lines(capsys):
    # captured stderr is no terminal: "\r" redraws made a log of one endless line
    from editor.cli.edit import _run_job
    from editor.methods.global_directions import Progress

    _run_job("First use of this model pack", (Progress(i, 20, f"step {i}") for i in range(21)))
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[0] == "First use of this model pack"
    assert lines[-1] == "precompute 100.0% step 20"
    assert 3 <= len(lines) <= 12  # a line per tenth at most, not one per step


def test_an_edit_says_its_pack_was_computed_with_other_settings(tmp_path, capsys):
    # `atelier precompute --layers convs.15 --n-images 2` (32 of 6048 channels) made a pack
    # that `atelier edit` then used without a word, and failed with "no style channel
    # passes beta" and no hint why
    gen = str(save_generator(make_tiny_generator(resolution=8, channel_max=16),
                             tmp_path / "g.safetensors"))
    clip = str(make_tiny_clip().save(tmp_path / "clip.safetensors"))
    assert main(["precompute", "--generator", gen, "--clip-file", clip, "--layers", "conv1",
                 "--n-images", "2", "--stats-samples", "500", "--device", "cpu"]) == 0
    capsys.readouterr()
    models = ["--generator", gen, "--clip-file", clip, "--device", "cpu"]
    how = ("global directions from a pack computed with --layers conv1 --n-images 2 "
           "--stats-samples 500 (16 of 48 style channels)")
    assert main(["edit", "--target", "face with glasses", "--beta", "5", *models,
                 "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert f"note: the text edits use {how}" in err
    (error,) = [line for line in err.splitlines() if line.startswith("atelier edit:")]
    assert "no style channel passes beta" in error and how in error
    # a render without text edits is not told of them
    assert main(["edit", "--seed", "1", *models, "-o", str(tmp_path / "y.png")]) == 0
    assert "global directions" not in capsys.readouterr().err


def test_a_recipe_whose_latent_file_is_gone_says_where_it_was_looked_for(
        tmp_path, models, capsys, monkeypatch):
    # it said "could not read the latent file face.npy (No such file or directory)" with a
    # face.npy in the folder the user was in: the one beside the recipe was meant
    (tmp_path / "portraits").mkdir()
    session = tmp_path / "portraits" / "face.atelier.json"
    session.write_text(Session(source=Source(kind="wplus", wplus_path="face.npy")).to_json())
    np.save(tmp_path / "face.npy", np.zeros((4, 16), np.float32))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.png"
    assert main(["edit", "--recipe", str(session), *models, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"face.atelier.json starts from the latent file " \
           f"{tmp_path / 'portraits' / 'face.npy'}, which is not there" in err
    assert not out.exists()


def test_a_session_naming_its_latent_by_a_relative_path_finds_it_beside_itself(
        tmp_path, models, monkeypatch):
    # it was read from the working folder: another face.npy there gave another picture,
    # unwarned; the window reads it from the session's folder
    from editor.core.checkpoints import load_generator

    gen = load_generator(models[1]).generator
    rng = np.random.default_rng(0)
    for folder in ("portraits", "elsewhere"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "face.npy",
                rng.standard_normal((gen.n_latent, gen.w_dim)).astype(np.float32))
    session = tmp_path / "portraits" / "face.atelier.json"
    session.write_text(Session(source=Source(kind="wplus", wplus_path="face.npy")).to_json())
    pictures = []
    for cwd in ("portraits", "elsewhere", "."):
        monkeypatch.chdir(tmp_path / cwd)
        out = tmp_path / f"{cwd.strip('.') or 'top'}.png"
        assert main(["edit", "--recipe", str(session), *models, "-o", str(out)]) == 0
        pictures.append(np.asarray(Image.open(out)))
    direct = tmp_path / "direct.png"
    assert main(["edit", "--wplus", str(tmp_path / "portraits" / "face.npy"), *models,
                 "-o", str(direct)]) == 0
    for picture in pictures:
        assert np.array_equal(picture, np.asarray(Image.open(direct)))
    # a replay named by relative paths records a path its own output replays from,
    # wherever that is written and replayed (it recorded "portraits/face.npy", which the
    # output's replay then looked for beside the output)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "renders").mkdir()
    assert main(["edit", "--recipe", "portraits/face.atelier.json", *models,
                 "-o", "renders/out.png"]) == 0
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(tmp_path / "renders" / "out.png"), *models,
                 "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(direct)))
    # the output carries the latent it was drawn from, as --wplus writes: once the file
    # changed, its replay drew another picture without a word
    assert Session.from_json(read_recipe(tmp_path / "renders" / "out.png")).source.wplus_data
    np.save(tmp_path / "portraits" / "face.npy",
            rng.standard_normal((gen.n_latent, gen.w_dim)).astype(np.float32))
    assert main(["edit", "--recipe", str(tmp_path / "renders" / "out.png"), *models,
                 "-o", str(again), "--overwrite"]) == 0
    assert np.array_equal(np.asarray(Image.open(again)), np.asarray(Image.open(direct)))


def test_a_recipe_saved_as_utf8_with_a_bom_is_read(tmp_path, models):
    # the window opened it; the command line said "not valid JSON (Unexpected UTF-8 BOM)"
    made = tmp_path / "made.png"
    assert main(["edit", "--seed", "3", *models, "-o", str(made)]) == 0
    recipe = tmp_path / "r.atelier.json"
    recipe.write_text(read_recipe(made), encoding="utf-8-sig")
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(recipe), *models, "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(again)))


def test_a_replay_whose_clip_is_not_the_usual_one_names_it(tmp_path, models, capsys,
                                                           monkeypatch):
    # A recipe made with --clip-file replayed without it tried the generator's usual CLIP
    # (ViT-B-32/openai) and, that not being here, only said to download that one.
    from editor.engine import packs

    monkeypatch.setattr(packs, "REFERENCE_CLIP",
                        packs.ClipSource(path=str(tmp_path / "no-such-clip.safetensors")))
    edited = tmp_path / "edited.png"
    assert main(["edit", "--seed", "3", "--target", "smiling face", "--beta", "0.01",
                 *models, "-o", str(edited)]) == 0
    capsys.readouterr()
    assert main(["edit", "--recipe", str(edited), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("atelier edit: text edits need a CLIP model: ") and \
        err.count("\n") == 1
    assert "the recipe was made with CLIP tiny-clip" in err and "--clip-file" in err
    assert not (tmp_path / "x.png").exists()


def _demo_of_another_install(tmp_path):
    """A copy of the bundled demo generator where another installation keeps it (a
    checkout's .venv beside a `pip install`): same file, another path, both on this machine."""
    import shutil

    other = tmp_path / "other install" / "editor" / "resources" / "models" / "toyfaces"
    other.mkdir(parents=True)
    return shutil.copy(DEMO_GENERATOR, other / DEMO_GENERATOR.name)


def test_a_demo_recipe_from_another_install_here_replays_with_this_demo(tmp_path, capsys):
    # A recipe made with the demo by another installation on this machine names that
    # install's file, which is here: it was opened as a foreign generator, and the demo's
    # text edits failed ("The weights of CLIP ViT-B-32 'openai' are not available locally")
    made = tmp_path / "made.png"
    assert main(["edit", "--seed", "1", "--target", "a cartoon face with sunglasses",
                 "-o", str(made)]) == 0, capsys.readouterr().err
    recipe = json.loads(read_recipe(made))
    recipe["generator"]["path"] = str(_demo_of_another_install(tmp_path))
    shared = tmp_path / "shared.json"
    shared.write_text(json.dumps(recipe), encoding="utf-8")
    again = tmp_path / "again.png"
    assert main(["edit", "--recipe", str(shared), "-o", str(again)]) == 0, \
        capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(made)), np.asarray(Image.open(again)))
    assert json.loads(read_recipe(again))["generator"]["path"] == str(DEMO_GENERATOR)


@pytest.mark.parametrize("command, option", [("edit", "--target"), ("edit", "--neutral"),
                                             ("discover", "--words")])
def test_words_typed_under_the_c_locale_are_read_as_utf8(command, option):
    # LANG=C with UTF-8 mode and locale coercion off: Python reads "😎" from argv as four
    # lone surrogates, which CLIP took for unknown words and the recipe kept
    from editor.cli import build_parser

    typed = "face with sunglasses \udcf0\udc9f\udc98\udc8e"  # "😎" read under LANG=C
    argv = [command, option, typed] + (["-o", "x.png"] if command == "edit" else [])
    args = build_parser(command).parse_args(argv)
    read = args.edits[0][option[2:]] if command == "edit" else args.words
    assert read == "face with sunglasses 😎"
    # text some other locale read whole is left as it is
    assert build_parser("discover").parse_args(["discover", "--words", "café"]).words == "café"
