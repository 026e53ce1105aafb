"""The jobs panel (for a dock): running and recent jobs with progress, time left, cancel.

It only listens to a JobRunner's signals, which arrive on the UI thread already throttled,
so it never waits for a job and never blocks.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, Qt, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from editor.core.durations import rough_duration
from editor.engine.jobs import CANCELLED, FAILED, FINISHED, RUNNING, Job, JobRunner, Progress

from .elided_label import ElidedLabel
from .icons import icon
from .theme import error_colour

BAR_STEPS = 1000
KEEP_ENDED = 20  # ended rows kept before the oldest ones go
MIN_ROWS_SHOWN = 2.4  # the jobs panel's least height, in rows (when there are as many)
MAX_ETA_DAYS = 999  # longer estimates are shown as "more than 999 days left"
WAITING = "waiting"  # the state of a job queued behind another


def format_eta_text(seconds: float | None) -> str:
    """'about 3 min left' and the like; rounded, because exact seconds would jitter."""
    if seconds is None or not math.isfinite(seconds):  # no rate yet (nan), or no progress
        return ""
    if seconds > MAX_ETA_DAYS * 86400:  # a first slow step's estimate, not worth reading
        return f"more than {MAX_ETA_DAYS} days left"
    if seconds >= 99.5 * 3600:  # a 1024 px precompute on a CPU: weeks, not "more than 99 h"
        return f"about {rough_duration(seconds)} left"  # its days, as the CLI's estimate
    if seconds < 10:
        return "a few seconds left"
    if seconds < 60:
        return f"about {int(round(seconds / 5) * 5)} s left"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min left"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes} min {s} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _is_waiting(p: Progress) -> bool:
    """A job that says it waits for its turn (OneAtATime reports "waiting…" with nothing
    done) rather than working."""
    return p.done == 0 and p.message.startswith(WAITING)


def _cancel_icon_button(title: str) -> QToolButton:
    button = QToolButton()
    # the job's title: a screen reader's list of buttons held many a plain "Cancel"
    button.setToolTip(f"Cancel {title}")
    button.setAccessibleName(f"Cancel {title}")
    button.setIcon(icon("fa5s.times-circle"))
    if button.icon().isNull():  # no icon font: the text says it as well
        button.setText("Cancel")
    return button


class JobRow(QFrame):
    """One job: title and state, a progress bar, the message and the time left."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # can keep the focus; no Tab stop
        # shortened to fit: a long one ("Invert <a long file name>") asked for its whole
        # width and pushed the Cancel button beside it out of the panel's view
        self.title_label = ElidedLabel(job.title)
        self.state_label = QLabel(RUNNING)
        self.cancel_button = _cancel_icon_button(job.title)
        self.cancel_button.clicked.connect(self._cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)  # busy until the first progress arrives
        self.progress_bar.setTextVisible(True)
        self.detail_label = QLabel("starting…")
        self.detail_label.setTextFormat(Qt.TextFormat.PlainText)
        self.detail_label.setWordWrap(True)
        # a word it cannot wrap (an export's long file name) is cut at the panel's edge:
        # asking for its width pushed the Cancel button out of view, as a long title did
        policy = self.detail_label.sizePolicy()  # keeps the word wrap's height-for-width
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        self.detail_label.setSizePolicy(policy)

        top = QHBoxLayout()
        top.addWidget(self.title_label, 1)
        top.addWidget(self.state_label)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.detail_label)
        if job.progress is not None:
            self.show_progress(job.progress)

    def _cancel(self) -> None:
        had_focus = self.cancel_button.hasFocus()
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.state_label.setText("cancelling…")
        if had_focus:  # Qt passed the focus on to the canvas, away from the jobs
            self.setFocus(Qt.FocusReason.OtherFocusReason)

    def show_progress(self, p: Progress) -> None:
        # a job queued behind another (OneAtATime: "waiting for the inversion before it")
        # is not running yet; not once cancelling, which says so until it ends
        if self.cancel_button.isEnabled():
            self.state_label.setText(WAITING if _is_waiting(p) else RUNNING)
        if p.total > 0:
            self.progress_bar.setRange(0, BAR_STEPS)
            self.progress_bar.setValue(round(BAR_STEPS * min(1.0, max(0.0, p.fraction))))
        else:  # unknown total (a download without a size): a busy bar
            self.progress_bar.setRange(0, 0)
        eta = format_eta_text(p.eta_s)
        self.detail_label.setText(" · ".join(t for t in (p.message, eta) if t))

    def show_end(self) -> None:
        job = self.job
        self.cancel_button.hide()
        took = format_duration(job.elapsed_s)
        if job.state == FINISHED and job.note:
            # a note: what it ended without doing ("not imported: ..."); not "done" with a
            # full bar, which read as if it had done it
            self.state_label.setText(job.note.split(":", 1)[0])
            self._stop_bar()
            self.detail_label.setText(f"{job.note} ({took})")
        elif job.state == FINISHED:
            self.progress_bar.setRange(0, BAR_STEPS)
            self.progress_bar.setValue(BAR_STEPS)
            self.state_label.setText("done")
            self.detail_label.setText(f"finished in {took}")
        elif job.state == CANCELLED:
            self.state_label.setText("cancelled")
            got = self._stop_bar()
            # what the job kept ("2 of 5 files written") is what the user needs to know
            self.detail_label.setText(f"{job.note} ({took})" if job.note
                                      else f"cancelled after {took}{got}")
        elif job.state == FAILED:
            self.state_label.setText("failed")
            self._stop_bar()
            self.detail_label.setText(job.error or "failed")
            self._show_error_colour()

    def _show_error_colour(self) -> None:
        # red reads as an error; the theme's red, again when the theme changes: one red
        # for both was 2.5:1 on the dark theme
        self.detail_label.setStyleSheet(f"color: {error_colour(self.palette()).name()};")

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and self.job.state == FAILED:
            self._show_error_colour()
        super().changeEvent(event)

    def _stop_bar(self) -> str:
        """Hide the bar of a job that ended without finishing: left standing, empty and
        without text, it looked stalled. Returns how far it got, in words (" (40% done)"),
        or "" when it never said."""
        bar = self.progress_bar
        got = f" ({100 * bar.value() // BAR_STEPS}% done)" \
            if bar.maximum() == BAR_STEPS and bar.value() > 0 else ""
        bar.hide()
        return got


class JobsPanel(QWidget):
    """Lists the runner's jobs: the running ones at the top, newest first, then the ended
    ones, the last to end first; ended ones stay until cleared."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        self._rows: dict[int, JobRow] = {}

        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # not a Tab stop of its own: it showed no focus and did nothing; the rows' Cancel
        # buttons still are
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        scroll.setWidget(self._list)
        self._scroll = scroll
        self.empty_label = QLabel("No jobs. Long work (precompute, downloads) shows up here.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Preferred,
                                       QSizePolicy.Policy.Maximum)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)

        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_label)
        layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout.addLayout(buttons)

        runner.job_started.connect(self._on_started)
        runner.job_progress.connect(self._on_progress)
        runner.job_ended.connect(self._on_ended)
        for job in runner.active_jobs():
            self._on_started(job)
        self._update_chrome()

    def row(self, job: Job) -> JobRow | None:
        return self._rows.get(job.id)

    def rows(self) -> list[JobRow]:
        """As shown: running jobs first (newest first), then ended ones (last ended first)."""
        return [self._list_layout.itemAt(i).widget() for i in range(self._list_layout.count())
                if self._list_layout.itemAt(i).widget() is not None]

    @Slot()
    def clear_finished(self) -> None:
        for row in [r for r in self._rows.values() if not r.job.is_active]:
            self._remove(row)
        self._update_chrome()

    @Slot(object)
    def _on_started(self, job: Job) -> None:
        if job.id in self._rows:
            return
        row = JobRow(job)
        self._rows[job.id] = row
        self._list_layout.insertWidget(0, row)
        self._update_chrome()

    @Slot(object, object)
    def _on_progress(self, job: Job, progress: Progress) -> None:
        row = self._rows.get(job.id)
        if row is not None:
            row.show_progress(progress)

    @Slot(object)
    def _on_ended(self, job: Job) -> None:
        row = self._rows.get(job.id)
        if row is None:
            return
        row.show_end()
        # below the jobs still running: a running job listed under finished ones was out of
        # sight in a short panel
        self._list_layout.removeWidget(row)
        self._list_layout.insertWidget(sum(r.job.is_active for r in self.rows()), row)
        ended = [r for r in self.rows() if not r.job.is_active]
        for old in ended[KEEP_ENDED:]:
            self._remove(old)
        self._update_chrome()

    def _rows_height(self, shown: float) -> int:
        """The height of the first `shown` rows (a fraction: part of the last one)."""
        rows, spacing = self.rows(), max(0, self._list_layout.spacing())
        height = 0.0
        for i, row in enumerate(rows[:math.ceil(shown)]):
            part = min(1.0, shown - i)
            height += part * row.sizeHint().height() + (spacing if part == 1.0 else 0)
        return math.ceil(height)

    def _remove(self, row: JobRow) -> None:
        self._rows.pop(row.job.id, None)
        self._list_layout.removeWidget(row)
        row.deleteLater()

    def _update_chrome(self) -> None:
        self.empty_label.setVisible(not self._rows)
        # room for two whole jobs and a glimpse of a third: one job's room (the panel opened
        # for a first job cut its status line in half) hid a running job behind another
        self._scroll.setMinimumHeight(self._rows_height(MIN_ROWS_SHOWN))
        self.clear_button.setEnabled(any(not r.job.is_active for r in self._rows.values()))
