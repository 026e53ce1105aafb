"""Training the demo generator on faces pushed along averaged attribute directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editor.core.checkpoints import load_generator
from editor.core.paths import DEMO_MODELS_DIR
from editor.toyfaces import direction_training as D
from editor.toyfaces import style_groups
from editor.toyfaces import train_generator as T

DEMO_GENERATOR = DEMO_MODELS_DIR / "generator.safetensors"


@pytest.fixture(scope="module")
def demo():
    return load_generator(DEMO_GENERATOR).generator.float().eval()


def test_an_averaged_change_moves_only_its_attributes_channels(demo):
    faces = D.random_faces(np.random.default_rng(0), 64)
    averaged = D.averaged_changes(demo, faces)
    groups = style_groups.flat_channel_groups(demo)
    assert groups is not None
    for key in [("glasses", "sunglasses"), ("mouth", "smile"), ("skin", "tan")]:
        change = averaged.changes[key]
        moved = (change.abs() / averaged.std) > D.NEGLIGIBLE
        assert moved.any()
        assert set(groups[moved.numpy()]) == {key[0]}
    assert len(averaged.changes) == sum(len(v) for v in D.ATTRIBUTES.values())


def test_a_push_is_shaped_like_a_text_edit():
    std = torch.rand(300) + 0.5
    change = torch.zeros(300)
    change[:40] = torch.randn(40)
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = D.push(change, std, rng)
        kept = p != 0
        assert D.MIN_CHANNELS <= int(kept.sum()) <= 40
        assert not kept[40:].any()
        assert torch.equal(torch.sign(p[kept]), torch.sign(change[kept]))
        # the kept channels are the strongest (in std) and keep their proportions
        score = change.abs() / std
        assert float(score[kept].min()) >= float(score[~kept].max())
        ratio = p[kept] / change[kept]
        torch.testing.assert_close(ratio, ratio[0].expand_as(ratio))
        strongest = float((p.abs() / std).max())
        assert D.STRENGTH_RANGE[0] <= strongest <= D.STRENGTH_RANGE[1]
    assert torch.equal(D.push(torch.zeros(300), std, rng), torch.zeros(300))


def test_pushed_faces_are_the_targets_and_runs_repeat(demo):
    faces = T.batch_faces(step=7, batch=16, seed=0)
    code = demo.styles(demo.map_z(D.encode_faces(faces)))
    runs = [D.DirectionPushes(seed=0).apply(demo, 7, code, faces, fraction=0.5)
            for _ in range(2)]
    (pushed, targets), (pushed2, targets2) = runs
    assert targets == targets2 and torch.equal(pushed.flat(), pushed2.flat())
    moved = (pushed.flat() != code.flat()).any(1)
    assert 0 < int(moved.sum()) < len(faces)
    groups = style_groups.flat_channel_groups(demo)
    for i, ((before, jitter), (after, jitter2)) in enumerate(zip(faces, targets, strict=True)):
        assert jitter == jitter2
        changed = [a for a in D.ATTRIBUTES if getattr(before, a) != getattr(after, a)]
        assert len(changed) <= 1
        if not moved[i]:
            assert after == before
        elif changed:  # the push moved that attribute's channels only
            delta = (pushed.flat()[i] - code.flat()[i]) != 0
            assert set(groups[delta.numpy()]) == {changed[0]}
    none = D.DirectionPushes(seed=0).apply(demo, 7, code, faces, fraction=0.0)
    assert none[0] is code and none[1] == faces


def test_recipe_records_its_pushes(tmp_path, monkeypatch):
    import contextlib
    import io
    import json

    from editor.toyfaces.train import main as train_main

    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(D, "FIT_FACES", 8)
    out = tmp_path / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        assert train_main(["generator", "--steps", "2", "--batch", "4", "--threads", "1",
                           "--grouped-styles", "--direction-pushes", "0.5",
                           "--out", str(out), "--tag", "test", "--log-every", "1"]) == 0
    card = json.loads((out / "generator.json").read_text())
    assert "--direction-pushes 0.5" in card["recipe"]
    assert style_groups.leak(load_generator(out / "generator.safetensors").generator) == 0.0
