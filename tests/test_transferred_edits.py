"""The demo generator recipe's transferred edits (one face's asked-for change added to
another face) and continuing training from a generator file."""

from __future__ import annotations

import pytest
import torch

from editor.core.checkpoints import load_generator, save_generator
from editor.toyfaces import conditioning, style_groups
from editor.toyfaces import train_generator as T
from editor.toyfaces.attributes import ATTRIBUTES


def _changed(a, b) -> dict[str, tuple[str, str]]:
    return {n: (getattr(a, n), getattr(b, n)) for n in ATTRIBUTES if getattr(a, n) != getattr(b, n)}


def test_each_face_gets_one_new_value_and_a_donor_asked_for_the_same():
    faces = T.faces_for_step(0, 24, seed=0)
    edits = T.transferred_edits(faces, step=0, seed=0)
    assert edits.faces == faces
    borrowed = 0
    for face, donor, asked, edited in zip(edits.faces, edits.donors, edits.asked, edits.edited,
                                          strict=True):
        (name, (old, new)), = _changed(face[0], edited[0]).items()  # exactly one attribute
        assert old != new and edited[1] == face[1]  # the face keeps its jitter
        assert _changed(donor[0], asked[0]) == {name: (getattr(donor[0], name), new)}
        assert asked[1] == donor[1]
        borrowed += donor != face
    assert borrowed > len(faces) // 2  # most changes come from another face
    low, high = T.EDIT_STRENGTHS
    assert ((edits.strengths >= low) & (edits.strengths <= high)).all()
    again = T.transferred_edits(faces, step=0, seed=0)
    assert again.edited == edits.edited and torch.equal(again.strengths, edits.strengths)
    assert T.transferred_edits(faces, step=1, seed=0).edited != edits.edited


def test_transferred_styles_add_the_donors_scaled_change_and_train_the_mapping():
    gen = T.build(seed=0)
    edits = T.transferred_edits(T.faces_for_step(3, 4, seed=0), step=3, seed=0)
    code = T.transferred_styles(gen, edits)

    def flat(faces):
        return gen.styles(gen.map_z(T.encode_faces(faces))).flat()

    expected = flat(edits.faces) + edits.strengths[:, None] * (flat(edits.asked)
                                                               - flat(edits.donors))
    torch.testing.assert_close(code.flat(), expected)
    code.flat().sum().backward()
    assert gen.style[1].weight.grad is not None and gen.style[1].weight.grad.abs().sum() > 0


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
    with pytest.raises(ValueError, match="not a toyfaces-64 generator"):
        T.continue_from(T.build(seed=0), str(path))


def test_recipe_trains_with_transferred_edits_and_records_them(tmp_path, monkeypatch):
    import contextlib
    import io
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
                           "--transferred-edits", "2", "--transfer-weight", "0.5",
                           "--out", str(out), "--tag", "test", "--log-every", "1"]) == 0
    card = json.loads((out / "generator.json").read_text())
    assert "--transferred-edits 2 --transfer-weight 0.5" in card["recipe"]
    assert f"--continue-from {path}" in card["recipe"]
    assert "transfer_loss" in card["training"]["final_metrics"]
    assert style_groups.leak(load_generator(out / "generator.safetensors").generator) == 0.0
