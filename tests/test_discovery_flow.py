"""The discovered-directions panel as the window drives it (DiscoveryFlow): a running job
keeps its progress on show, the transfer the user picks stays theirs (a fallback says
why), and Discover is offered again only when it would find something new."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from PySide6.QtWidgets import QMainWindow

from editor.engine import discovered as dd
from editor.engine.jobs import JobRunner
from editor.methods import discovery as dc
from editor.ui import discovery_flow as flow_module
from editor.ui.directions_panel import DirectionsPanel
from editor.ui.discovery_flow import DiscoveryFlow
from tests.conftest import make_tiny_clip, make_tiny_generator

SMALL = dc.DiscoveryConfig(n_samples=60, k=3, psi=1.0, mixture=False)


@pytest.fixture
def tiny_pack(tmp_path, monkeypatch):
    """A pack without global directions (its discovery has the w transfer only)."""
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    shipped = dd.default_config  # the demo pack's, which ships its discovery
    monkeypatch.setattr(dd, "default_config", lambda p: shipped(p) if p.is_demo else SMALL)
    gen = save_generator(make_tiny_generator(resolution=8, channel_max=16),
                         tmp_path / "g.safetensors")
    clip = make_tiny_clip().save(tmp_path / "clip.safetensors")
    return open_pack(gen, ClipSource(path=str(clip)))


def _last(job):
    """A job's result (its last item)."""
    return list(job)[-1]


def _flow(qtbot, pack):
    window = QMainWindow()
    qtbot.addWidget(window)
    panel = DirectionsPanel()
    window.setCentralWidget(panel)
    current = [pack]
    jobs = JobRunner(window)
    flow = DiscoveryFlow(window, jobs, panel, lambda: current[0], lambda _e, _t: None)
    return flow, panel, jobs, current


def _running(panel) -> bool:
    return not panel.discover_button.isEnabled() and panel.progress.isVisibleTo(panel)


def _other_pack(tiny_pack, tmp_path):
    """Another generator's pack, with the same CLIP."""
    from editor.core.checkpoints import save_generator
    from editor.engine.packs import ClipSource, open_pack

    return open_pack(save_generator(make_tiny_generator(resolution=8, channel_max=16, seed=1),
                                    tmp_path / "other.safetensors"),
                     ClipSource(path=tiny_pack.clip_source.path))


def _discovering_then_other_shown(qtbot, tiny_pack, other):
    """A flow whose discovery on `tiny_pack` is under way (held) while `other` is shown."""
    flow, panel, jobs, current = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    job = flow.start()
    qtbot.waitUntil(lambda: job.progress is not None, timeout=10_000)
    current[0] = other
    flow.pack_changed(other)
    return flow, panel, jobs, current


def _held_discovery(monkeypatch) -> threading.Event:
    """Discovery jobs that report 30 % sampled, then wait until the event is set."""
    release = threading.Event()

    def slow_job(pack, cancel=None, extra_words=(), root=None):
        yield dc.Progress(3, 10, "sampling: 30/100 images")
        release.wait(30)
        yield from dd.discovery_job(pack, cancel=cancel, extra_words=extra_words, root=root)

    monkeypatch.setattr(flow_module, "discovery_job", slow_job)
    return release


def test_picking_a_transfer_while_discovering_keeps_the_job_on_show(qtbot, tiny_pack,
                                                                    monkeypatch):
    # the panel went back to "idle" (Discover enabled, no bar) while the job still ran
    release = _held_discovery(monkeypatch)
    flow, panel, jobs, _ = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    job = flow.start()
    qtbot.waitUntil(lambda: job.progress is not None, timeout=10_000)
    panel.set_method("w")
    assert _running(panel) and panel.progress.value() == 300
    assert "sampling: 30/100 images" in panel.progress.format()
    with qtbot.waitSignal(jobs.job_ended, timeout=60_000):
        release.set()
    assert not panel.progress.isVisibleTo(panel) and panel.entries


def test_a_job_for_another_pack_names_its_pack(qtbot, tiny_pack, tmp_path, monkeypatch):
    # Discover on one pack, then another opened: that pack's own directions showed under
    # the job's progress bar, unnamed, and "Discovered 4 directions" under a list of 3
    release = _held_discovery(monkeypatch)
    other = _other_pack(tiny_pack, tmp_path)
    flow, panel, jobs, current = _discovering_then_other_shown(qtbot, tiny_pack, other)
    assert f"{tiny_pack.name}: sampling: 30/100 images" in panel.progress.format()
    with qtbot.waitSignal(jobs.job_finished, timeout=60_000) as finished:
        release.set()
    found = len(finished.args[1].directions)
    assert flow.window.statusBar().currentMessage() == \
        f"Discovered {found} directions for {tiny_pack.name}"


def test_a_fallback_transfer_says_why_and_does_not_stick_to_the_next_pack(qtbot, tiny_pack):
    # the fallback to "W space" became the choice for every later pack, and picking
    # "Focused" again snapped back without a word
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    _last(dd.discovery_job(tiny_pack))
    flow, panel, _, current = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    assert panel.current_method() == "w" and {e.method for e in panel.entries} == {"w"}
    panel.set_method("focused")  # the user asks for it
    assert panel.current_method() == "w"

    demo = open_pack(DEMO_GENERATOR, demo_clip_source())
    current[0] = demo
    flow.pack_changed(demo)
    assert panel.current_method() == dc.DEFAULT_METHOD
    assert {e.method for e in panel.entries} == {dc.DEFAULT_METHOD}
    assert not panel.note.isVisibleTo(panel)

    current[0] = tiny_pack
    flow.pack_changed(tiny_pack)
    assert panel.current_method() == "w" and panel.note.isVisibleTo(panel)
    assert "global directions" in panel.note.text() and "precompute" in panel.note.text()
    panel.set_method("style")  # asked again: still said why
    assert panel.current_method() == "w" and "global directions" in panel.note.text()
    # picking the transfer the fallback shows already makes it the choice: no note, and
    # it stays the choice once the pack has every transfer (the box's index never moved)
    panel.method.activated.emit(panel.method.currentIndex())
    assert panel.current_method() == "w" and not panel.note.isVisibleTo(panel)
    assert flow._chosen == "w"


def test_the_picked_transfer_is_remembered_across_packs_and_runs(qtbot, tiny_pack):
    # Every start, and every other pack opened, went back to "Focused".
    from editor.engine.models import DEMO_GENERATOR
    from editor.engine.packs import demo_clip_source, open_pack

    demo = open_pack(DEMO_GENERATOR, demo_clip_source())
    flow, panel, _, current = _flow(qtbot, demo)
    flow.pack_changed(demo)
    panel.set_method("style")
    current[0] = tiny_pack
    flow.pack_changed(tiny_pack)  # no discovery here yet
    current[0] = demo
    flow.pack_changed(demo)
    assert panel.current_method() == "style"
    assert {e.method for e in panel.entries} == {"style"}

    again, panel_again, _, _ = _flow(qtbot, demo)  # the next run of the program
    again.pack_changed(demo)
    assert panel_again.current_method() == "style"


def test_discover_again_is_offered_only_when_it_would_find_more(qtbot, tiny_pack,
                                                                monkeypatch, tmp_path):
    # "Discover again" reloaded the cached result it was showing
    made = _last(dd.discovery_job(tiny_pack, root=tmp_path / "elsewhere"))
    _last(dd.discovery_job(tiny_pack))  # and in the pack's own cache
    flow, panel, jobs, _ = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    assert panel.entries and not panel.discover_button.isEnabled()
    assert panel.discover_button.text() == "Discovered"
    assert "same ones" in panel.discover_button.toolTip()

    # made before the pack's directions changed (here: another key), and not yet
    # remade: Discover again recomputes instead of reloading
    older = dataclasses.replace(made, key="made-before-the-directions")
    monkeypatch.setattr(flow_module, "cached_discovery", lambda _p: older)
    # (where it would write: the pack's own cache has the current result already)
    monkeypatch.setattr(flow_module, "cache_dir", lambda: tmp_path / "user-cache")
    flow.pack_changed(tiny_pack)
    assert panel.discover_button.isEnabled()
    assert panel.discover_button.text() == "Discover again"
    with qtbot.waitSignal(jobs.job_finished, timeout=60_000) as done:
        panel.discover_button.click()
    assert not done.args[1].from_cache
    assert panel.discover_button.text() == "Discovered"


def test_a_fallback_note_offers_discover_again_once_the_pack_can_add_the_transfer(
        qtbot, tiny_pack, monkeypatch):
    # with the pack's global directions computed the note still said "precompute them,
    # then discover again" under a "Discover again" button
    made = _last(dd.discovery_job(tiny_pack))
    older = dataclasses.replace(made, key="made-before-the-directions")
    monkeypatch.setattr(flow_module, "cached_discovery", lambda _p: older)
    flow, panel, _, _ = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    assert panel.discover_button.text() == "Discover again"
    assert panel.current_method() == "w" and panel.note.isVisibleTo(panel)
    assert "Discover again to add it" in panel.note.text()
    assert "precompute" not in panel.note.text()


def test_a_direction_at_strength_zero_is_not_added(qtbot, tiny_pack):
    # it went on the stack as an undo step that changes nothing
    entry = dd.to_entries(_last(dd.discovery_job(tiny_pack)), "w")[0]
    window = QMainWindow()
    qtbot.addWidget(window)
    added = []
    flow = DiscoveryFlow(window, JobRunner(window), DirectionsPanel(), lambda: tiny_pack,
                         lambda edit, text: added.append(edit))
    flow.add(entry, 0.0)
    assert added == [] and "strength 0" in window.statusBar().currentMessage()
    flow.add(entry, -1.5)
    assert [e.strength for e in added] == [-1.5]


def test_a_direction_added_through_another_transfer_is_told_apart_in_the_stack(qtbot, tiny_pack):
    # each row read "beard ↔ no beard": which was the W one could not be told in the stack
    entry = dd.DirectionEntry(key="0", label="no beard", negative_label="beard",
                              confidence=0.7, delta=(0.1, -0.2))
    window = QMainWindow()
    qtbot.addWidget(window)
    added = []
    flow = DiscoveryFlow(window, JobRunner(window), DirectionsPanel(), lambda: tiny_pack,
                         lambda edit, text: added.append(edit))
    for method in ("focused", "style", "w"):
        flow.add(dataclasses.replace(entry, method=method), 1.5)
    assert [e.title for e in added] == ["beard ↔ no beard", "beard ↔ no beard (Style channels)",
                                        "beard ↔ no beard (W space)"]
    assert [e.params["method"] for e in added] == ["focused", "style", "w"]
    # a name cleared in the stack ("empty: the name it had at first") kept the ends alone
    assert [dataclasses.replace(e, name="").title for e in added] == \
        [e.title for e in added]


def test_the_windows_first_transfer_is_discoverys_default():
    from editor.engine.session import TRANSFERS

    assert TRANSFERS[0][0] == dc.DEFAULT_METHOD  # edit titles leave the first one unsaid


def test_label_words_added_in_the_window_label_the_next_discovery(qtbot, tiny_pack,
                                                                  monkeypatch):
    # No way to add label words in the window: only `atelier discover --words`.
    from editor.ui import discovery_flow

    first = _last(dd.discovery_job(tiny_pack))
    flow, panel, jobs, _ = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    assert panel.discover_button.text() == "Discovered"  # nothing new to find
    monkeypatch.setattr(discovery_flow.QInputDialog, "getMultiLineText",
                        staticmethod(lambda *a, **k: ("porcelain, sunburn\nporcelain", True)))
    panel.words_button.click()
    assert flow.words() == ["porcelain", "sunburn"]
    assert panel.entries and panel.discover_button.text() == "Discover again"
    from editor.methods import precompute

    def no_sampling(*_a, **_k):
        raise AssertionError("the images were sampled again")

    monkeypatch.setattr(precompute, "Sampling", no_sampling)  # the first run's are reused
    with qtbot.waitSignal(jobs.job_finished, timeout=60_000) as finished:
        flow.start()
    result = finished.args[1]
    assert result.info["vocabulary"] == first.info["vocabulary"] + 2
    assert panel.discover_button.text() == "Discovered"

    again, panel_again, _, _ = _flow(qtbot, tiny_pack)  # the next run of the program
    again.pack_changed(tiny_pack)
    assert again.words() == ["porcelain", "sunburn"]
    assert again.discovery.key == result.key


def test_label_words_are_read_one_a_line_or_comma_separated():
    from editor.ui.discovery_flow import parse_words

    assert parse_words(" a  red\tnose ,, freckles\n\nfreckles\n sunburn ") == [
        "a red nose", "freckles", "sunburn"]
    assert parse_words("") == []


def test_label_words_differing_only_in_case_are_kept_once():
    # the vocabulary takes "Freckles" after "freckles" as the same word, yet the dialog
    # kept both (and counted both toward MAX_WORDS)
    from editor.ui.discovery_flow import parse_words

    assert parse_words("freckles, Freckles\nFRECKLES, Dark  Skin, dark skin") == [
        "freckles", "Dark Skin"]


def test_many_label_words_are_each_compared_with_a_few_others_only(monkeypatch):
    # each word was looked for in the list of those before it: 10,000 pasted words took
    # 0.6 s on the UI thread, 100,000 almost a minute
    compared = [0]

    class Counted(str):
        def __eq__(self, other):
            compared[0] += 1
            return str.__eq__(self, other)

        __hash__ = str.__hash__

    monkeypatch.setattr(flow_module, "one_line", lambda text: Counted(" ".join(text.split())))
    words = flow_module.parse_words("\n".join(f"word{i}" for i in range(2000)))
    assert len(words) == 2000 and compared[0] < 2000


def test_label_words_beyond_the_most_kept_are_named_in_the_status_bar(qtbot, tiny_pack,
                                                                      monkeypatch):
    # words past the 200th were dropped without a word
    many = ", ".join(f"word{i}" for i in range(flow_module.MAX_WORDS + 5))
    monkeypatch.setattr(flow_module.QInputDialog, "getMultiLineText",
                        staticmethod(lambda *a, **k: (many, True)))
    flow, panel, _, _ = _flow(qtbot, tiny_pack)
    flow.pack_changed(tiny_pack)
    panel.words_button.click()
    assert len(flow.words()) == flow_module.MAX_WORDS
    assert flow.words()[-1] == f"word{flow_module.MAX_WORDS - 1}"
    assert f"Kept the first {flow_module.MAX_WORDS} of {flow_module.MAX_WORDS + 5} label " \
        "words" in flow.window.statusBar().currentMessage()


def test_a_job_that_ends_keeps_the_strengths_set_on_the_pack_shown(qtbot, tiny_pack,
                                                                    tmp_path, monkeypatch):
    # Another pack's discovery (or a cancelled one) ending listed the open pack's
    # directions again: every strength the user had set went back to its default, and
    # the current row was lost
    other = _other_pack(tiny_pack, tmp_path)
    _last(dd.discovery_job(other))
    release = _held_discovery(monkeypatch)
    flow, panel, jobs, current = _discovering_then_other_shown(qtbot, tiny_pack, other)
    key = panel.entries[1].key
    panel._sliders[key].set_value(4.0)
    panel.list.setCurrentRow(1)
    with qtbot.waitSignal(jobs.job_ended, timeout=60_000):
        release.set()
    assert panel.strength(key) == 4.0 and panel.list.currentRow() == 1
    assert not _running(panel) and panel.discover_button.text() == "Discovered"

    # and so does a cancelled run
    release = _held_discovery(monkeypatch)
    current[0] = tiny_pack
    flow.pack_changed(tiny_pack)
    flow.discovery = dataclasses.replace(flow.discovery, key="made-before")  # offered again
    flow._rediscover = True
    flow._show()
    key = panel.entries[0].key
    panel._sliders[key].set_value(-3.0)
    job = flow.start()
    qtbot.waitUntil(lambda: job.progress is not None, timeout=10_000)
    with qtbot.waitSignal(jobs.job_ended, timeout=60_000):
        job.cancel()
        release.set()
    assert panel.strength(key) == -3.0 and panel.discover_button.isEnabled()
