"""The demo-world recipes end to end on a tiny budget: weights + card, real loaders,
resuming, the demo pack and the eval gates (numbers near chance; only structure counts)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from editor.core.checkpoints import load_generator
from editor.core.clip_model import ClipModel
from editor.core.errors import AtelierError
from editor.core.hashing import file_sha256
from editor.core.paths import DEMO_MODELS_DIR
from editor.toyfaces import (
    conditioning,
    style_groups,
    train_clip,
    train_evaluator,
    train_generator,
)
from editor.toyfaces import eval as E
from editor.toyfaces.attributes import ATTRIBUTES, STYLES
from editor.toyfaces.evaluator import HEADS, Evaluator
from editor.toyfaces.pack import (
    MODELS,
    DemoPackError,
    DemoPackMissingError,
    load_demo_pack,
    recipe_command,
    timed_load,
)
from editor.toyfaces.render import render_batch
from editor.toyfaces.train import main as train_main
from editor.toyfaces.train_generator import ARCH, build
from editor.toyfaces.training import TrainState, recipe_dir, run_facts, run_loop

TINY = {
    "generator": ["--batch", "4"],
    "clip": ["--batch", "8", "--dataset", "32"],
    "evaluator": ["--batch", "8", "--dataset", "32"],
}


def _train(recipe: str, out: Path, steps: int) -> str:
    """Run one recipe at a tiny budget; returns what it printed."""
    rc, text = _run(recipe, "--steps", str(steps), "--out", str(out), "--tag", "test",
                    "--force", *TINY[recipe])
    assert rc == 0, text
    return text


def _run(*argv: str) -> tuple[int, str]:
    """(exit code, what was printed) of `python -m editor.toyfaces.train argv` at 1 thread."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = train_main([*argv, "--threads", "1", "--log-every", "1"])
    return rc, buf.getvalue()


# the cheapest real training: an evaluator on 8 renders
QUICK = ("evaluator", "--steps", "1", "--batch", "2", "--dataset", "8", "--width", "4",
         "--tag", "quick")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models: threads only add overhead (and the recipes set 1 thread anyway)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, _one_thread) -> dict:
    """Each recipe run for 2 steps, then again with --steps 3 (which must resume).
    Module-scoped, so it sets its own cache dir (the autouse fixture is per test)."""
    root = tmp_path_factory.mktemp("recipes")
    out = root / "pack"
    logs: dict[str, list[str]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATELIER_CACHE_DIR", str(root / "cache"))
        for recipe in MODELS:
            logs[recipe] = [_train(recipe, out, 2), _train(recipe, out, 3)]
        checkpoints = {r: torch.load(recipe_dir(f"{r}-test") / "checkpoint.pt",
                                     weights_only=True) for r in MODELS}
    return {"out": out, "logs": logs, "checkpoints": checkpoints}


@pytest.fixture(scope="module")
def pack(trained):
    return load_demo_pack(folder=trained["out"])


# ---------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("recipe", MODELS)
def test_recipe_writes_weights_and_card_and_resumes(trained, recipe):
    weights = trained["out"] / f"{recipe}.safetensors"
    card = json.loads((trained["out"] / f"{recipe}.json").read_text())
    assert card["file"] == weights.name
    assert card["sha256"] == file_sha256(weights)
    assert card["training"]["steps"] == 3
    assert card["training"]["final_metrics"]["step"] == 3
    assert f"python -m editor.toyfaces.train {recipe}" in card["recipe"]
    assert "--lr " in card["recipe"] and "--batch " in card["recipe"]  # all that shaped it
    assert card["device"] == "cpu"
    first, second = trained["logs"][recipe]
    assert "resumed" not in first
    assert "resumed from" in second and "at step 2" in second
    assert "step 3/3" in second and "step 1/3" not in second  # only the missing step ran
    assert f"wrote {weights} and its card {recipe}.json" in second  # (nothing said where)
    # the history logged before the interruption survived into the resumed run
    history = trained["checkpoints"][recipe]["history"]
    assert [h["step"] for h in history] == [1, 2, 3]


def test_the_card_names_the_device_that_trained(monkeypatch):
    # a GPU's run was carded as one on the CPU's threads alone ("x86_64, 2 threads")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _device: "NVIDIA H100")
    facts = run_facts(TrainState({}, {}), 2, torch.device("cuda", 0))
    assert facts["device"] == "cuda:0" and "NVIDIA H100" in facts["hardware"]


def test_weights_load_through_the_real_loaders(trained):
    out = trained["out"]
    loaded = load_generator(out / "generator.safetensors")
    assert loaded.generator.config.to_dict() == ARCH.to_dict()
    assert loaded.metadata["sampler"] == conditioning.SAMPLER_NAME
    with torch.no_grad():
        img = loaded.generator.generate(conditioning.z_for_seed(3))
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()

    clip = ClipModel.load(out / "clip.safetensors")
    with torch.no_grad():
        assert clip.encode_images(img).shape == (1, clip.embed_dim)
        assert clip.encode_text(["a cartoon face with sunglasses"]).shape == (1, clip.embed_dim)

    evaluator = Evaluator.load(out / "evaluator.safetensors")
    pred = evaluator.predict(render_batch(3, seed=5, styles=STYLES).images)
    assert set(pred.values) == set(HEADS)
    assert all(len(v) == 3 for v in pred.values.values())


# ---------------------------------------------------------------------------- resume


@pytest.mark.parametrize("change", [("--seed", "5"), ("--width", "8"), ("--lr", "0.01")])
def test_resume_refuses_a_checkpoint_made_with_other_options(tmp_path, change):
    assert _run(*QUICK, "--out", str(tmp_path / "a"))[0] == 0
    rc, text = _run(*QUICK, "--out", str(tmp_path / "b"), *change)
    assert rc == 2 and "rendered" not in text  # refused before any work
    assert f"{change[0]} " in text and "--restart" in text and "--tag" in text
    assert not (tmp_path / "b").exists()
    assert _run(*QUICK, "--out", str(tmp_path / "b"), *change, "--restart")[0] == 0


def test_resume_refuses_a_checkpoint_that_records_no_options(tmp_path):
    assert _run(*QUICK, "--out", str(tmp_path / "a"))[0] == 0
    path = recipe_dir("evaluator-quick") / "checkpoint.pt"
    old = torch.load(path, weights_only=True)
    del old["options"]  # as the recipes saved it before they recorded options
    torch.save(old, path)
    rc, text = _run(*QUICK, "--out", str(tmp_path / "b"))
    assert rc == 2 and "does not record the options" in text and "--restart" in text


def test_resume_refuses_a_checkpoint_past_the_steps_asked_for(tmp_path):
    # --steps 1 after a 2-step run exported the 2-step weights, their card naming --steps 1
    assert _run(*QUICK, "--steps", "2", "--out", str(tmp_path / "a"))[0] == 0
    rc, text = _run(*QUICK, "--out", str(tmp_path / "b"))
    assert rc == 2 and "trained 2 steps" in text and "--steps 2" in text
    assert "--restart" in text and "rendered" not in text
    assert not (tmp_path / "b").exists()
    assert _run(*QUICK, "--steps", "2", "--out", str(tmp_path / "b"))[0] == 0
    card = json.loads((tmp_path / "b" / "evaluator.json").read_text())
    assert "--steps 2 " in card["recipe"] and card["training"]["steps"] == 2


def test_grouped_styles_checked_right_after_resuming(tmp_path):
    argv = ("generator", "--steps", "1", "--batch", "1", "--tag", "grouped",
            "--grouped-styles")
    assert _run(*argv, "--out", str(tmp_path / "a"))[0] == 0
    path = recipe_dir("generator-grouped") / "checkpoint.pt"
    d = torch.load(path, weights_only=True)
    name, mask = next(iter(style_groups.weight_masks(build(0)).items()))
    d["modules"]["generator"][name][mask == 0] = 0.5  # a weight joining two groups
    torch.save(d, path)
    rc, text = _run(*argv, "--steps", "2", "--out", str(tmp_path / "b"))
    assert rc == 2 and "not trained with --grouped-styles" in text
    assert "step 2/2" not in text  # said before training, not after it


@pytest.mark.parametrize("recipe", [train_evaluator, train_clip, train_generator])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, recipe):
    # the evaluator's and CLIP's batches, and the generator's pushes (measured again at
    # the resumed step), differed after a resume
    name = recipe.__name__.rsplit("_", 1)[1]
    argv = (name, "--steps", "3", "--batch", "2",
            *(["--direction-pushes", "0.5"] if recipe is train_generator else
              ["--dataset", "8"]),
            *([] if recipe is train_evaluator else ["--fp32"]))  # the evaluator is fp32
    assert _run(*argv, "--tag", "whole", "--out", str(tmp_path / "whole"))[0] == 0

    def interrupted(state, step_fn, *args, **kwargs):
        def step(i):
            if i == 2:
                raise KeyboardInterrupt
            return step_fn(i)
        return run_loop(state, step, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(recipe, "run_loop", interrupted)
        assert _run(*argv, "--tag", "cut", "--out", str(tmp_path / "cut"))[0] == 130
    rc, text = _run(*argv, "--tag", "cut", "--out", str(tmp_path / "cut"))
    assert rc == 0 and "at step 2" in text
    whole = load_file(tmp_path / "whole" / f"{name}.safetensors")
    cut = load_file(tmp_path / "cut" / f"{name}.safetensors")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_ends_the_step_then_saves_a_checkpoint(tmp_path, signum):
    # a signal raised where it came (e.g. half-way through Adam's update) saved that step's
    # changes as the step before: the resumed run did the step twice
    class OldHandler(Exception):
        pass

    def old_handler(_signum, _frame):
        raise OldHandler

    layer = torch.nn.Linear(2, 2)
    state = TrainState({"m": layer}, {"sgd": torch.optim.SGD(layer.parameters(), lr=0.1)})
    path = tmp_path / "checkpoint.pt"
    done = []

    def step(i):
        done.append(i)  # the step's work so far
        if i == 2:
            os.kill(os.getpid(), signum)
        return {}  # ... and the rest of it

    previous = signal.signal(signum, old_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_loop(state, step, 10, path, log=lambda _: None)
        assert signal.getsignal(signum) is old_handler  # put back afterwards
    finally:
        signal.signal(signum, previous)
    assert torch.load(path, weights_only=True)["step"] == len(done) == 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_at_once_without_saving_the_step_half_done(tmp_path, signum):
    # the second signal stops in the middle of the step: saved then, the checkpoint held
    # half of that step's update under the step before (the resumed run did it again)
    layer = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(layer.weight)
    state = TrainState({"m": layer}, {})
    path = tmp_path / "checkpoint.pt"
    logged = []

    @torch.no_grad()
    def step(i):
        layer.weight[0, 0] += 1  # the first half of the step's update
        if i == 2:
            os.kill(os.getpid(), signum)
            os.kill(os.getpid(), signum)  # pressed again: stops here
        layer.weight[0, 1] += 1  # ... and the second
        return {}

    with pytest.raises(KeyboardInterrupt):
        run_loop(state, step, 10, path, checkpoint_every_s=0.0, log=logged.append)
    saved = torch.load(path, weights_only=True)
    weight = saved["modules"]["m"]["weight"]
    assert saved["step"] == 2 and weight[0, 0] == weight[0, 1] == 2  # as after step 2
    assert "not saved" in logged[-1] and "step 2" in logged[-1]


def test_a_signal_ignored_before_training_stays_ignored(tmp_path):
    # a run started under nohup (SIGHUP ignored) stopped when its terminal closed
    layer = torch.nn.Linear(2, 2)
    state = TrainState({"m": layer}, {})

    def step(i):
        if i == 1:
            os.kill(os.getpid(), signal.SIGHUP)
        return {}

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        run_loop(state, step, 3, tmp_path / "checkpoint.pt", log=lambda _: None)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert state.step == 3


# ---------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", [
    ("--log-every", "0"), ("--threads", "0"), ("--dataset", "0"), ("--width", "0"),
    ("--batch", "0"), ("--steps", "0"), ("--steps", "-5"), ("--minutes", "-1"),
    ("--lr", "nan"), ("--seed", "-1"),
])
def test_bad_numbers_are_refused_when_read(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as info:
        train_main([*QUICK, "--out", str(tmp_path), *bad])
    assert info.value.code == 2
    assert f"argument {bad[0]}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("empty", ["--out", "--continue-from", "--warm-start"])
def test_an_empty_file_name_is_refused_when_read(tmp_path, capsys, empty):
    # (`--out "$OUT"` with OUT unset) meant the bundled models' folder, which --force
    # replaced; an empty --continue-from trained a new generator instead
    with pytest.raises(SystemExit) as info:
        train_main(["generator", "--steps", "1", "--batch", "1", "--threads", "1",
                    "--out", str(tmp_path / "g"), empty, ""])
    assert info.value.code == 2 and "empty name" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--models", "--grid"])
def test_eval_cli_refuses_an_empty_file_name(capsys, option):
    with pytest.raises(SystemExit):  # --models "" read the pack in the current folder
        E.main([option, ""])
    assert "empty name" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", ["-0.1", "1.5"])
def test_direction_pushes_is_a_fraction(tmp_path, fraction):
    with pytest.raises(SystemExit):
        train_main(["generator", "--out", str(tmp_path), "--direction-pushes", fraction])


def test_output_and_start_files_are_checked_before_training(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    rc, text = _run(*QUICK, "--out", str(a_file / "sub"))
    assert rc == 2 and "is a file" in text and "rendered" not in text
    generator = ("generator", "--steps", "1", "--batch", "1", "--out", str(tmp_path / "g"))
    rc, text = _run(*generator, "--warm-start", str(tmp_path / "missing.safetensors"))
    assert rc == 2 and "does not exist" in text and "Traceback" not in text
    rc, text = _run(*generator, "--continue-from", str(a_file))
    assert rc == 2 and "step 1/1" not in text
    assert not (tmp_path / "g").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="a folder no one can write")
def test_an_output_folder_that_cannot_be_written_is_refused_before_training():
    # (/proc: a read-only folder is writable for root) the export failed with a traceback
    # after the whole training
    rc, text = _run(*QUICK, "--out", "/proc/atelier-models")
    assert rc == 2 and "cannot write" in text and "/proc/atelier-models" in text
    assert "rendered" not in text and "Traceback" not in text


def test_existing_models_are_replaced_only_with_force(tmp_path):
    (tmp_path / "evaluator.json").write_text("{}")
    rc, text = _run(*QUICK, "--out", str(tmp_path))
    assert rc == 2 and "--force" in text and "--out" in text and "rendered" not in text
    assert (tmp_path / "evaluator.json").read_text() == "{}"
    assert _run(*QUICK, "--out", str(tmp_path), "--force")[0] == 0
    assert json.loads((tmp_path / "evaluator.json").read_text())["file"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU machine")
def test_device_is_checked_before_training(tmp_path):
    rc, text = _run(*QUICK, "--out", str(tmp_path), "--device", "cuda:0")
    assert rc == 2 and "no CUDA device" in text
    assert _run(*QUICK, "--out", str(tmp_path), "--device", "cpu")[0] == 0


# ---------------------------------------------------------------------------- pack


def _linked_copy(src: Path, dst: Path, skip: str = "") -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.name != skip:
            (dst / f.name).symlink_to(f)
    return dst


def test_demo_pack_loads_quickly(trained):
    pack, seconds = timed_load(folder=trained["out"])
    assert isinstance(pack.generator, torch.nn.Module) and pack.clip and pack.evaluator
    assert set(pack.paths) == set(pack.cards) == set(MODELS)
    assert pack.cards["generator"]["sha256"] == file_sha256(pack.paths["generator"])
    assert torch.equal(pack.z_for_seed(11), conditioning.z_for_seed(11))
    assert 0 < seconds < 30  # the < 3 s goal is the eval's gate; CI machines vary


@pytest.mark.parametrize("missing", ["evaluator.safetensors", "clip.json"])
def test_missing_pack_file_names_the_recipe(trained, tmp_path, missing):
    folder = _linked_copy(trained["out"], tmp_path / "pack", skip=missing)
    with pytest.raises(DemoPackMissingError) as info:
        load_demo_pack(folder=folder)
    model = missing.split(".")[0]
    assert f"python -m editor.toyfaces.train {model}" in str(info.value)
    assert missing in str(info.value)
    assert isinstance(info.value, AtelierError) and isinstance(info.value, FileNotFoundError)


def test_weights_that_do_not_match_their_card_are_refused(trained, tmp_path):
    folder = _linked_copy(trained["out"], tmp_path / "pack", skip="clip.json")
    card = json.loads((trained["out"] / "clip.json").read_text())
    (folder / "clip.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(DemoPackError, match="sha256"):
        load_demo_pack(folder=folder)
    assert load_demo_pack(folder=folder, verify=False).clip is not None


# ---------------------------------------------------------------------------- eval


def test_eval_functions_report_every_gate(pack):
    ev = E.evaluator_accuracy(pack.evaluator, n=10, seed=0)
    assert set(ev["accuracy"]) == set(HEADS) and ev["counted"]["style"] == 10
    assert all(math.isnan(a) or 0 <= a <= 1 for a in ev["accuracy"].values())

    zs = E.clip_zero_shot(pack.clip, n=10, seed=0)
    assert set(zs["plain"]) == set(zs["ensemble"]) == {*ATTRIBUTES, "style"}

    gen = E.generator_readback(pack.generator, pack.evaluator, n=6, seed=0)
    assert set(gen["readback"]) == set(gen["frequency_gap_pts"]) == set(ATTRIBUTES)
    for name, freq in gen["frequency"].items():
        if gen["counted"][name]:
            assert sum(freq.values()) == pytest.approx(1.0)
    assert 0 <= gen["confident"] <= 1

    times = E.timings(pack.generator, pack.clip, repeats=1)
    assert set(times) == {"synthesis", "clip_image", "clip_text"}

    gates = (E.evaluator_gates(ev) + E.clip_gates(zs) + E.generator_gates(gen)
             + E.time_gates(0.5, times))
    assert {g.section for g in gates} == {"evaluator", "clip", "generator", "times"}
    names = {g.name for g in gates}
    for attr in ("mouth", "eyes", "glasses"):
        assert f"{attr} read back" in names
    table = E.format_table(gates)
    assert all(g.result in ("PASS", "FAIL", "info") for g in gates)
    assert table.splitlines()[0].split() == ["section", "check", "measured", "goal", "result",
                                            "note"]
    assert ">= 97%" in table and ">= 90%" in table and ">= 85%" in table
    assert "<= 10 pts" in table and "< 3 s" in table
    assert "gates pass" in E.summary(gates)


def test_gate_goals_and_unmeasured_numbers():
    assert E.Gate("x", "a", 0.97, 0.97).passed
    assert not E.Gate("x", "a", 0.969, 0.97).passed
    assert E.Gate("x", "t", 10.0, 10.0, higher_is_better=False, unit="pts").passed
    assert not E.Gate("x", "t", 3.0, 3.0, higher_is_better=False, unit="s").passed
    assert E.Gate("x", "n", math.nan, 0.9).result == "FAIL"  # nothing counted is no pass
    assert E.Gate("x", "i", 0.5).result == "info"
    # the grid shows the first of the faces the read-back scores, for any --seed
    assert E.generator_seeds(24, 3) == E.generator_seeds(1000, 3)[:24]
    assert E.generator_seeds(5) == [0, 1, 2, 3, 4]


def test_eval_cli_prints_the_table_and_writes_the_grid(trained, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    rc = E.main(["--models", str(trained["out"]), "--n-eval", "8", "--n-gen", "4", "--grid",
                 str(grid), "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc in (0, 1)  # tiny models fail the gates; the run itself must work
    assert "section" in out and "gates pass" in out and str(grid) in out
    with Image.open(grid) as im:
        assert im.format == "PNG"
        size = im.size
    # 2x upscaled: 6 render|generated pairs per row, then one face per style
    assert size[0] >= 2 * 6 * 2 * 64 and size[1] >= 2 * (4 + 3) * 64
    rgb = np.asarray(Image.open(grid).convert("RGB"))
    assert rgb.std() > 10


def test_eval_cli_checks_grid_and_device_before_measuring(trained, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    base = ["--models", str(trained["out"]), "--n-eval", "2", "--n-gen", "2", "--repeats", "1"]
    assert E.main([*base, "--grid", str(a_file / "grid.png")]) == 2
    assert E.main([*base, "--grid", str(tmp_path)]) == 2  # a folder, not a file name
    assert E.main([*base, "--device", "banana"]) == 2
    captured = capsys.readouterr()
    assert "evaluator:" not in captured.out  # nothing was measured
    assert "is a file" in captured.err and "unknown device" in captured.err


@pytest.mark.parametrize("bad", [("--n-eval", "0"), ("--n-gen", "0"), ("--repeats", "0"),
                                 ("--seed", "-1")])
def test_eval_cli_refuses_bad_numbers(bad):
    with pytest.raises(SystemExit):
        E.main(["--models", "/nonexistent", *bad])


def test_eval_cli_without_a_pack_says_how_to_make_it(tmp_path, capsys):
    assert E.main(["--models", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    # into that folder: without --out the recipe wrote the bundled pack's
    assert f"python -m editor.toyfaces.train generator --out {tmp_path / 'none'}`" in err
    assert recipe_command("clip", DEMO_MODELS_DIR) == "python -m editor.toyfaces.train clip"


def test_the_advice_for_a_missing_pack_quotes_a_folder_with_spaces(tmp_path, capsys):
    # "--out /home/me/my models" pasted into a shell trained into "/home/me/my" (or failed
    # with "unrecognized arguments: models")
    import shlex

    folder = tmp_path / "my models"
    assert E.main(["--models", str(folder)]) == 2
    command = capsys.readouterr().err.split("`")[1]
    assert shlex.split(command)[-2:] == ["--out", str(folder)]


def test_eval_cli_stops_on_ctrl_c_without_a_traceback(trained, monkeypatch, capsys):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(E, "clip_zero_shot", interrupted)
    try:
        rc = E.main(["--models", str(trained["out"]), "--n-eval", "2", "--n-gen", "2"])
    except KeyboardInterrupt:  # (a traceback, where the train command says one line)
        rc = None
    assert rc == 130 and "interrupted" in capsys.readouterr().err
