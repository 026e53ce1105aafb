"""The document model: edit stack operations, recipes, composition of style deltas."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np
import pytest
import torch

from editor.engine.compose import EditError, EditingContext
from editor.engine.session import Edit, RecipeError, Session, Source


def _delta_edit(code_channels: int, index: int, value: float, **kw) -> Edit:
    delta = [0.0] * code_channels
    delta[index] = value
    return Edit(kind="delta", params={"delta": delta}, **kw)


def test_stack_operations_are_pure_and_ordered():
    a = Edit("global", {"neutral": "face", "target": "face with glasses"}, name="glasses")
    b = Edit("global", {"neutral": "face", "target": "smiling face"}, strength=2.0)
    s0 = Session(source=Source(seed=3))
    s1 = s0.add_edit(a).add_edit(b)
    assert s0.edits == () and [e.id for e in s1.edits] == [a.id, b.id]
    s2 = s1.move_edit(b.id, 0)
    assert [e.id for e in s2.edits] == [b.id, a.id]
    s3 = s2.update_edit(a.id, strength=-3.0, enabled=False)
    assert s3.edit(a.id).strength == -3.0 and not s3.edit(a.id).enabled
    assert s3.active_edits == (s3.edit(b.id),)
    assert s3.remove_edit(b.id).edits == (s3.edit(a.id),)
    assert a.title == "glasses" and "smiling face" in b.title
    with pytest.raises(KeyError):
        s3.update_edit("nope", strength=1.0)


def test_recipe_round_trip_is_exact():
    s = Session(source=Source(seed=11, psi=0.5)).add_edit(
        Edit("global", {"neutral": "face", "target": "face with a beard", "beta": 0.12},
             strength=3.5, name="beard"))
    again = Session.from_json(s.to_json())
    assert again == s
    assert json.loads(s.to_json())["version"] == 1


@pytest.mark.parametrize("text,match", [
    ("not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a Latent Atelier recipe"),
    ('{"format": "latent-atelier-recipe", "version": 99}', "newer"),
    ('{"format": "latent-atelier-recipe", "version": 1}', "incomplete"),
    ('{"format": "latent-atelier-recipe", "version": 1, "source": {"kind": "moon"}}',
     "unknown source"),
    # a setting of a newer version was left out in silence: another picture
    ('{"format": "latent-atelier-recipe", "version": 1, "source": {"kind": "seed"}, '
     '"edits": [{"kind": "global", "params": {"target": "a", "sharpen": 2}}]}',
     r"settings this version does not know \(sharpen\).*newer"),
    # Python's "Unterminated string starting at: line 1 column 42 (char 41)"
    ('{"format": "latent-atelier-recipe", "version": 1, "source": {"kind', "cut short"),
    ('{"format": "latent-atelier-recipe", "version": 1, "source": {"kind": "seed"}',
     "cut short"),
])
def test_bad_recipes_give_clear_errors(text, match):
    with pytest.raises(RecipeError, match=match):
        Session.from_json(text)


def test_composition_adds_scaled_deltas_and_caches_them(tiny_generator):
    ctx = EditingContext(tiny_generator)
    n = sum(s.channels for s in tiny_generator.style_specs)
    e1 = _delta_edit(n, 5, 1.0, strength=2.0)
    e2 = _delta_edit(n, 9, -1.0, strength=0.5)
    session = Session(source=Source(seed=1)).add_edit(e1).add_edit(e2)
    base = ctx.compose(Session(source=Source(seed=1))).flat()
    edited = ctx.compose(session).flat()
    diff = edited - base
    assert diff[0, 5] == pytest.approx(2.0) and diff[0, 9] == pytest.approx(-0.5)
    assert (diff.abs() > 1e-6).sum() == 2
    # changing a strength reuses the cached direction object
    d1 = ctx.direction(e1)
    s2 = session.update_edit(e1.id, strength=7.0)
    assert ctx.direction(s2.edit(e1.id)) is d1
    assert (ctx.compose(s2).flat() - base)[0, 5] == pytest.approx(7.0)
    # disabling removes the contribution
    s3 = session.update_edit(e2.id, enabled=False)
    assert (ctx.compose(s3).flat() - base)[0, 9] == pytest.approx(0.0)


def test_a_stack_longer_than_the_cache_computes_no_direction_again(tiny_generator,
                                                                    monkeypatch):
    # with a fixed LRU bound, a stack one edit longer than it recomputed every edit's
    # direction on every frame: each evicted the next one the frame needed
    ctx = EditingContext(tiny_generator, cache_size=4)
    n = sum(s.channels for s in tiny_generator.style_specs)
    session = Session(edits=tuple(_delta_edit(n, i, 1.0) for i in range(6)))
    ctx.compose(session)
    computed = []
    compute = ctx._compute_direction
    monkeypatch.setattr(ctx, "_compute_direction",
                        lambda edit: computed.append(edit.id) or compute(edit))
    for strength in (2.0, 3.0):  # a slider moving one edit's strength
        session = session.update_edit(session.edits[3].id, strength=strength)
        ctx.compose(session, {})
    assert computed == []


def test_a_drag_of_one_edits_direction_computes_only_that_one(tiny_generator, monkeypatch):
    # the caches dropped the entry made first, not the one used last: a drag that changes
    # one edit's direction (its β) pushed out those the next frame needed, and every other
    # frame of a stack as long as the caches computed every edit's direction again
    ctx = EditingContext(tiny_generator, cache_size=4)
    n = sum(s.channels for s in tiny_generator.style_specs)
    session = Session(edits=tuple(_delta_edit(n, i, 1.0) for i in range(6)))
    ctx.compose(session, {})
    computed = []
    compute = ctx._compute_direction
    monkeypatch.setattr(ctx, "_compute_direction",
                        lambda edit: computed.append(edit.id) or compute(edit))
    dragged = session.edits[3].id
    for value in (2.0, 3.0, 4.0, 5.0):
        params = {"delta": _delta_edit(n, 3, value).params["delta"]}
        session = session.update_edit(dragged, params=params)
        ctx.compose(session, {})
    assert computed == [dragged] * 4


def test_text_edit_without_precompute_is_a_clear_error(tiny_generator):
    from tests.conftest import make_tiny_clip

    ctx = EditingContext(tiny_generator, make_tiny_clip())  # a CLIP, no directions yet
    s = Session().add_edit(Edit("global", {"neutral": "face", "target": "smile"}))
    with pytest.raises(EditError, match="precompute"):
        ctx.compose(s)


def _saved_latent(g, path):
    """A sampled W+ of generator g, saved to path (.npy); returns (1, n_latent, w_dim)."""
    with torch.no_grad():
        w = g.mapping(torch.randn(1, g.z_dim))
    np.save(path, w[0].numpy())
    return w


def test_wplus_source_from_file(tmp_path, tiny_generator):
    g = tiny_generator
    path = tmp_path / "w.npy"
    w = _saved_latent(g, path)
    ctx = EditingContext(g)
    img = ctx.render(Session(source=Source(kind="wplus", wplus_path=str(path))))
    with torch.no_grad():
        assert torch.allclose(img, g.synthesize(g.styles(w)), atol=1e-6)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(EditError, match="shape"):
        ctx.render(Session(source=Source(kind="wplus", wplus_path=str(bad))))


def test_editor_state_shows_a_draft_only_with_a_target_and_strength():
    from editor.engine.editor_state import EditorState, new_draft

    state = EditorState(Session(source=Source(seed=3)), new_draft("a face", "", strength=4.0))
    assert state.rendered_session().edits == ()  # no target yet
    state = state.update(state.draft.id, params={**state.draft.params, "target": "a smile"})
    assert [e.params["target"] for e in state.rendered_session().edits] == ["a smile"]
    assert state.session.edits == ()  # the stack itself is untouched
    zero = state.update(state.draft.id, strength=0.0)
    assert zero.rendered_session().edits == ()

    committed = state.commit_draft()
    assert [e.id for e in committed.session.edits] == [state.draft.id]
    assert committed.draft.id != state.draft.id and committed.draft.strength == 0.0
    assert committed.draft.params["target"] == "a smile"  # the wording carries over
    assert committed.rendered_session() == committed.session
    renamed = committed.update(state.draft.id, name="smile")
    assert renamed.session.edits[0].name == "smile" and renamed.draft == committed.draft


def test_pack_edit_defaults_start_new_drafts_and_survive_commit():
    from editor.engine.editor_state import EditDefaults, EditorState, new_draft

    auto = EditDefaults(alpha=3.0, beta=0.3, auto_beta=True, min_channels=25)
    draft = new_draft("a face", "a smile", defaults=auto)
    assert draft.params == {"neutral": "a face", "target": "a smile", "beta": 0.3,
                            "auto_beta": True, "min_channels": 25}
    assert new_draft().params["beta"] == EditDefaults().beta and \
        "auto_beta" not in new_draft().params
    committed = EditorState(Session(), draft).commit_draft()
    assert committed.draft.params["auto_beta"] and committed.draft.params["min_channels"] == 25
    gated = EditorState(Session(), new_draft("a face", "a smile", defaults=EditDefaults(
        gate=True))).commit_draft()
    assert gated.draft.params["gate"] is True and "gate" not in new_draft().params


def test_cli_edits_take_the_packs_defaults_unless_given(tmp_path):
    import argparse

    from editor.cli.edit import build_session
    from editor.cli.edit_args import register
    from editor.engine.editor_state import EditDefaults
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    defaults = EditDefaults(alpha=5.0, beta=0.4, auto_beta=True, min_channels=30)

    def edits(*argv):
        args = parser.parse_args(["edit", "-o", str(tmp_path / "x.png"), *argv])
        return build_session(args, 1.0, defaults).edits

    (plain,) = edits("--target", "a smile")
    assert plain.strength == 5.0 and plain.params["auto_beta"] and \
        plain.params["min_channels"] == 30
    (fixed,) = edits("--target", "a smile", "--beta", "0.2", "--alpha", "2")
    assert fixed.strength == 2.0 and fixed.params["beta"] == 0.2 and \
        "auto_beta" not in fixed.params
    assert "gate" not in plain.params
    (gated, ungated) = edits("--target", "a smile", "--gate", "--target", "a frown")
    assert gated.params["gate"] is True and "gate" not in ungated.params
    defaults = EditDefaults(gate=True)
    (by_default, opted_out) = edits("--target", "a smile", "--target", "a frown", "--no-gate")
    assert by_default.params["gate"] is True and "gate" not in opted_out.params


def _good_recipe() -> dict:
    return Session(source=Source(seed=4, psi=0.7)).add_edit(
        Edit("global", {"neutral": "face", "target": "face with a beard", "beta": 0.12},
             strength=3.0)).to_recipe()


@pytest.mark.parametrize("change,match", [
    (lambda d: d.update(version="abc"), "version must be a whole number"),
    (lambda d: d.update(version=1.9), "version must be a whole number"),
    (lambda d: d.update(version=0), "version must be at least 1"),
    (lambda d: d["source"].update(seed="abc"), "seed must be a whole number"),
    (lambda d: d["source"].update(seed=True), "seed must be a whole number"),
    (lambda d: d["source"].update(seed=-3), "seed must be at least 0"),
    (lambda d: d["source"].update(psi="x"), "psi must be a number"),
    (lambda d: d["source"].update(psi=float("nan")), "psi must be a finite number"),
    (lambda d: d["edits"][0].update(strength=10**400), "strength must be a finite number"),
    (lambda d: d["edits"][0].update(strength=None), "strength must be a number"),
    (lambda d: d["edits"][0].update(params=[1]), "params must be an object"),
    (lambda d: d["edits"][0].update(enabled="no"), "enabled must be true or false"),
    (lambda d: d["edits"][0].update(name=5), "name must be text"),
    # values are quoted as the file spells them, not as Python does (True, None, 'x')
    (lambda d: d["edits"][0].update(name=True), "name must be text, got true$"),
    (lambda d: d["source"].update(seed="7"), 'seed must be a whole number, got "7"$'),
    (lambda d: d["source"].update(psi=[0.5]), "psi must be a number, got a list$"),
    (lambda d: d.update(noise_mode=None), "unknown noise mode null "),
    (lambda d: d["edits"][0]["params"].update(gate="yes"), 'gate must be true or false, got "yes"'),
    (lambda d: d.update(edits={"a": 1}), "edits must be a list"),
    (lambda d: d.update(noise_mode="bogus"), "unknown noise mode"),
    (lambda d: d.update(generator=[1]), "generator must be an object"),
    (lambda d: d.update(directions="abc"), "directions must be an object"),
    (lambda d: d["source"].update(extra=1), r"source has a field .* not know \(extra\)"),
    (lambda d: d["edits"][0].update(mask="m"), "edit 1 has a field this version does not know"),
    (lambda d: d.update(clip={"name": "c", "content_hash": "h", "size": 3}), "clip has a field"),
    (lambda d: d.update(directions={"name": 3, "content_hash": "k"}), "directions name"),
    # a text edit's params are read with the recipe: a null beta turned auto-β on in the
    # CLI and stopped the window's redraws (float(None) in the prompt panel)
    (lambda d: d["edits"][0]["params"].update(beta=None),
     "edit 1: a text edit's beta must be a finite number, got null"),
    (lambda d: d["edits"][0]["params"].update(auto_beta=True, min_channels=None),
     "min_channels must be a finite number"),
    (lambda d: d["edits"][0]["params"].pop("target"), "edit 1: a text edit needs a target"),
])
def test_a_recipe_field_of_the_wrong_type_or_range_is_malformed(change, match):
    d = _good_recipe()
    Session.from_recipe(json.loads(json.dumps(d)))  # the unchanged recipe reads
    change(d)
    with pytest.raises(RecipeError, match=match):
        Session.from_json(json.dumps(d))


def _delta_recipe(params: dict) -> dict:
    d = _good_recipe()
    d["edits"][0].update(kind="delta", params=params)
    return d


@pytest.mark.parametrize("params,match", [
    ({}, "edit 1: it has no style delta"),
    ({"delta": {"a": 1}}, "edit 1: its style delta is malformed"),
    ({"delta": [1.0, "x"]}, "edit 1: its style delta is malformed"),
    ({"delta": [0.5, True]}, "edit 1: its style delta is malformed"),
    ({"delta": "f32z:1234:zzzz"}, "edit 1: its style delta is malformed"),
    ({"delta": "f32:2x3:" + "A" * 32}, "edit 1: its style delta is malformed"),
    ({"delta": "f32:4:AAAAAAAA"}, "edit 1: its style delta is truncated"),
    ({"delta": [float("nan")] * 10}, "edit 1: its style delta holds non-finite values"),
    ({"delta": []}, "edit 1: its style delta is empty"),
    ({"delta": "f32:0:"}, "edit 1: its style delta is empty"),
    # a few bytes claiming billions of numbers: refused before anything is unpacked (it
    # was decoded at its own word, 1.1 GB for a 52 KB recipe; more than C takes raised
    # OverflowError, helper-123)
    ({"delta": "f32z:10000000:eJwDAAAAAAE="}, "edit 1: its style delta claims 10000000 "
                                             "numbers; at most 1,048,576 are read"),
    ({"delta": "f32z:99999999999999999999999:eJwDAAAAAAE="}, "claims 99999999999999999999 "),
    ({"delta": [10**400]}, "edit 1: its style delta holds non-finite values"),
    ({"delta": [1.0, 1e300]}, "edit 1: its style delta holds non-finite values"),
])
def test_a_damaged_style_delta_is_malformed_not_left_out(params, match):
    # `atelier edit --recipe` left such an edit out with a warning and wrote the picture
    # without it (exit 0), where the same damage to a text edit is refused
    from editor.engine.tensor_text import encode_floats

    for good in ([0.0, 1.5, -2.0], encode_floats(torch.linspace(-1, 1, 48))):
        (edit,) = Session.from_json(json.dumps(_delta_recipe({"delta": good}))).edits
        assert edit.kind == "delta"
    with pytest.raises(RecipeError, match=match):
        Session.from_json(json.dumps(_delta_recipe(params)))


def test_an_edit_of_a_kind_this_version_does_not_draw_is_refused():
    d = _good_recipe()
    d["edits"][0]["kind"] = "mapper"
    with pytest.raises(RecipeError, match=r"edit 1 is of a kind this version does not know "
                                          r'\("mapper"\); .* please update'):
        Session.from_json(json.dumps(d))


def test_a_recipe_names_the_directions_its_text_edits_used():
    """Two packs for the same models can differ (one computed here, one imported from
    StyleCLIP's fs3.npy): the recipe says which, and a replay with others is told."""
    from editor.engine.session import ModelIdentity

    made = ModelIdentity("imported fs3.npy", "key-a")
    s = dataclasses.replace(Session.from_recipe(_good_recipe()), directions=made)
    again = Session.from_json(s.to_json())
    assert again.directions == made
    other = ModelIdentity("computed", "key-b")
    assert [k for k, *_ in again.model_mismatches(None, None, other)] == ["directions"]
    assert again.model_mismatches(None, None, made) == []
    no_text = dataclasses.replace(again, edits=())
    assert no_text.model_mismatches(None, None, other) == []
    assert Session.from_recipe(_good_recipe()).directions is None  # older recipes


def test_recipe_noise_modes_are_the_generators():
    from typing import get_args

    from editor.core.generator import NoiseMode
    from editor.engine.session import NOISE_MODES

    assert set(NOISE_MODES) == set(get_args(NoiseMode))


@pytest.mark.parametrize("text", ["", "  \n", "\ufeff"])
def test_an_empty_recipe_says_so(tmp_path, text):
    # it said "not valid JSON (Expecting value: line 1 column 1 (char 0))"
    path = tmp_path / "empty.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RecipeError, match="^the recipe is empty$"):
        Session.load(path)


def test_a_deeply_nested_or_non_utf8_recipe_is_not_a_recipe(tmp_path):
    with pytest.raises(RecipeError, match="nested too deeply"):
        Session.from_json("[" * 100_000 + "]" * 100_000)
    path = tmp_path / "latin1.json"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        Session.load(path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_recipe_file_that_never_ends_is_read_no_further_than_the_largest(tmp_path,
                                                                            monkeypatch):
    # a device says it holds 0 bytes: a recipe.json linked to /dev/zero (or urandom) was
    # read until memory ran out
    from editor.engine import session as session_module

    monkeypatch.setattr(session_module, "MAX_RECIPE_BYTES", 1_000_000)
    path = tmp_path / "recipe.json"
    path.symlink_to("/dev/zero")
    with pytest.raises(RecipeError, match=r"recipe.json is more than 1.0 MB: too large to "
                                          r"be a recipe \(they are at most 1 MB\)"):
        Session.load(path)


@pytest.mark.parametrize("params,match", [
    ({"neutral": "face"}, "needs a target prompt"),
    ({"target": 5}, "needs a target prompt"),
    ({"target": "a smile", "neutral": ["face"]}, "neutral prompt must be text"),
    ({"target": "a smile", "beta": "x"}, "beta must be a finite number"),
    ({"target": "a smile", "beta": 10**400}, "beta must be a finite number"),
    ({"target": "a smile", "beta": float("nan")}, "beta must be a finite number"),
    ({"target": "a smile", "beta": -0.1}, "β must be at least 0"),
    ({"target": "a smile", "auto_beta": True, "min_channels": 0}, "min_channels"),
    ({"target": "a smile", "beta": None}, "beta must be a finite number, got null"),
    ({"target": "a smile", "auto_beta": True, "min_channels": None}, "min_channels must be"),
    ({"target": "a smile", "auto_beta": True, "min_channels": 10.5},  # was drawn as 10
     "min_channels must be a whole number, got 10.5"),
])
def test_a_text_edit_with_bad_params_is_an_edit_error(tiny_generator, params, match):
    ctx = EditingContext(tiny_generator)
    with pytest.raises(EditError, match=match):
        ctx.direction(Edit("global", params))


def test_unreadable_latent_files_are_edit_errors(tmp_path, tiny_generator):
    g = tiny_generator
    ctx = EditingContext(g)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"a": 1}, tmp_path / "no_tensor.pt")
    np.save(tmp_path / "nan.npy", np.full((g.n_latent, g.w_dim), np.nan, np.float32))
    for name, match in (("empty.npy", "could not read"), ("text.pt", "not a saved latent"),
                        ("no_tensor.pt", "holds no tensor"), ("nan.npy", "non-finite")):
        with pytest.raises(EditError, match=match):
            ctx.render(Session(source=Source(kind="wplus", wplus_path=str(tmp_path / name))))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("suffix", [".npy", ".pt", ".safetensors"])
def test_a_latent_path_that_is_no_file_is_refused_unread(tmp_path, tiny_generator, suffix):
    # a recipe's wplus_path "/dev/zero" was read until memory ran out
    g = tiny_generator
    (tmp_path / f"zero{suffix}").symlink_to("/dev/zero")
    (tmp_path / f"folder{suffix}").mkdir()
    for name in (f"zero{suffix}", f"folder{suffix}"):
        with pytest.raises(EditError, match=f"the latent file {name} is not a file"):
            EditingContext(g).render(
                Session(source=Source(kind="wplus", wplus_path=str(tmp_path / name))))


def test_a_latent_file_source_carries_its_latent(tmp_path, tiny_generator):
    from editor.engine.compose import wplus_file_source

    g = tiny_generator
    path = tmp_path / "w.npy"
    _saved_latent(g, path)
    source = wplus_file_source(path, g.n_latent, g.w_dim)
    session = Session(source=source)
    ctx = EditingContext(g)
    before = ctx.render(session)
    np.save(path, np.zeros((g.n_latent, g.w_dim), np.float32))  # the file changes later
    path.rename(tmp_path / "moved.npy")
    again = Session.from_json(session.to_json())
    assert torch.equal(EditingContext(g).render(again), before)


def test_only_a_w_plus_source_without_its_latent_is_read_from_its_file(tmp_path):
    named = Source(kind="wplus", wplus_path="face.npy")
    assert named.latent_file == "face.npy"
    assert Source(kind="wplus", wplus_path="face.npy", wplus_data="carried").latent_file is None
    assert Source(kind="wplus", wplus_data="carried").latent_file is None
    assert Source(seed=3).latent_file is None
    assert named.found_in(tmp_path).latent_file == str(tmp_path / "face.npy")
    assert named.found_in(None) is named


@pytest.mark.parametrize("change,match", [
    (lambda d: d["source"].update(seed=2**31), "above the largest"),
    (lambda d: d["source"].update(psi=1e300), "outside"),
    (lambda d: d["source"].update(psi=-50), "outside"),
    (lambda d: d["edits"].append(dict(d["edits"][0])), "same id"),
    # the CLI wrote α 1e30 (a flat square); the window's boxes stop at ±100
    (lambda d: d["edits"][0].update(strength=1e30), "edit 1 strength 1e\\+30 is outside -100"),
    (lambda d: d["edits"][0].update(strength=-100.5), "outside"),
    # not "malformed ('source')"
    (lambda d: d.pop("source"), '^the recipe is incomplete: it has no "source"$'),
])
def test_recipe_sources_stay_within_what_the_window_can_show(change, match):
    d = _good_recipe()
    change(d)
    with pytest.raises(RecipeError, match=match):
        Session.from_json(json.dumps(d))


def test_a_number_too_long_to_read_is_refused_in_the_users_words():
    # it said "not valid JSON (... use sys.set_int_max_str_digits() to increase the limit)"
    text = json.dumps(_good_recipe()).replace('"seed": 4', '"seed": ' + "9" * 5000)
    with pytest.raises(RecipeError, match=r"a number too long .*\(4300\+ digits\)") as info:
        Session.from_json(text)
    assert "sys." not in str(info.value)


def test_a_session_file_marks_its_live_prompt_and_gives_it_back():
    from editor.engine.editor_state import DRAFT_KEY, EditDefaults, EditorState, new_draft

    stacked = Edit(kind="global", params={"target": "smiling face"}, strength=2.0)
    live = new_draft(target="face with glasses", strength=3.0)
    state = EditorState(Session().add_edit(stacked), live)
    recipe = state.to_session_file(state.rendered_session())
    assert recipe[DRAFT_KEY] == live.id
    session = Session.from_recipe(recipe)  # replays what was on screen: both edits
    assert [e.id for e in session.edits] == [stacked.id, live.id]
    back = EditorState(session, new_draft()).with_saved_draft(recipe[DRAFT_KEY])
    assert back == state
    # a prompt without a target is not in the file
    empty = EditorState(Session().add_edit(stacked), new_draft(target=" ", strength=2.0))
    assert DRAFT_KEY not in empty.to_session_file(empty.rendered_session())
    # one written at strength 0 is (it was lost): it comes back, and adds nothing
    manual = EditDefaults(auto_beta=False, beta=0.3)
    quiet = EditorState(Session().add_edit(stacked),
                        new_draft(target="x", defaults=manual, strength=0))
    recipe = quiet.to_session_file(quiet.rendered_session())
    assert recipe[DRAFT_KEY] == quiet.draft.id
    reopened = EditorState(Session.from_recipe(recipe), new_draft()).with_saved_draft(
        recipe[DRAFT_KEY])
    assert reopened == quiet
    for junk in (None, 7, "no-such-edit"):
        assert EditorState(session, new_draft()).with_saved_draft(junk).session == session


def test_unknown_words_are_those_outside_a_closed_vocabulary():
    from editor.engine.compose import unknown_words

    known = frozenset({"a", "face", "with", "sunglasses"})
    assert unknown_words(["a face", "A Face with SUNGLASSES!"], known) == ()
    assert unknown_words(["a face", "a face with a top hat, a TOP hat"], known) == ("top", "hat")
    assert unknown_words(["anything at all"], None) == ()
    # words in other scripts were cut at each non-ASCII letter ("caf", "n", "c", "d")
    assert unknown_words(["a café face with ünïcødé 3D sunglasses 🕶"], known) == (
        "café", "ünïcødé", "3d")


def test_a_text_edit_reports_the_words_its_clip_never_learned(tiny_generator):
    from editor.engine.compose import EditStatus
    from editor.methods import global_directions as gd
    from tests.conftest import make_tiny_clip

    clip = make_tiny_clip()
    n = sum(s.channels for s in tiny_generator.style_specs)
    stats = gd.StyleStats(mean=torch.zeros(n), std=torch.ones(n), n_samples=1)
    channels = torch.arange(n)
    relevance = gd.Relevance(channels, torch.nn.functional.normalize(
        torch.randn(n, clip.embed_dim), dim=1))
    edit = Edit("global", {"neutral": "a face", "target": "a face with a unicorn horn",
                           "beta": 0.0}, strength=1.0)
    session = Session().add_edit(edit)
    known = frozenset({"a", "face", "with"})
    context = EditingContext(tiny_generator, clip, stats, relevance, known_words=known)
    statuses: dict[str, EditStatus] = {}
    context.compose(session, statuses)
    assert statuses[session.edits[0].id].error is None
    assert statuses[session.edits[0].id].unknown_words == ("unicorn", "horn")
    statuses = {}
    EditingContext(tiny_generator, clip, stats, relevance).compose(session, statuses)
    assert statuses[session.edits[0].id].unknown_words == ()


def test_a_frame_reads_each_prompt_pair_once(tiny_generator):
    # every frame tokenized every text edit's prompts again for its notes: 36 µs an edit,
    # a sixth of a 50-edit frame on the demo model
    from editor.engine.compose import EditStatus

    class ReadingClip:
        reads: list[str] = []

        def read_words(self, text):
            self.reads.append(text)
            return text.lower().split()

        def prompt_is_cut(self, text):
            return len(text) > 40

    clip = ReadingClip()
    context = EditingContext(tiny_generator, clip, known_words=frozenset({"a", "face"}))
    edits = [Edit("global", {"neutral": "a face", "target": f"a face with {word}"})
             for word in ("zzq", "qqz")]
    session = Session(edits=tuple(edits))
    first = [(e.id, notes) for e, notes in context.prompt_warnings(session)]
    reads = len(clip.reads)
    for strength in (0.5, 1.5, 2.5):  # a slider moving one edit
        session = session.update_edit(edits[0].id, strength=strength)
        assert [(e.id, n) for e, n in context.prompt_warnings(session)] == first
    assert len(clip.reads) == reads == 4
    assert first[0][1] == EditStatus(unknown_words=("with", "zzq")).prompt_warnings()
    changed = session.update_edit(edits[0].id, params={**edits[0].params, "target": "a"})
    assert context.prompt_warnings(changed)[0][0].id == edits[1].id  # read anew: no notes
    assert len(clip.reads) == 6


def test_a_prompt_of_punctuation_only_is_reported(tiny_generator):
    # "!!! ???" has no word at all, yet CLIP embeds it and the edit moves the face in a
    # direction nobody chose: the line under the prompt said only "20 channels pass".
    from editor.engine.compose import EditStatus, wordless_prompts
    from editor.methods import global_directions as gd
    from editor.ui.prompt_panel import status_text
    from tests.conftest import make_tiny_clip

    assert wordless_prompts({"neutral": "a face", "target": "!!! ???"}) == ("target",)
    assert wordless_prompts({"neutral": "…", "target": "café 3"}) == ("neutral",)
    assert wordless_prompts({"neutral": "", "target": "face"}) == ()  # empty is no edit
    clip = make_tiny_clip()
    n = sum(s.channels for s in tiny_generator.style_specs)
    ctx = EditingContext(tiny_generator, clip,
                         gd.StyleStats(mean=torch.zeros(n), std=torch.ones(n), n_samples=1),
                         gd.Relevance(torch.arange(n), torch.nn.functional.normalize(
                             torch.randn(n, clip.embed_dim), dim=1)))
    edit = Edit("global", {"neutral": "a face", "target": "!!! ???", "beta": 0.0},
                strength=1.0)
    statuses: dict[str, EditStatus] = {}
    ctx.compose(Session().add_edit(edit), statuses)
    assert statuses[edit.id].wordless == ("target",)
    assert "⚠ The target prompt has no words" in status_text(statuses[edit.id])


def test_a_prompt_longer_than_the_clip_reads_is_reported(tiny_generator):
    # CLIP cuts a prompt at its context (32 tokens here, 77 for ViT-B/32, templates
    # included) and the line under the prompt said nothing of the words it never read.
    from editor.engine.compose import EditStatus
    from editor.methods import global_directions as gd
    from editor.ui.prompt_panel import status_text
    from tests.conftest import make_tiny_clip

    clip = make_tiny_clip()
    assert not clip.prompt_is_cut("a face with glasses")
    assert clip.prompt_is_cut("a face with glasses " * 8)  # 32 words
    # 24 words fit alone, not inside the longer templates ("a photo of the hard to see {}.")
    assert not clip.prompt_is_cut("a face with glasses " * 6, templates=("{}",))
    assert clip.prompt_is_cut("a face with glasses " * 6)
    n = sum(s.channels for s in tiny_generator.style_specs)
    ctx = EditingContext(tiny_generator, clip,
                         gd.StyleStats(mean=torch.zeros(n), std=torch.ones(n), n_samples=1),
                         gd.Relevance(torch.arange(n), torch.nn.functional.normalize(
                             torch.randn(n, clip.embed_dim), dim=1)))
    long = Edit("global", {"neutral": "a face", "target": "a face with a hat " * 6,
                           "beta": 0.0}, strength=1.0)
    short = Edit("global", {"neutral": "a face", "target": "a face with a hat",
                            "beta": 0.0}, strength=1.0)
    statuses: dict[str, EditStatus] = {}
    ctx.compose(Session().add_edit(long).add_edit(short), statuses)
    assert statuses[long.id].cut == ("target",) and statuses[short.id].cut == ()
    assert "target prompt is longer than this CLIP reads" in status_text(statuses[long.id])


def test_a_file_of_several_latents_asks_which_one(tmp_path, tiny_generator):
    # e4e's and StyleCLIP's latents.pt hold one (n_latent, w_dim) latent per test image;
    # such a file was refused for its shape, with no way to pick one.
    from editor.engine.compose import ManyLatentsError, load_wplus, wplus_file_source

    g = tiny_generator
    batch = torch.randn(3, g.n_latent, g.w_dim)
    path = tmp_path / "latents.pt"
    torch.save(batch, path)
    with pytest.raises(ManyLatentsError, match="holds 3 latents; choose one") as many:
        load_wplus(path, g.n_latent, g.w_dim)
    assert many.value.count == 3
    assert torch.equal(load_wplus(path, g.n_latent, g.w_dim, 2), batch[2:3])
    with pytest.raises(EditError, match="no number 3"):
        load_wplus(path, g.n_latent, g.w_dim, 3)
    source = wplus_file_source(path, g.n_latent, g.w_dim, 1)
    assert source.label == "latents.pt #1"
    assert torch.equal(EditingContext(g).render(Session(source=source)),
                       EditingContext(g).render(Session(source=wplus_file_source(
                           _one(tmp_path, batch[1]), g.n_latent, g.w_dim))))
    single = _one(tmp_path, batch[0])  # a file of one: number 0 is it, any other is not
    assert torch.equal(load_wplus(single, g.n_latent, g.w_dim, 0), batch[:1])
    with pytest.raises(EditError, match="holds 1 latent: there is no number 1"):
        load_wplus(single, g.n_latent, g.w_dim, 1)


def test_a_file_that_is_no_latent_is_said_in_words(tmp_path, tiny_generator):
    # a damaged .safetensors raised safetensors' own error past every reader (a traceback
    # from `atelier edit --wplus`), an empty one StopIteration, and a text file named as
    # a latent said "list index out of range"
    from editor.engine.compose import load_wplus

    g = tiny_generator
    (tmp_path / "junk.safetensors").write_bytes(bytes(range(256)) * 2)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "notes").write_text("root:x:0:0:root:/root:/bin/bash\n")
    cut = _one(tmp_path, torch.randn(g.n_latent, g.w_dim))
    cut.write_bytes(cut.read_bytes()[:200])
    for name, why in [("junk.safetensors", "a damaged safetensors file: "),
                      ("empty.safetensors", "a damaged safetensors file: "),
                      ("notes", "not a saved latent)"),
                      ("one.npy", "file seems not fully written"),
                      ("missing.npy", "No such file or directory)")]:
        with pytest.raises(EditError, match=f"could not read the latent file {name} "
                                            f"\\(.*{re.escape(why)}"):
            load_wplus(tmp_path / name, g.n_latent, g.w_dim)


def _one(tmp_path, latent):
    path = tmp_path / "one.npy"
    np.save(path, latent.numpy())
    return path


def test_a_recipe_with_a_damaged_or_generated_stack_is_refused():
    """3,000 edits froze the window for minutes and a 60 MB name was read: a recipe
    beyond what a person makes is refused, naming the count and the bound."""
    from editor.engine.session import MAX_EDITS, MAX_TEXT_CHARS

    assert MAX_EDITS == 1000 and MAX_TEXT_CHARS == 100_000
    d = _good_recipe()
    edit = d["edits"][0]
    d["edits"] = [{**edit, "id": f"e{i}"} for i in range(MAX_EDITS)]
    assert len(Session.from_recipe(d).edits) == MAX_EDITS  # the bound itself reads
    d["edits"].append({**edit, "id": "one-more"})
    with pytest.raises(RecipeError, match=r"has 1,001 edits; .* at most 1,000"):
        Session.from_recipe(d)
    long = "x" * (MAX_TEXT_CHARS + 1)
    for change, match in [
        (lambda d: d["edits"][0].update(name=long), "edit 1 name has 100,001 characters"),
        (lambda d: d["source"].update(label=long), "source label has 100,001 characters"),
        (lambda d: d["edits"][0]["params"].update(target=long),
         "edit 1: a text edit's target prompt has 100,001 characters; at most 100,000"),
        (lambda d: d["edits"][0]["params"].update(neutral=long), "neutral prompt has 100,001"),
    ]:
        d = _good_recipe()
        change(d)
        with pytest.raises(RecipeError, match=match):
            Session.from_recipe(d)
    # at the bound, and a packed latent (long by nature), still read
    d = _good_recipe()
    d["edits"][0].update(name="n" * MAX_TEXT_CHARS)
    d["edits"][0]["params"].update(target="t" * MAX_TEXT_CHARS)
    d["source"] = {"kind": "wplus", "wplus_data": "f32:1:" + "A" * 200_000}
    assert Session.from_recipe(d).edits[0].name == "n" * MAX_TEXT_CHARS


def test_a_note_names_a_few_unknown_words_and_counts_the_rest():
    # a pasted paragraph named 25 words, which ran out of the prompt panel and hid the
    # notes after them (helper-108's screenshots)
    from editor.engine.compose import EditStatus

    few = EditStatus(unknown_words=("zzq", "qqz"))
    assert few.prompt_warnings() == ["Words this CLIP never learned: “zzq”, “qqz”"]
    many = EditStatus(unknown_words=tuple(f"w{i}" for i in range(25)), cut=("target",))
    notes = many.prompt_warnings()
    assert notes[0] == ("Words this CLIP never learned: “w0”, “w1”, “w2”, “w3”, “w4” and "
                        "20 more")
    assert notes[1].startswith("The target prompt is longer")
