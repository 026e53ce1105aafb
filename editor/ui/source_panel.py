"""The source panel: which image the edits start from (a seed with truncation ψ, or a
loaded latent), with previous/next/random and the file actions."""

from __future__ import annotations

import html

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from editor.engine.session import MAX_SEED, PSI_RANGE, Source

from .icons import icon
from .keys import claim_keys, route_undo_keys
from .sliders import NAVIGATION_KEYS


class _SeedBox(QSpinBox):
    """A seed box that says when a value came from a step (arrow key, wheel, ▲/▼): each
    step is an undo step of its own, while typed digits ("1", "12", "123") merge."""

    stepped = Signal()

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt override
        super().stepBy(steps)
        self.stepped.emit()


class SourcePanel(QWidget):
    seed_changed = Signal(int)
    psi_changed = Signal(float)
    interaction_finished = Signal()
    random_requested = Signal()
    open_image_requested = Signal()
    open_latent_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.seed_box = _SeedBox()
        self.seed_box.setRange(0, MAX_SEED)
        self.seed_box.setToolTip("Random seed of the sampled face (PgUp/PgDown)")
        self.seed_box.valueChanged.connect(self.seed_changed)
        self.seed_box.editingFinished.connect(self.interaction_finished)
        self.seed_box.stepped.connect(self.interaction_finished)
        self.prev_button = QPushButton(icon("mdi6.chevron-left"), "")
        self.next_button = QPushButton(icon("mdi6.chevron-right"), "")
        self.random_button = QPushButton(icon("mdi6.dice-5-outline"), "Random")
        self.prev_button.setAccessibleName("Previous seed")  # icons only: a reader's name
        self.next_button.setAccessibleName("Next seed")
        for b, tip in ((self.prev_button, "Previous seed (PgUp)"),
                       (self.next_button, "Next seed (PgDown)"),
                       (self.random_button, "A random seed (R)")):
            b.setToolTip(tip)
            if b.icon().isNull() and not b.text():
                b.setText("◀" if b is self.prev_button else "▶")
        self.prev_button.clicked.connect(lambda: self.step_seed(-1))
        self.next_button.clicked.connect(lambda: self.step_seed(+1))
        self.random_button.clicked.connect(self.random_requested)
        row = QHBoxLayout()
        for b in (self.prev_button, self.next_button, self.random_button):
            row.addWidget(b)
        self.psi_box = QDoubleSpinBox()
        self.psi_box.setRange(*PSI_RANGE)
        self.psi_box.setSingleStep(0.05)
        self.psi_box.setValue(0.7)
        self.psi_box.setKeyboardTracking(False)
        self.psi_box.setToolTip("Truncation ψ: lower is more typical, higher more varied")
        self.psi_box.valueChanged.connect(self.psi_changed)
        route_undo_keys([self.seed_box, self.psi_box])
        # PgUp/PgDown step ψ here, as in the α and β boxes, not the window's seed
        claim_keys(self.psi_box, NAVIGATION_KEYS)
        # no keyboard tracking: every change is a whole value (a step, or typed and
        # entered), so each is its own undo step
        self.psi_box.valueChanged.connect(lambda _v: self.interaction_finished.emit())
        self.latent_label = QLabel()
        self.latent_label.setWordWrap(True)
        # no least width of its own: a file name without spaces (a web download's) asked
        # for its whole width, and the forms' column is never narrower than its form
        # (main_window._FormArea); the wrapping's height-for-width is kept
        policy = self.latent_label.sizePolicy()
        policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
        self.latent_label.setSizePolicy(policy)
        self.latent_label.setTextFormat(Qt.TextFormat.RichText)
        self.latent_label.hide()
        open_image = QPushButton(icon("mdi6.image-outline"), "Open image…")
        open_image.setToolTip("Start from your own picture (Ctrl+I)")
        open_image.clicked.connect(self.open_image_requested)
        open_latent = QPushButton(icon("mdi6.file-outline"), "Open latent or recipe…")
        open_latent.setToolTip("Start from a saved W+ latent (.npy, .pt, .safetensors), "
                               "a session or an exported PNG's recipe (Ctrl+L)")
        open_latent.clicked.connect(self.open_latent_requested)
        form = QFormLayout()
        form.addRow("Seed", self.seed_box)
        form.addRow("", row)
        form.addRow("Truncation ψ", self.psi_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.latent_label)
        layout.addWidget(open_image)
        layout.addWidget(open_latent)
        layout.addStretch(1)

    def step_seed(self, step: int) -> None:
        self.seed_box.setValue(min(MAX_SEED, max(0, self.seed_box.value() + step)))
        self.interaction_finished.emit()

    def show_source(self, source: Source) -> None:
        with QSignalBlocker(self.seed_box), QSignalBlocker(self.psi_box):
            self.seed_box.setValue(source.seed)
            self.psi_box.setValue(source.psi)
        # a loaded latent is shown by name; any seed control switches back to seeds
        is_seed = source.kind == "seed"
        self.psi_box.setEnabled(is_seed)
        self.latent_label.setVisible(not is_seed)
        if not is_seed:
            name = source.label or source.wplus_path
            # an inverted picture carries only its latent; a latent file also its path
            what = "the latent" if source.wplus_path else "your picture"
            # a file name or a stranger's recipe label: text, never markup
            self.latent_label.setText(f"Starting from {what} <b>{html.escape(name)}</b>; "
                                      "change the seed to go back to sampling.")
