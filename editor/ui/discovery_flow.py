"""Discovered directions in the window: fill the panel for the open pack (shipped or cached
discovery), run discovery as a job when asked, switch the transfer, add a direction to the
edit stack (undoably, at the slider's strength).

Kept out of the main window: it needs only the panel, the job runner, the open pack and a
way to add an edit.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings
from PySide6.QtWidgets import QInputDialog, QMainWindow

from editor.core.errors import one_line
from editor.core.paths import cache_dir
from editor.engine.discovered import (
    DEFAULT_METHOD,
    DirectionEntry,
    available_method,
    cached_discovery,
    discovery_job,
    entry_edit,
    finds_more,
    missing_reason,
    to_entries,
    unlearned_label_words,
)
from editor.engine.jobs import Job, JobRunner
from editor.engine.packs import OpenPack, same_pack
from editor.engine.session import Edit
from editor.methods.global_directions import Progress

from . import settings_values
from .directions_panel import TRANSFERS, DirectionsPanel
from .remembered import RememberedMap

JOB_PREFIX = "discover:"
TRANSFER_KEY = "directions/transfer"  # the transfer the user picked last, for every pack
# the user's label words per generator (by content hash): their meaning is the pack's
LABEL_WORDS = RememberedMap("directions/words", limit=50)
MAX_WORDS = 200  # more would make the labelling slow and the list unreadable


def parse_words(text: str) -> list[str]:
    """Comma- or line-separated words and phrases, trimmed, each once in any case (as the
    vocabulary takes them: "Freckles" after "freckles" labelled nothing new, yet was kept
    and counted), in order (all of them: set_words keeps MAX_WORDS and says so)."""
    # by a dict, not a list's `in`: 10,000 pasted words took 0.6 s on the UI thread,
    # 100,000 almost a minute
    found: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if word := one_line(part):
            found.setdefault(word.casefold(), word)
    return list(found.values())


def remembered_transfer() -> str:
    chosen = settings_values.text(QSettings(), TRANSFER_KEY, DEFAULT_METHOD)
    return chosen if chosen in dict(TRANSFERS) else DEFAULT_METHOD


class DiscoveryFlow(QObject):
    def __init__(self, window: QMainWindow, jobs: JobRunner, panel: DirectionsPanel,
                 pack: Callable[[], OpenPack | None], add_edit: Callable[[Edit, str], None]):
        super().__init__(window)
        self.window = window
        self.jobs = jobs
        self.panel = panel
        self._pack = pack
        self._add_edit = add_edit
        self.discovery = None  # the open pack's, once known
        self._rediscover = False  # whether Discover would find more than self.discovery
        # the transfer the user picked (remembered); the one shown falls back when a
        # discovery lacks it, without changing the pick
        self._chosen = remembered_transfer()
        self._job: Job | None = None
        self._job_pack: OpenPack | None = None
        panel.discover_requested.connect(self.start)
        panel.words_requested.connect(self.ask_words)
        panel.method_changed.connect(self._on_method_picked)
        panel.add_requested.connect(self.add)
        jobs.job_progress.connect(self._on_progress)
        jobs.job_finished.connect(self._on_finished)
        jobs.job_ended.connect(self._on_ended)

    def pack_changed(self, pack: OpenPack) -> None:
        """A pack was opened: show its discovery if it has one."""
        if pack.clip is None:
            self.discovery = None
            self._show_unavailable(pack)
            return
        self._set_discovery(self._cached(pack), pack)
        self._show()  # a job for another pack shows its progress under that pack's name

    def _show_unavailable(self, pack: OpenPack) -> None:
        self.panel.set_unavailable(f"it needs a CLIP model ({pack.clip_error})"
                                   if not pack.clip_pending else "the CLIP is loading …")

    def words(self, pack: OpenPack | None = None) -> list[str]:
        """The user's label words for the pack (the open one by default)."""
        pack = pack or self._pack()
        if pack is None:
            return []
        kept = LABEL_WORDS.get(pack.model.content_hash)
        return [w for w in kept if isinstance(w, str)] if isinstance(kept, list) else []

    def set_words(self, words: list[str]) -> None:
        """Label the open pack's directions with these words too (from the next Discover;
        the directions shown stay until then, and Discover again is offered). Of more
        than MAX_WORDS the first are kept; the status bar says so, and names the words
        the pack's CLIP never learned (labels with them are left out)."""
        pack = self._pack()
        if pack is None:
            return
        notes = [f"Kept the first {MAX_WORDS} of {len(words)} label words: more would make "
                 "the labelling slow and the list unreadable"] if len(words) > MAX_WORDS else []
        words = words[:MAX_WORDS]
        if words != self.words(pack):
            self._keep_words(pack, words)
            if unknown := unlearned_label_words(pack, words):
                notes.append(f"Words this CLIP never learned: {', '.join(unknown)}; it cannot "
                             "label anything with them, so labels with them are left out")
        if notes:
            self.window.statusBar().showMessage(". ".join(notes), 10000)

    def _keep_words(self, pack: OpenPack, words: list[str]) -> None:
        """Remember the pack's words and show its discovery with them, if there is one."""
        LABEL_WORDS.put(pack.model.content_hash, list(words))
        if pack.clip is not None:
            self._set_discovery(self._cached(pack), pack)
            self._show()

    def ask_words(self) -> None:
        words = self.words()
        text, ok = QInputDialog.getMultiLineText(
            self.window, "Label words", "Words or phrases to label the directions with, "
            "besides the built-in ones (one per line, or separated by commas):",
            "\n".join(words))
        if ok:
            self.set_words(parse_words(text))

    def _cached(self, pack: OpenPack):
        """The pack's discovery with the user's words, else the one without them (shown
        until Discover again labels the directions with the words too)."""
        words = self.words(pack)
        found = cached_discovery(pack, words) if words else None
        return found if found is not None else cached_discovery(pack)

    def _set_discovery(self, discovery, pack: OpenPack) -> None:
        self.discovery = discovery
        self._rediscover = discovery is not None and finds_more(pack, discovery,
                                                                self.words(pack))

    def _job_active(self) -> bool:
        return self._job is not None and self._job.is_active

    def _on_method_picked(self, method: str) -> None:
        self._chosen = method
        QSettings().setValue(TRANSFER_KEY, method)
        self._show()

    def _show(self) -> None:
        """List the discovery's entries of the chosen transfer, or of the one it has (e.g.
        a pack without global directions has only w) with the reason shown. A job still
        running keeps its progress on show."""
        if self.discovery is None:
            self.panel.set_directions([])
            self.panel.show_method(self._chosen)
        else:
            method, note = self._chosen, ""
            entries = to_entries(self.discovery, method)
            fallback = available_method(self.discovery)
            if not entries and fallback is not None:
                note = self._fallback_note(method, fallback)
                method, entries = fallback, to_entries(self.discovery, fallback)
            self.panel.set_directions(entries, rediscover=self._rediscover)
            self.panel.show_method(method, note)
        if self._job_active():
            assert self._job is not None
            last = self._job.progress
            self.panel.set_running(last.fraction if last else None,
                                   self._job_message(last.message if last else ""))

    def _fallback_note(self, chosen: str, shown: str) -> str:
        assert self.discovery is not None
        if self._rediscover:  # the pack has what was missing now: no "precompute" advice
            reason = "found before this pack's global directions; Discover again to add it"
        else:
            reason = missing_reason(self.discovery, chosen) or "not made for these directions"
        title = self.panel.method_title
        return f"{title(chosen)}: {reason}; showing {title(shown)}."

    def start(self) -> Job | None:
        pack = self._pack()
        if pack is None or pack.clip is None:
            return None
        if self._job_active():
            return self._job
        # Discover is offered again only when the pack changed since (finds_more): the job
        # then recomputes into the user cache instead of reloading the older result
        root = cache_dir() / "packs" if self.discovery is not None else None
        words = self.words(pack)  # as they are now: the job runs on another thread
        self._job = self.jobs.submit(
            f"Discover directions for {pack.name}",
            lambda token: discovery_job(pack, cancel=token, extra_words=words, root=root),
            key=JOB_PREFIX + pack.model.content_hash)
        self._job_pack = pack
        self.panel.set_running(None, "sampling images…")
        return self._job

    def add(self, entry: DirectionEntry, strength: float) -> None:
        if strength == 0:  # no change, yet an undo step: refused as a prompt at α 0 is
            self.window.statusBar().showMessage(
                f"At strength 0 {entry.title} changes nothing: set its strength first", 5000)
            return
        pack = self._pack()
        # the edit remembers its generator: on another one its channels mean other things
        edit = entry_edit(entry, strength, pack.model.content_hash if pack else None)
        self._add_edit(edit, f"Add {edit.title}")

    def _on_progress(self, job: Job, progress) -> None:
        if job is self._job and isinstance(progress, Progress):
            self.panel.set_running(progress.fraction, self._job_message(progress.message))

    def _for_another_pack(self) -> bool:
        return self._job_pack is not None and not same_pack(self._job_pack, self._pack())

    def _job_message(self, message: str) -> str:
        """The running job's progress line, naming its pack where another one is open now
        (under this pack's own directions it read as theirs)."""
        if not self._for_another_pack():
            return message
        assert self._job_pack is not None
        name = self._job_pack.name
        return f"{name}: {message}" if message else f"still discovering for {name}"

    def _on_finished(self, job: Job, result) -> None:
        if job is not self._job:
            return
        pack = self._pack()
        elsewhere = self._for_another_pack()
        if pack is not None and not elsewhere:
            self._set_discovery(result, pack)
            self._show()
        where = f" for {self._job_pack.name}" if elsewhere and self._job_pack else ""
        self.window.statusBar().showMessage(
            f"Discovered {len(result.directions)} directions{where}", 6000)

    def _on_ended(self, job: Job) -> None:
        if job is self._job:
            self._job = None
            pack = self._pack()
            if pack is not None and pack.clip is None:
                self._show_unavailable(pack)  # Discover would do nothing: keep the reason
            else:
                # the list as it is (_on_finished has shown a new result): listing it again
                # put the strengths the user had set back to their defaults, and lost the
                # current row, whenever a cancelled job or another pack's ended
                self.panel.set_idle()
