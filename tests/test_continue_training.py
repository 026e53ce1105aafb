"""The demo generator recipe: continuing training from an earlier generator file."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from editor.core.checkpoints import load_generator, save_generator
from editor.core.errors import AtelierError
from editor.toyfaces import conditioning, style_groups
from editor.toyfaces import train_generator as T


def test_continue_from_keeps_every_weight_and_the_groups(tmp_path):
    old = T.build(seed=1)
    style_groups.constrain(old)
    path = save_generator(old, tmp_path / "grouped.safetensors")
    new = T.build(seed=2)
    style_groups.constrain(new)
    T.continue_from(new, str(path))
    assert style_groups.leak(new) == 0.0
    z = conditioning.z_for_seeds([5, 6])
    with torch.no_grad():
        torch.testing.assert_close(new.generate(z, noise_mode="const"),
                                   load_generator(path).generator.generate(z, noise_mode="const"))


def test_continue_from_refuses_another_architecture(tmp_path):
    from editor.core.generator import Generator, GeneratorConfig

    other = Generator(GeneratorConfig(resolution=16, style_dim=16, n_mlp=1,
                                      channels=(16, 16, 16), z_dim=T.ARCH.z_dim))
    path = save_generator(other, tmp_path / "small.safetensors")
    with pytest.raises(AtelierError, match="not a toyfaces-64 generator"):
        T.continue_from(T.build(seed=0), str(path))


def test_recipe_continues_a_generator_and_records_it(tmp_path, monkeypatch):
    import json

    from editor.toyfaces.train import main as train_main

    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    start = T.build(seed=1)
    style_groups.constrain(start)
    path = save_generator(start, tmp_path / "start.safetensors")
    out = tmp_path / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        assert train_main(["generator", "--steps", "1", "--batch", "4", "--threads", "1",
                           "--grouped-styles", "--continue-from", str(path),
                           "--out", str(out), "--tag", "test", "--log-every", "1"]) == 0
    card = json.loads((out / "generator.json").read_text())
    assert f"--continue-from {path}" in card["recipe"]
    assert card["training"]["steps"] == 1
    assert style_groups.leak(load_generator(out / "generator.safetensors").generator) == 0.0


def test_recipe_refuses_to_continue_an_ungrouped_generator_as_grouped(tmp_path, monkeypatch):
    from editor.toyfaces.train import main as train_main

    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    path = save_generator(T.build(seed=1), tmp_path / "plain.safetensors")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):  # one line, exit 2
        assert train_main(["generator", "--steps", "1", "--batch", "2", "--threads", "1",
                           "--grouped-styles", "--continue-from", str(path),
                           "--out", str(tmp_path / "out"), "--tag", "test"]) == 2
    assert "not trained with --grouped-styles" in buf.getvalue()
    assert "Traceback" not in buf.getvalue() and "step 1/1" not in buf.getvalue()
    assert not (tmp_path / "out" / "generator.safetensors").exists()
