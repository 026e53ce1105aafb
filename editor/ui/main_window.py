"""The editor's main window: canvas, source controls, model menu, status bar.

Widgets post render requests to the engine's worker and show whatever newest result comes
back; they never touch torch.
"""

from __future__ import annotations

import random

import numpy as np
from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from editor import __version__
from editor.engine.models import ModelInfo, default_generator_path
from editor.engine.render_types import RenderRequest, RenderResult
from editor.engine.render_worker import RenderWorker
from editor.engine.renderer import Renderer
from editor.engine.session import Session, Source

CHECKPOINT_FILTER = "Generators (*.pt *.pkl *.safetensors);;All files (*)"


def qimage_from_array(array: np.ndarray) -> QImage:
    """Wrap an (H, W, 3) uint8 array; the copy detaches the QImage from numpy's memory."""
    h, w, _ = array.shape
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class Canvas(QLabel):
    """Shows the current image scaled to fit, smoothly (small models are upscaled)."""

    def __init__(self):
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixmap: QPixmap | None = None
        self.setText("No model loaded")

    def set_image(self, image: QImage) -> None:
        self._pixmap = QPixmap.fromImage(image)
        self._rescale()

    def current_image(self) -> QImage | None:
        return self._pixmap.toImage() if self._pixmap is not None else None

    def resizeEvent(self, event):  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None:
            return
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))


class MainWindow(QMainWindow):
    def __init__(self, renderer: Renderer | None = None):
        super().__init__()
        self.setWindowTitle("Latent Atelier")
        self.renderer = renderer or Renderer()
        self.worker = RenderWorker(self.renderer, parent=self)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.model_failed.connect(self._on_model_failed)
        self.model: ModelInfo | None = None
        self._generation = 0
        self._shown_seq = 0
        self.last_result: RenderResult | None = None

        self.canvas = Canvas()
        self.setCentralWidget(self.canvas)
        self._build_source_panel()
        self._build_menus()
        self.status_model = QLabel("no model")
        self.status_time = QLabel("")
        self.statusBar().addPermanentWidget(self.status_model)
        self.statusBar().addPermanentWidget(self.status_time)
        self.statusBar().showMessage(f"device: {self.renderer.device}")
        self.worker.start()
        self._restore_settings()

    # ----------------------------------------------------------------- building
    def _build_source_panel(self) -> None:
        panel = QWidget()
        form = QFormLayout(panel)
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.seed_box.setToolTip("Random seed of the sampled face (PgUp/PgDown)")
        self.seed_box.valueChanged.connect(lambda _v: self.request_render())
        row = QHBoxLayout()
        prev_btn, next_btn, rand_btn = QPushButton("◀"), QPushButton("▶"), QPushButton("Random")
        prev_btn.setToolTip("Previous seed")
        next_btn.setToolTip("Next seed")
        rand_btn.setToolTip("A random seed (R)")
        prev_btn.clicked.connect(lambda: self.seed_box.setValue(self.seed_box.value() - 1))
        next_btn.clicked.connect(lambda: self.seed_box.setValue(self.seed_box.value() + 1))
        rand_btn.clicked.connect(self.random_seed)
        for b in (prev_btn, next_btn, rand_btn):
            row.addWidget(b)
        self.psi_box = QDoubleSpinBox()
        self.psi_box.setRange(0.0, 1.5)
        self.psi_box.setSingleStep(0.05)
        self.psi_box.setValue(0.7)
        self.psi_box.setToolTip("Truncation ψ: lower is more typical, higher more varied")
        self.psi_box.valueChanged.connect(lambda _v: self.request_render(interactive=True))
        form.addRow("Seed", self.seed_box)
        form.addRow("", row)
        form.addRow("Truncation ψ", self.psi_box)
        dock = QDockWidget("Source", self)
        dock.setObjectName("source_dock")
        dock.setWidget(panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_act = QAction("&Open generator…", self)
        open_act.setShortcut(QKeySequence.StandardKey.Open)
        open_act.triggered.connect(self.open_generator_dialog)
        file_menu.addAction(open_act)
        file_menu.addSeparator()
        quit_act = QAction("&Quit", self)
        quit_act.setShortcut(QKeySequence.StandardKey.Quit)
        quit_act.triggered.connect(self.close)
        file_menu.addAction(quit_act)
        view_menu = self.menuBar().addMenu("&Source")
        for text, key, slot in (
            ("Next seed", "PgDown", lambda: self.seed_box.setValue(self.seed_box.value() + 1)),
            ("Previous seed", "PgUp", lambda: self.seed_box.setValue(self.seed_box.value() - 1)),
            ("Random seed", "R", self.random_seed),
        ):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(key))
            act.triggered.connect(slot)
            view_menu.addAction(act)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Latent Atelier", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    # ----------------------------------------------------------------- actions
    def random_seed(self) -> None:
        self.seed_box.setValue(random.randrange(0, 2**31 - 1))

    def open_generator_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open generator", "", CHECKPOINT_FILTER)
        if path:
            self.open_generator(path)

    def open_generator(self, path: str) -> None:
        self.statusBar().showMessage(f"loading {path} …")
        self.worker.load_model(path)

    def request_render(self, interactive: bool = False) -> RenderRequest | None:
        if self.model is None:
            return None
        session = Session(source=Source(seed=self.seed_box.value(), psi=self.psi_box.value()))
        req = RenderRequest(session, interactive=interactive, generation=self._generation)
        self.worker.submit(req)
        return req

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Latent Atelier",
            f"<b>Latent Atelier</b> {__version__}<br>Text-driven editing of StyleGAN2 images:"
            " StyleCLIP, StyleGAN-NADA and CLIP2StyleGAN in one program.",
        )

    # ----------------------------------------------------------------- worker replies
    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model = info
        self._generation += 1
        self._shown_seq = 0
        self.status_model.setText(f"{info.name} · {info.resolution}px · {info.source_format}")
        if info.z_for_seed is not None:
            # attribute-conditioned latents (the demo world): truncation would blend faces
            self.psi_box.blockSignals(True)
            self.psi_box.setValue(1.0)
            self.psi_box.blockSignals(False)
        self.statusBar().showMessage(f"device: {self.renderer.device}")
        QSettings().setValue("model/last_path", info.path)
        self.request_render()

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.statusBar().showMessage("could not open the model", 5000)
        QMessageBox.warning(self, "Could not open the model", message)

    @Slot(object)
    def _on_rendered(self, result: RenderResult) -> None:
        # results from an older model or older than what is shown are dropped
        if result.generation != self._generation or result.seq < self._shown_seq:
            return
        if not result.ok:
            self.statusBar().showMessage(f"render failed: {result.error}", 8000)
            return
        self._shown_seq = result.seq
        self.last_result = result
        self.canvas.set_image(qimage_from_array(result.image))
        kind = "preview" if result.preview else "full"
        self.status_time.setText(f"{result.timings.get('total_ms', 0):.0f} ms ({kind})")

    # ----------------------------------------------------------------- settings, closing
    def _restore_settings(self) -> None:
        s = QSettings()
        if (geom := s.value("window/geometry")) is not None:
            self.restoreGeometry(geom)
        else:
            self.resize(1000, 720)
        self.seed_box.setValue(int(s.value("source/seed", 0)))
        last = s.value("model/last_path")
        default = default_generator_path()
        path = default if default is not None else last
        if path:
            self.open_generator(str(path))
        else:
            self.canvas.setText("No model loaded.\nFile ▸ Open generator… (Ctrl+O) to open a "
                                "StyleGAN2 checkpoint\n(.pt, .pkl or .safetensors).")

    def closeEvent(self, event):  # noqa: N802 - Qt override
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("source/seed", self.seed_box.value())
        self.worker.stop()
        super().closeEvent(event)
