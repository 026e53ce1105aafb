"""Packed float tensors in recipes: exact, compact, and clear errors for bad text."""

from __future__ import annotations

import json

import pytest
import torch

from editor.engine.compose import EditError, EditingContext
from editor.engine.session import Edit, Session, Source
from editor.engine.tensor_text import PackedTensorError, decode_floats, encode_floats


def _channels(gen) -> int:
    return sum(spec.channels for spec in gen.style_specs)


def test_packing_is_exact_and_smaller_than_json():
    t = torch.randn(9088, generator=torch.Generator().manual_seed(0))
    text = encode_floats(t)
    assert torch.equal(decode_floats(text, (9088,)), t)
    assert len(text) < 0.6 * len(json.dumps(t.tolist()))
    assert torch.equal(decode_floats(encode_floats(t.view(32, 284)), (32, 284)), t.view(32, 284))


def test_a_sparse_delta_is_packed_compressed_exactly_and_small(tiny_generator):
    # A focused discovered edit moves 30 of 9,088 channels yet took 48 KB of base64 at
    # 1024 px: two of them pushed the recipe out of a JPEG's 64 KB XMP packet.
    delta = torch.zeros(9088)
    delta[torch.randperm(9088, generator=torch.Generator().manual_seed(2))[:30]] = \
        torch.randn(30, generator=torch.Generator().manual_seed(3))
    text = encode_floats(delta)
    assert text.startswith("f32z:9088:") and len(text) < 1000
    assert torch.equal(decode_floats(text, (9088,)), delta)

    n = _channels(tiny_generator)
    small = torch.zeros(n)
    small[:3] = torch.tensor([0.5, -1.25, 2.0])
    session = Session(source=Source(seed=4), edits=(
        Edit("delta", {"delta": encode_floats(small)}, strength=1.0, id="e"),))
    recipe = json.loads(session.to_json())
    assert recipe["version"] == 3  # a version-2 reader says to update, not "malformed"
    ctx = EditingContext(tiny_generator)
    assert torch.equal(ctx.render(Session.from_json(session.to_json())), ctx.render(session))


def test_compressed_text_that_unpacks_to_more_than_its_shape_is_refused():
    import base64
    import zlib

    bomb = base64.b64encode(zlib.compress(bytes(40_000_000), 9)).decode()
    with pytest.raises(PackedTensorError, match="more numbers"):
        decode_floats(f"f32z:4:{bomb}", (4,))
    cut = base64.b64encode(zlib.compress(bytes(4000), 9)[:-6]).decode()
    with pytest.raises(PackedTensorError, match="truncated"):
        decode_floats(f"f32z:1000:{cut}", (1000,))
    with pytest.raises(PackedTensorError, match="malformed"):
        decode_floats(f"f32z:1000:{base64.b64encode(b'not zlib').decode()}", (1000,))


@pytest.mark.parametrize("text, match", [
    ("f32:3:AAAA", "shape"),
    ("f32:2:AAAA", "truncated"),
    ("f32:1:A!AA", "malformed"),
    ("[1, 2]", "malformed"),
    (None, "malformed"),
])
def test_bad_packed_text_is_refused_clearly(text, match):
    with pytest.raises(PackedTensorError, match=match):
        decode_floats(text, (1,) if "f32:1" in str(text) else (2,))


def test_packed_delta_edit_renders_like_the_list_it_replaces(tiny_generator):
    gen = tiny_generator
    delta = torch.randn(_channels(gen), generator=torch.Generator().manual_seed(1)) * 0.3
    as_list = Edit("delta", {"delta": delta.tolist()}, strength=1.5, id="e")
    packed = Edit("delta", {"delta": encode_floats(delta)}, strength=1.5, id="e")
    ctx = EditingContext(gen)
    source = Source(seed=4)
    old = ctx.render(Session(source=source, edits=(as_list,)))
    new_session = Session(source=source, edits=(packed,))
    assert torch.equal(ctx.render(new_session), old)
    recipe = json.loads(new_session.to_json())
    assert recipe["version"] == 2  # a version-1 reader cannot read packed text
    assert torch.equal(EditingContext(gen).render(Session.from_json(new_session.to_json())), old)
    assert json.loads(Session(source=source, edits=(as_list,)).to_json())["version"] == 1


@pytest.mark.parametrize("make, match", [
    (lambda n: encode_floats(torch.zeros(n + 1)), "shape"),
    (lambda n: [0.0] * (n - 1), "channels"),
    (lambda n: [float("nan")] * n, "non-finite"),
    (lambda n: encode_floats(torch.full((n,), float("inf"))), "non-finite"),
    (lambda n: "f32:nonsense", "malformed"),
    (lambda n: {"not": "a delta"}, "malformed"),
])
def test_a_bad_delta_is_an_edit_error_not_a_crash(tiny_generator, make, match):
    gen = tiny_generator
    edit = Edit("delta", {"delta": make(_channels(gen))}, name="found", id="e")
    with pytest.raises(EditError, match=match):
        EditingContext(gen).render(Session(source=Source(seed=1), edits=(edit,)))


def test_a_bad_latent_or_delta_is_named_in_a_sentence():
    # the callers put what the text is before the error: "the recipe's latent truncated"
    # and "the style delta of an edit malformed" read without their verb
    from editor.engine.compose import decode_wplus, delta_of_edit

    cut = encode_floats(torch.ones(2, 4))[:-4]
    with pytest.raises(EditError) as info:
        decode_wplus(cut, 2, 4)
    assert str(info.value) == "the recipe's latent is truncated"
    with pytest.raises(EditError) as info:
        delta_of_edit(Edit("delta", {"delta": "f32:3:AAA"}), 3)  # bad padding
    assert str(info.value).startswith("the style delta of an edit is malformed (")
    with pytest.raises(EditError) as info:
        delta_of_edit(Edit("delta", {"delta": "f32:x"}, name="smile"), 3)
    assert str(info.value) == "the style delta of smile is malformed"
