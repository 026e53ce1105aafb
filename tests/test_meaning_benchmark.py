"""benchmarks/meaning.py: the counting, the batched rendering and the oracle, on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks import meaning as m
from editor.core.generator import z_from_seed
from editor.engine.compose import EditingContext
from editor.engine.editor_state import new_draft
from editor.engine.packs import DEMO_EDIT_DEFAULTS
from editor.engine.session import Edit, Session, Source
from editor.methods import global_directions as gd
from editor.methods import precompute as pc
from editor.toyfaces import captions
from editor.toyfaces.attributes import ATTRIBUTES, Attributes
from editor.toyfaces.evaluator import AttributeClassifier, Evaluator
from tests.conftest import make_tiny_clip, make_tiny_generator


def _edit(name: str) -> m.EditSpec:
    return m.select_edits(name)[0]


def _readings(rows: list[dict[str, str]]) -> m.Readings:
    """Evaluator readings per attribute from one dict per image (default: the face's)."""
    return {a: np.array([r[a] for r in rows]) for a in ATTRIBUTES}


def _as_read(face: Attributes, **changes: str) -> dict[str, str]:
    return {**face.as_dict(), **changes}


# --------------------------------------------------------------------------- edits


def test_defaults_are_the_demo_packs():
    draft = new_draft(defaults=DEMO_EDIT_DEFAULTS)
    assert m.DEFAULT_ALPHA == DEMO_EDIT_DEFAULTS.alpha
    assert m.DEFAULT_BETA == (None if draft.params.get("auto_beta") else draft.params["beta"])
    assert m.DEFAULT_MIN_CHANNELS == draft.params.get("min_channels", m.DEFAULT_MIN_CHANNELS)
    assert m.DEFAULT_GATE == bool(draft.params.get("gate"))


def test_edits_cover_every_value_and_select_by_name():
    edits = m.all_edits()
    assert len(edits) == sum(len(v) for v in ATTRIBUTES.values())
    targets = {e.target for e in captions.edit_prompts()}
    assert all(e.target in targets for e in edits)
    red = _edit("red")
    assert (red.attribute, red.value) == ("hair_colour", "red")
    assert red.neutral == captions.plain_prompts("hair_length")["short"]  # colour alone
    assert _edit("sunglasses").neutral == captions.style_prompt()
    names = [e.name for e in m.select_edits("sunglasses, smile,hair_length=bald,beard:beard")]
    assert names == ["glasses=sunglasses", "mouth=smile", "hair_length=bald", "beard=beard"]
    with pytest.raises(ValueError, match="several attributes"):
        m.select_edits("none")
    with pytest.raises(ValueError, match="no edit called"):
        m.select_edits("moustache")
    assert len(m.select_edits(None)) == len(edits)


def test_prompts_of_ones_own_and_the_issues_five_are_measured_as_written():
    smile = m.prompt_edit("mouth=smile: face -> smiling face")
    assert smile == m.EditSpec("mouth", "smile", "face", "smiling face")
    issue = [m.prompt_edit(t) for t in m.ISSUE_PROMPTS]
    assert [(e.name, e.neutral, e.target) for e in issue] == [
        ("glasses=sunglasses", "face", "face with sunglasses"),
        ("hair_colour=red", "face with hair", "face with red hair"),
        ("mouth=smile", "face", "smiling face"),
        ("hair_length=bald", "face", "bald face"),
        ("beard=beard", "face", "face with a beard")]
    vocabulary = set(captions.vocabulary(content_only=False))
    assert all(w in vocabulary for e in issue for w in f"{e.neutral} {e.target}".split())
    assert m.select_edits("smile", issue) == [issue[2]]
    for bad, message in (("mouth=smile:face", "not ATTRIBUTE"),
                         ("face->smiling face", "not ATTRIBUTE"),
                         ("mouth=grin:face->grinning face", "no attribute value")):
        with pytest.raises(ValueError, match=message):
            m.prompt_edit(bad)
    assert m.main(["--prompt", "mouth=grin:face->grinning face"]) == 2


# --------------------------------------------------------------------------- counting


def test_score_counts_a_planted_sunglasses_edit():
    plain = Attributes(glasses="none", eyes="open", hair_colour="blue", hair_length="short")
    faces = [plain, plain, plain, plain.replace(glasses="sunglasses"), plain]
    before = [_as_read(f) for f in faces]
    before[4]["glasses"] = "sunglasses"  # the generator drew them although not asked
    after = [
        _as_read(plain, glasses="sunglasses", eyes="closed"),  # reached; eyes now hidden
        _as_read(plain),  # not reached
        _as_read(plain, glasses="sunglasses", hair_colour="red"),  # reached, hair changed
        _as_read(faces[3]),  # had them already
        _as_read(plain, glasses="sunglasses"),  # read as having them before: not lacking
    ]
    s = m.score_edit(_edit("sunglasses"), faces, _readings(before), _readings(after))
    assert (s.n, s.lacking, s.reached, s.same_reached, s.same_all) == (5, 3, 2, 1, 4)
    assert s.reached_rate == pytest.approx(2 / 3)
    assert s.others_reached == pytest.approx(0.5)
    assert s.both == pytest.approx(1 / 3)
    assert s.others_all == pytest.approx(0.8)
    assert s.compared["eyes"] == 0  # sunglasses hide the eyes after the edit
    assert s.changed["hair_colour"] == 1 and s.compared["hair_colour"] == 5
    assert s.most_changed() == ("hair_colour", pytest.approx(0.2))
    assert "glasses" not in s.changed and not s.passed


def test_score_follows_visibility_of_hair_colour():
    bald = Attributes(hair_length="bald", beard="none", hair_colour="black")
    bearded = bald.replace(beard="beard")
    faces = [bald, bearded]
    before = [_as_read(f) for f in faces]
    after = [_as_read(f, hair_colour="red") for f in faces]
    red = m.score_edit(_edit("red"), faces, _readings(before), _readings(after))
    # a bald beardless head shows no hair colour: only the bearded face lacked red hair
    assert (red.lacking, red.reached, red.same_reached) == (1, 1, 1)
    long_hair = Attributes(hair_length="long", beard="none")
    after = [_as_read(long_hair, hair_length="bald", hair_colour="grey")]
    bald_edit = m.score_edit(_edit("bald"), [long_hair], _readings([_as_read(long_hair)]),
                             _readings(after))
    # going bald hides the hair colour, so its reading may change
    assert (bald_edit.lacking, bald_edit.reached, bald_edit.same_reached) == (1, 1, 1)
    assert bald_edit.compared["hair_colour"] == 0
    empty = m.score_edit(_edit("sunglasses"), [], _readings([]), _readings([]))
    assert np.isnan(empty.reached_rate) and not empty.passed


class _ScriptedEvaluator:
    """Hands back planted readings, one set per call: sources first, then each edit."""

    def __init__(self, *answers: list[dict[str, str]]):
        self.answers = list(answers)
        self.device = "cpu"

    def predict_tensor(self, images):
        rows = self.answers.pop(0)
        assert len(rows) == len(images)
        return type("P", (), {"values": {a: [r[a] for r in rows] for a in ATTRIBUTES}})()


def test_measure_edit_reads_sources_before_and_edits_after():
    gen = make_tiny_generator()
    seeds = m.meaning_seeds(4)
    faces = [m.sample_for_seed(s)[0] for s in seeds]
    before = [_as_read(f, glasses="none") for f in faces]
    after = [_as_read(f, glasses="sunglasses") for f in faces]
    after[0]["background"] = "pink" if faces[0].background != "pink" else "teal"
    fake = _ScriptedEvaluator(before, after)
    sources = m.prepare_sources(gen, lambda s: z_from_seed(s, gen.z_dim), fake, seeds)
    world = m.World(gen, lambda s: z_from_seed(s, gen.z_dim), fake, None, None, None, None)
    direction = gd.EditDirection(torch.zeros(sources.codes.shape[1]), 0, 0.0, 0.1)
    s = m.measure_edit(world, sources, _edit("sunglasses"), direction, alpha=4.0)
    assert (s.lacking, s.reached, s.same_reached, s.same_all) == (4, 4, 3, 3)
    assert s.changed["background"] == 1 and (s.n_channels, s.beta) == (0, 0.1)
    assert s.own_channels is None  # no style groups known: nothing to count


def test_measure_edit_counts_the_attributes_own_channels():
    gen = make_tiny_generator()
    seeds = m.meaning_seeds(2)
    faces = [m.sample_for_seed(s)[0] for s in seeds]
    rows = [_as_read(f) for f in faces]
    fake = _ScriptedEvaluator(rows, rows)
    sources = m.prepare_sources(gen, lambda s: z_from_seed(s, gen.z_dim), fake, seeds)
    n = sources.codes.shape[1]
    groups = np.array(["glasses", "hair_colour", ""] * n)[:n]
    world = m.World(gen, lambda s: z_from_seed(s, gen.z_dim), fake, None, None, None, None,
                    channel_groups=groups)
    delta = torch.zeros(n)
    delta[[0, 1, 3, 4, 6]] = 0.5  # glasses, hair, glasses, hair, glasses
    direction = gd.EditDirection(delta, 5, 1.0, 0.1)
    s = m.measure_edit(world, sources, _edit("sunglasses"), direction, alpha=1.0)
    assert (s.n_channels, s.own_channels) == (5, 3)
    assert "5 (3 own)" in m.format_rows([_edit("sunglasses")], [s], [])
    assert m.own_channel_share([s]) == pytest.approx(0.6)
    assert m.own_channel_share([m.EditScore("x", 2)]) is None


# --------------------------------------------------------------------------- rendering


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    gen = make_tiny_generator()
    clip = make_tiny_clip()
    stats = gd.compute_style_stats(gen, n_samples=64, batch=64)
    config = gd.RelevanceConfig(n_images=1, k_sigma=5.0, psi=1.0)
    relevance = None
    for item in gd.compute_relevance(gen, clip, stats, config):
        relevance = item
    torch.manual_seed(0)
    evaluator = Evaluator(AttributeClassifier(width=4))
    entry = pc.covariation_cache("tiny-gen", "tiny-clip", 32, 1.0,
                                 root=tmp_path_factory.mktemp("covariation"))
    *_, covariation = pc.covariation_job(gen, clip, entry, n_samples=32, psi=1.0)
    return m.World(gen, lambda s: z_from_seed(s, gen.z_dim), evaluator, stats, relevance,
                   clip, config, gen_hash="tiny-gen", evaluator_hash="tiny-eval",
                   sampler="gaussian-z", covariation=covariation)


def test_batched_rendering_equals_the_editing_context(tiny_world):
    w = tiny_world
    ctx = EditingContext(w.generator, w.clip, w.stats, w.relevance, z_for_seed=w.z_for_seed)
    seeds = [3, 11, 2_000_005]
    codes = m.source_codes(w.generator, w.z_for_seed, seeds)
    edit = _edit("sunglasses")
    for beta in (0.0, None):
        params = {"neutral": edit.neutral, "target": edit.target, "beta": beta or 0.0}
        if beta is None:  # as the app's drafts carry it (EditDefaults.beta_params)
            params.update(auto_beta=True, min_channels=m.DEFAULT_MIN_CHANNELS)
        direction = m.direction_for(w.relevance, w.stats, m.clip_text_direction(w.clip, edit),
                                    beta)
        app = ctx.direction(Edit("global", params))
        assert torch.equal(direction.delta, app.delta)
        assert direction.n_channels == app.n_channels
        images = m.render_codes(w.generator, m.edited_codes(codes, direction.delta, 3.0),
                                batch=2)
        for i, seed in enumerate(seeds):
            session = Session(Source(seed=seed, psi=1.0),
                              (Edit("global", params, strength=3.0),))
            one = ctx.render(session)
            assert torch.allclose(images[i:i + 1], one, atol=1e-5), seed


def test_oracle_encoder_direction_and_cache(tiny_world):
    w = tiny_world
    enc = m.EvaluatorEncoder(w.evaluator)
    img = w.generator.synthesize(w.generator.styles(w.generator.mapping(
        torch.randn(2, w.generator.z_dim))))
    e = enc.encode_images(img)
    assert e.shape == (2, m.ORACLE_DIM)
    assert torch.allclose(e.norm(dim=1), torch.ones(2))
    d = m.oracle_text_direction("glasses", "sunglasses")
    assert d.norm() == pytest.approx(1.0)
    start = sum(len(ATTRIBUTES[a]) for a in ("skin", "shape", "hair_colour", "hair_length"))
    block = d[start:start + 3]
    assert int(block.argmax()) == 2 and block.sum() == pytest.approx(0.0, abs=1e-6)
    assert d.abs().sum() == pytest.approx(block.abs().sum())
    kwargs = dict(gen_hash=w.gen_hash, evaluator_hash=w.evaluator_hash, sample_w=None,
                  sampler=w.sampler)
    first, cached = m.oracle_relevance(w.generator, w.evaluator, w.stats, w.relevance_config,
                                       **kwargs)
    assert not cached and first.vectors.shape == (len(first.channels), m.ORACLE_DIM)
    again, cached = m.oracle_relevance(w.generator, w.evaluator, w.stats, w.relevance_config,
                                       **kwargs)
    assert cached and torch.equal(again.vectors, first.vectors)
    assert torch.equal(again.channels, first.channels)


def test_gated_edit_moves_only_channels_that_vary_with_the_text(tiny_world):
    w = tiny_world
    dt = m.clip_text_direction(w.clip, _edit("sunglasses"))
    r = gd.channel_scores(w.relevance, dt)
    j = int(r.argmax())
    flat = int(w.relevance.channels[j])
    n_flat, dim = len(w.stats.std), len(dt)
    cross = torch.zeros(n_flat, dim)
    cross[flat] = dt  # only this channel varies with the text direction across samples
    cov = m.Covariation(cross, torch.eye(dim), torch.ones(n_flat), 100)
    edit = m.gated_direction(w.relevance, w.stats, cov, dt, None, min_channels=5)
    assert edit.n_channels == 1
    assert torch.nonzero(edit.delta).flatten().tolist() == [flat]
    torch.testing.assert_close(edit.delta[flat], w.stats.std[flat].float())
    cross[flat] = -dt  # it varies against the text: nothing agrees, a clear error
    with pytest.raises(gd.NoChannelsError):
        m.gated_direction(w.relevance, w.stats, cov, dt, None, min_channels=5)


def test_oracle_threshold_modes():
    row = m.EditScore("x", 4, n_channels=37, beta=0.15)
    assert m._oracle_threshold("match", row, 10) == (None, 37)
    assert m._oracle_threshold("match", m.EditScore("x", 4, error="none pass"), 10) == (None, 10)
    assert m._oracle_threshold(None, row, 10) == (None, 10)
    assert m._oracle_threshold(0.2, row, 10) == (0.2, 10)
    args = m.build_parser().parse_args([])
    assert args.oracle_beta is None  # auto by default
    assert m._oracle_beta(m.build_parser().parse_args(["--oracle-beta", "same"]), 0.1) == 0.1
    assert m.build_parser().parse_args(["--oracle-beta", "match"]).oracle_beta == "match"


def test_run_measurements_end_to_end(tiny_world):
    edits = m.select_edits("sunglasses,smile")
    settings = m.Settings(seeds=4, oracle_images=1, sweep_seeds=2, beta=0.0,
                          oracle_beta="match", batch=3)
    logged: list[str] = []
    r = m.run_measurements(tiny_world, edits, edits[:1], settings, log=logged.append)
    assert [s.edit for s in r["clip"]] == [e.name for e in edits]
    assert [s.edit for s in r["oracle"]] == [e.name for e in edits]
    assert all(s.n == 4 and s.error is None for s in r["clip"] + r["oracle"])
    (sweep,) = r["sweeps"]
    assert len(sweep["cells"]) == len(m.SWEEP_ALPHAS) * len(m.SWEEP_BETAS)
    assert all(c.n == 2 for c in sweep["cells"].values())
    assert [s.edit for s in r["ceiling"]] == [e.name for e in edits]
    assert all(s.n == 4 for s in r["ceiling"])
    assert r["asked"] == []  # a Gaussian-z generator cannot be asked for a face
    assert [s.edit for s in r["gated"]] == [e.name for e in edits]
    table = m.format_rows(edits, r["clip"], r["oracle"], r["asked"], r["ceiling"], r["gated"])
    assert "glasses=sunglasses" in table and "oracle" in table and "world" in table
    assert "gated" in table
    assert "alpha 12" in m.format_sweep(sweep)
    out = m.to_json(r, {"generator": "tiny"})
    text = json.dumps(m._finite(out), allow_nan=False)
    back = json.loads(text)
    assert back["settings"]["oracle_beta"] == "match" and back["settings"]["beta"] == 0.0
    assert {c["beta_setting"] for c in back["sweeps"][0]["cells"]} == {
        *(b for b in m.SWEEP_BETAS if b is not None), "auto"}
    # matched: the oracle edits as many channels as the CLIP row (auto-beta keeps >= n)
    for c, o in zip(r["clip"], r["oracle"], strict=True):
        assert o.n_channels >= c.n_channels
    assert set(r["times"]) == {"sources", "clip_edits", "gated_edits", "oracle_relevance",
                               "oracle_edits", "ceiling", "sweep"}
    assert len(back["gated"]) == len(edits)
    assert len(back["ceiling"]) == len(edits) and back["asked"] == []
    assert r["averaged"] == back["averaged"] == []  # nor averaged


def test_ceiling_scores_the_world_renderers_perfect_edit():
    """The bundled evaluator reads the world renderer's own edit: sunglasses drawn on every
    face that lacked them read as sunglasses, and removing a hat changes no other reading
    on these seeds (the ceiling is what the measurement itself allows)."""
    evaluator = Evaluator.load()
    seeds = m.meaning_seeds(24)
    sunglasses, no_hat = m.ceiling_scores(evaluator, seeds, m.select_edits("sunglasses,hat=none"))
    assert sunglasses.n == 24 and sunglasses.lacking > 0
    assert sunglasses.reached == sunglasses.lacking
    assert no_hat.lacking > 0 and no_hat.reached == no_hat.lacking
    assert no_hat.same_reached == no_hat.reached


def test_asked_scores_ask_the_demo_generator_for_the_edited_face(monkeypatch):
    """The asked row renders z of the edited face (same jitter) and scores it against the
    source readings: the z it asks for is the seed's own with one attribute replaced."""
    from editor.toyfaces.conditioning import encode, sample_for_seed, z_for_seed

    seeds = [2_000_000, 2_000_001, 2_000_002]
    asked: list[torch.Tensor] = []

    def fake_source_codes(gen, z_for, ids, psi=m.DEMO_PSI):
        asked.append(torch.cat([z_for(i) for i in ids]))
        return torch.zeros(len(asked[-1]), 2)

    faces = [sample_for_seed(s) for s in seeds]
    readings = {a: np.array([f.as_dict()[a] for f, _ in faces]) for a in ATTRIBUTES}
    sources = m.Sources(seeds, [f for f, _ in faces], torch.zeros(3, 2), readings)
    edited = [f.replace(glasses="sunglasses").as_dict() for f, _ in faces]
    monkeypatch.setattr(m, "source_codes", fake_source_codes)
    monkeypatch.setattr(m, "render_codes", lambda gen, codes, batch=64: torch.zeros(3, 3, 4, 4))
    monkeypatch.setattr(m, "read", lambda ev, images: _readings(edited))
    (row,) = m.asked_scores(m.World(None, z_for_seed, None, None, None, None, None),
                            sources, [_edit("sunglasses")])
    for (face, jitter), z, seed in zip(faces, asked[0], seeds, strict=True):
        assert torch.equal(z, torch.from_numpy(encode(face.replace(glasses="sunglasses"),
                                                      jitter)))
        assert not torch.equal(z, z_for_seed(seed)[0]) or face.glasses == "sunglasses"
    lacking = sum(f.glasses != "sunglasses" for f, _ in faces)
    assert row.lacking == lacking and row.reached == lacking and row.same_all == 3


def test_averaged_direction_averages_the_asked_change_over_faces_given_a_new_value(
        monkeypatch):
    """The averaged row's direction: the mean asked-for style change over the fit faces whose
    value changes (a face already at the value would only dilute it), on the relevance's
    channels only, with changes below NEGLIGIBLE_STD of a std left out."""
    faces = [Attributes(glasses="none"), Attributes(glasses="sunglasses"),
             Attributes(glasses="glasses")]
    codes = torch.zeros(3, 5)
    change = torch.tensor([[1.0, 2.0, 0.004, 7.0, -1.0],
                           [9.0, 9.0, 9.0, 9.0, 9.0],  # already has sunglasses: ignored
                           [3.0, -2.0, 0.0, 7.0, -3.0]])
    monkeypatch.setattr(m, "asked_codes", lambda world, sources, edit: sources.codes + change)
    stats = gd.StyleStats(torch.zeros(5), torch.ones(5), 10)
    relevance = gd.Relevance(torch.tensor([0, 1, 2, 4]), torch.zeros(4, 3))
    world = m.World(None, None, None, stats, relevance, None, None)
    fit = m.Sources([1, 2, 3], faces, codes, {})
    d = m.averaged_direction(world, fit, _edit("sunglasses"))
    # channel 2 moves 0.002 std on average (negligible), channel 3 is not a relevance channel
    assert d.delta.tolist() == [2.0, 0.0, 0.0, 0.0, -2.0]
    assert d.n_channels == 2
    with pytest.raises(ValueError, match="lacks"):
        m.averaged_direction(world, m.Sources([2], faces[1:2], codes[:1], {}),
                             _edit("sunglasses"))


def test_averaged_sunglasses_on_the_demo_generator_move_only_the_glasses_channels():
    """On the bundled (grouped) demo generator the averaged sunglasses direction moves only
    the glasses group's channels, and at strength 1 puts sunglasses on the faces that lacked
    them (the generator draws them when asked, and this is its own average change)."""
    world = m.load_world(m.build_parser().parse_args(["--no-gated"]), log=lambda _: None)
    sunglasses = _edit("sunglasses")
    fit = m.faces_of(world.generator, world.z_for_seed, m.meaning_seeds(40, m.AVERAGED_SEED_BASE))
    d = m.averaged_direction(world, fit, sunglasses)
    moved = (d.delta != 0).numpy()
    assert d.n_channels > 0
    assert set(world.channel_groups[moved]) == {"glasses"}
    sources = m.prepare_sources(world.generator, world.z_for_seed, world.evaluator,
                                m.meaning_seeds(24))
    (row,) = m.averaged_scores(world, sources, fit, [sunglasses], batch=24)
    assert row.lacking > 0 and row.reached_rate >= 0.8


def test_two_prompts_for_one_value_keep_their_own_rows_and_sweeps(monkeypatch):
    # Rows were paired by the value's name, so the second prompt's gated row was printed
    # under both; and the sweep measured the captions' phrasing under the same label.
    first = m.prompt_edit("mouth=smile:face->smiling face")
    second = m.prompt_edit("mouth=smile:face->face with a big smile")
    rows = m.format_rows([first, second], [m.failed_score(first, 5, "clip 1"),
                                           m.failed_score(second, 5, "clip 2")], [],
                         gated_rows=[m.failed_score(first, 5, "gated 1"),
                                     m.failed_score(second, 5, "gated 2")])
    positions = [rows.index(w) for w in ("clip 1", "gated 1", "clip 2", "gated 2")]
    assert positions == sorted(positions)

    seen = {}

    class Stop(Exception):
        pass

    def capture(world, edits, sweep_edits, settings):
        seen.update(edits=edits, sweep=sweep_edits)
        raise Stop

    monkeypatch.setattr(m, "run_measurements", capture)
    with pytest.raises(Stop):
        m.main(["--issue-prompts", "--seeds", "2"])
    assert seen["sweep"] == seen["edits"] == [m.prompt_edit(t) for t in m.ISSUE_PROMPTS]
    with pytest.raises(Stop):
        m.main(["--prompt", "mouth=smile:face->smiling face", "--sweep-edits", "smile"])
    assert seen["sweep"] == [first]
