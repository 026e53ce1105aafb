"""`atelier edit` end to end on tiny models: edits, recipe in the PNG, exact replay."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from editor.cli import main
from editor.core.checkpoints import save_generator
from editor.core.image_io import read_recipe
from editor.engine.session import Session
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


def test_edit_errors_are_one_clear_line(tmp_path, models, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"existing")
    assert main(["edit", "--seed", "1", *models, "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
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
