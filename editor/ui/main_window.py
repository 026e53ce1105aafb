"""The editor's main window: canvas, source, prompt, edit stack, directions and jobs.

Every change goes through the Document (undoable); the window turns the document's state
into render requests for the engine's worker and shows the newest result. Widgets never
touch torch; long work runs as jobs with progress and cancel.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from PySide6.QtCore import QEvent, QSettings, QSize, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from editor import __version__
from editor.core.devices import device_choices, resolve_device
from editor.core.durations import rough_duration
from editor.core.errors import AtelierError, DamagedRecipeError
from editor.core.hashing import file_sha256
from editor.core.image_io import looks_like_image, read_recipe, readable_image_suffixes
from editor.core.paths import CACHE_ENV, RESOURCES_DIR, cache_dir, unwritable_reason
from editor.engine.compose import (
    EditingContext,
    ManyLatentsError,
    holds_a_latent,
    wplus_file_source,
    wplus_of_source,
)
from editor.engine.editor_state import (
    DEFAULT_NEUTRAL,
    DRAFT_KEY,
    EditDefaults,
    EditorState,
    draft_for_pack,
    new_draft,
    replayed_session,
)
from editor.engine.export import (
    ExportResult,
    disable_failing_edits,
    file_recipe,
    plan_targets,
    run_plan,
)
from editor.engine.interaction import InteractionGate
from editor.engine.jobs import JobRunner
from editor.engine.models import (
    DEMO_GENERATOR,
    default_generator_path,
    local_generator,
    this_installs_model,
)
from editor.engine.packs import ClipSource, OpenPack, default_clip_source, same_pack
from editor.engine.render_types import RenderRequest, RenderResult
from editor.engine.render_worker import RenderWorker
from editor.engine.renderer import Renderer
from editor.engine.session import (
    MAX_SEED,
    MAX_STACK,
    PSI_RANGE,
    Edit,
    ModelIdentity,
    RecipeError,
    Session,
    Source,
    parse_recipe,
    read_recipe_text,
)
from editor.methods.styleclip_files import looks_like_fs3

from . import settings_values
from .canvas import ZOOM_STEPS, Canvas
from .clipboard import PasteError, put_picture, read_pasted, save_pasted_image
from .directions_panel import DirectionsPanel
from .discovery_flow import JOB_PREFIX as DISCOVERY_JOB
from .discovery_flow import DiscoveryFlow
from .document import Document
from .elided_label import ElidedLabel
from .export_dialog import confirm_overwrite, get_export_plan
from .generator_choice import OPEN_ITS_OWN, SHOW_WITH_OPEN, ask_which_generator
from .icons import icon
from .inversion_flow import InversionFlow
from .jobs_panel import JobsPanel
from .keys import menu_text
from .models_dialog import DOWNLOAD_JOB, clip_choices, same_path
from .models_menu import ModelsMenu
from .notices import cannot_open_image_text, failed_job_text, show_warning
from .panel_focus import focus_area, focus_next_area, in_view
from .picture_choice import INVERT, REPLAY, ask_invert_instead, ask_replay_or_invert
from .prompt_panel import ADD_TO_STACK_KEYS, PromptPanel
from .qimages import qimage_from_array
from .remembered import REMEMBERED_CLIPS, remembered_clip
from .screen_room import available_area
from .shortcuts_dialog import SHORTCUT_NAME, show_shortcuts
from .source_panel import SourcePanel
from .stack_panel import EditStackPanel
from .styleclip_import_flow import StyleClipImportFlow
from .theme import THEMES, apply_theme

EXPORT_JOB = "export:"  # key prefix of export jobs
RENDERING_TEXT = "rendering…"  # the time label while a picture is on its way
NOT_DRAWN_TEXT = "⚠ not drawn"  # the time label after a render failed
LONG_PRECOMPUTE_S = 24 * 3600  # offered with No as the default answer from this estimate
PRECOMPUTE_JOB = "precompute:"
SIDE_COLUMN_MAX = 440  # px: the panels' first width, at most (the picture takes the rest)
DEVICE_KEY = "render/device"  # the View ▸ Device choice: auto, cpu or cuda:N

GENERATOR_FILTER = "Generators (*.pt *.pkl *.safetensors);;All files (*)"
LATENT_FILTER = ("Latents, sessions and exported images (*.npy *.pt *.safetensors *.json "
                 "*.png *.jpg *.jpeg *.webp);;All files (*)")
SESSION_SUFFIX = ".atelier.json"
CANNOT_OPEN_SESSION = "Cannot open the session"
SESSION_FILTER = f"Latent Atelier sessions (*{SESSION_SUFFIX} *.json);;All files (*)"
IMAGE_SUFFIXES = readable_image_suffixes()  # the dialog and drops take the same files
IMAGE_FILTER = f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)"
GENERATOR_SUFFIXES = (".pt", ".pkl", ".safetensors")
# pictures a phone or camera makes that Pillow cannot read without plug-ins: said so, not
# taken for a generator (a checkpoint is known by its content, so any other name is one)
UNREADABLE_PICTURES = {s: s[1:].upper() for s in (
    ".heic", ".heif", ".avif", ".jxl", ".svg", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf",
    ".orf", ".rw2", ".psd") if s not in IMAGE_SUFFIXES}


def kind_of_file(path: str) -> str:
    """What the window opens a file as: 'session', 'image', 'latent', 'generator',
    'unreadable picture' (a HEIC photo, a camera's raw file), or 'other' (an unknown name:
    only a file's content can tell)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "session"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in UNREADABLE_PICTURES and not looks_like_image(path):
        return "unreadable picture"
    if suffix == ".npy" or (suffix in GENERATOR_SUFFIXES and holds_a_latent(path)):
        return "latent"
    if suffix in GENERATOR_SUFFIXES:
        return "generator"
    return "image" if looks_like_image(path) else "other"  # a picture under an odd name


def names_a_generator(path: str) -> bool:
    """Whether a file named at start is opened as a generator: any file that is not one of
    the others the window opens (a session, a picture, a latent). Generators are known by
    their content, so an imported 'net.pth' is one too."""
    return kind_of_file(path) in ("generator", "other")


LATENT_SUFFIXES = (".npy", ".pt", ".safetensors")
MAX_RECENT = 8
RECENT_NAME_CHARS = 60  # longer names are cut in the middle in Open recent (not its tooltip)


class _FromRecipe(NamedTuple):
    """A recipe read into a document."""

    state: EditorState
    made_with: ModelIdentity | None  # the generator the recipe names
    notes: list[str]  # what is shown otherwise than the recipe says, for the user
    differs: bool  # shown otherwise (other models, fixed noise): saving changes the file


def _check_latent(source: Source, pack: OpenPack) -> None:
    """AtelierError or ValueError when a W+ source is not of this pack's generator's shape."""
    g = pack.model.generator
    wplus_of_source(source, g.n_latent, g.w_dim)


def _latent_fits(source: Source, pack: OpenPack) -> bool:
    try:
        _check_latent(source, pack)
    except (AtelierError, ValueError):
        return False
    return True


def _latent_name(source: Source) -> str:
    return source.label or Path(source.wplus_path or "").name or "the latent"


def _resume_note(running: list[str], resumes: list[str]) -> str:
    """What stopping the running jobs keeps: those in `resumes` go on next time."""
    if not resumes:
        return ""
    one = len(resumes) == 1
    if resumes == running:
        return " (It resumes where it stopped next time.)" if one else \
            " (They resume where they stopped next time.)"
    return (f" ({', '.join(resumes)} {'resumes' if one else 'resume'} where "
            f"{'it' if one else 'they'} stopped next time; the others start over.)")


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def _missing_latent_file(source: Source) -> str | None:
    """The path of the latent file a source names and that is not there (None: it is, or
    the source carries its latent, or is a seed)."""
    path = source.latent_file
    return None if path is None or Path(path).exists() else path


def _last_edit_as_draft(state: EditorState) -> EditorState:
    """A picture exported from a full stack with a prompt drawn on top holds one edit more
    than the stack: its last text edit goes back to the prompt panel, which drew it (the
    picture is the same). Opened as a stack, it was refused."""
    edits = state.session.edits
    if len(edits) != MAX_STACK + 1 or edits[-1].kind != "global":
        return state
    return state.with_saved_draft(edits[-1].id)


def _status_key(session: Session | None, edit_id: str) -> tuple | None:
    """What the engine's report on an edit depends on (not its strength): two sessions
    that agree on it report the same; None where the edit is not drawn."""
    edit = next((e for e in session.edits if e.id == edit_id), None) if session else None
    if edit is None or not edit.enabled:
        return None
    return edit.kind, edit.params


def _finished_text(title: str, result: object) -> str:
    """The status line of a finished job: an export says what it wrote, and where."""
    saved = result.saved if isinstance(result, ExportResult) else []
    if not saved:
        return f"{title}: done"
    what = saved[0].path.name if len(saved) == 1 else f"{len(saved)} files"
    return f"Exported {what} to {saved[0].path.parent}"


class _FormArea(QScrollArea):
    """A form's scroll area. It scrolls up and down only, so it is never narrower than the
    form: the side column could be (at the window's least width, or dragged narrow), and
    the form's right end was cut off (the β box, the … button, "New prompt")."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        hint = super().minimumSizeHint()
        if self.widget() is None:
            return hint
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        least = self.widget().minimumSizeHint().width() + bar + 2 * self.frameWidth()
        return QSize(max(hint.width(), least), hint.height())


def _with_footer(area: QScrollArea, footer: QWidget) -> QWidget:
    """`area` with `footer` below it, at the form's own side margins, out of the scroll."""
    box = QWidget()
    layout = QVBoxLayout(box)
    margins = area.widget().layout().contentsMargins()
    layout.setContentsMargins(0, 0, 0, margins.bottom())
    layout.setSpacing(0)
    layout.addWidget(area, 1)
    row = QHBoxLayout()
    row.setContentsMargins(margins.left(), 0, margins.right(), 0)
    row.addWidget(footer)  # taken from the form's own layout
    layout.addLayout(row)
    return box


def _is_demo_generator(path: str) -> bool:
    return same_path(path, DEMO_GENERATOR)


def _no_clip_text(pack: OpenPack) -> str:
    """Why prompt edits are off for a pack without a CLIP, and the way to one: the CLIPs
    the user has (imported, offline) before a download. A real generator opens with
    ViT-B-32/openai by default: "can download one" sent the owner of an imported CLIP to
    download another."""
    why = (pack.clip_error or "none was chosen").rstrip(".")  # its own sentence's end
    failed = pack.clip_source.path if pack.clip_source is not None else None
    yours = [label for label, spec in clip_choices()
             if spec.get("path") and not (failed and same_path(spec["path"], failed))]
    if not yours:
        return f"Prompt edits need a CLIP model: {why}. Models ▸ Model packs… can download one."
    named = ", ".join(yours[:3]) + (f" and {len(yours) - 3} more" if len(yours) > 3 else "")
    return (f"Prompt edits need a CLIP model: {why}. Models ▸ Model packs… pairs this "
            f"generator with one you have ({named}) or downloads one.")


def _bundled(path: str) -> bool:
    """A file that ships with the program (the demo models)."""
    return Path(path).resolve().is_relative_to(RESOURCES_DIR)


def _device_item_text(choice: str, label: str) -> str:
    """View ▸ Device's item: Auto and CPU by their first letter, a CUDA device by its
    number (each began with C, as CPU did: Alt+C went back and forth between them and
    chose none)."""
    index = choice.removeprefix("cuda:")
    if index == choice:
        return f"&{label}"
    return label.replace(f"CUDA {index}", f"CUDA &{index}", 1) if len(index) == 1 else label


class MainWindow(QMainWindow):
    def __init__(self, renderer: Renderer | None = None, open_last_model: bool = True,
                 device: str | None = None):
        """`open_last_model`: start on the model used last (the demo pack the first time);
        off when the caller opens one of its own. `device` (auto, cpu, cuda, cuda:N; checked
        by the caller) is this run's, as `atelier gui --device` names it; left out, the
        one chosen last in View ▸ Device (or the given renderer's own)."""
        super().__init__()
        self.setWindowTitle("Latent Atelier")
        # said once, with the first model: why the device is not the one asked for, or
        # that the settings cannot be saved
        self._start_note: str | None = None
        # path, clip, options of the model being opened: a new device opens it, not the old
        self._loading: tuple | None = None
        # ... and of the last one that could not be opened with none open: another device
        # may open it
        self._failed_load: tuple | None = None
        # (choice, device) before a choice whose model is still opening: back if it fails
        self._device_before: tuple | None = None
        # the precompute is offered once the new model's first picture says how fast
        # this device draws (its estimate is days on a CPU at 1024 px)
        self._offer_when_drawn = False
        self._closed = False  # closed for good: nothing more is asked
        if renderer is not None and device is None:
            device = str(renderer.device)
        self._device_choice, self._device = self._start_device(device)
        self.renderer = renderer or Renderer(device=self._device)
        # jobs pause between their steps while the user waits for a picture
        self.interaction = InteractionGate()
        self.worker = RenderWorker(self.renderer, parent=self, interaction=self.interaction)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.clip_loaded.connect(self._on_clip_loaded)
        self.worker.model_failed.connect(self._on_model_failed)
        self.jobs = JobRunner(self, interaction=self.interaction)
        self.document = Document(parent=self)
        self.document.changed.connect(self._on_state_changed)
        self.document.modified_changed.connect(self._update_title)
        self.pack: OpenPack | None = None
        # the last seed drawn, and whether on the demo: remembered at close (a latent's own
        # seed and ψ are none the user saw; see closeEvent)
        self._seed_shown: tuple[Source, bool] | None = None
        self.session_path: Path | None = None
        self._pasted_pictures = 0  # pictures pasted in this window, for their names
        # the session file's sha256 as this window last read or wrote it, while the document
        # is what the file holds (any history reset forgets it)
        self._session_file_sha: str | None = None
        self._generation = 0
        self._shown_seq = 0
        self._selected_id: str | None = None  # the stack row selected, of any kind
        self._export_count = 0  # export jobs get keys of their own (several may run)
        self._export_targets: dict[str, list[Path]] = {}  # export job key -> its files
        # edits deleted while being tuned: an undo that brings one back selects it again
        self._deleted_while_tuned: set[str] = set()
        self.document.history_reset.connect(self._deleted_while_tuned.clear)
        self.document.history_reset.connect(self._forget_session_file)
        self._shown_edit_ids: frozenset[str] = frozenset()
        self._interactive = False
        # the session the picture shown was drawn from: the prompt panel's report is of the
        # edit as drawn, which may not be the edit as it is now (a slow model is still
        # drawing the new prompt)
        self._drawn: Session | None = None
        self._notes_context: EditingContext | None = None  # prompt notes on this thread
        # the pack open before the one whose CLIP is loading (a device change keeps it)
        self._pack_before: OpenPack | None = None
        self._said_error: str | None = None  # the prompt's error the status bar told
        self.last_result: RenderResult | None = None
        self.last_request: RenderRequest | None = None
        # what Copy image or Copy recipe ("image", "recipe") waits to copy: the settled
        # picture, or the recipe that drew it (edits that failed are off in it)
        self._copy_pending: str | None = None
        self._shown_before = None  # the "before" array the canvas holds
        self._before_image: QImage | None = None  # ... wrapped for painting

        self.canvas = Canvas()
        # queued: the drop is over (its source program no longer waits) before a crop
        # dialog or a question comes up for the files
        self.canvas.files_dropped.connect(self.open_paths, Qt.ConnectionType.QueuedConnection)
        self.setCentralWidget(self.canvas)
        self._form_areas: dict[QDockWidget, QScrollArea] = {}  # see form_area
        self._form_hints: dict[QScrollArea, int] = {}  # each form's height at the last fit
        self._form_growth = QTimer(self, singleShot=True, interval=0)
        self._form_growth.timeout.connect(self._grow_forms)
        self._build_panels()
        self._build_actions()
        self._build_status_bar()
        self.worker.start()
        self._fit_forms_when_shown = False
        QApplication.instance().installEventFilter(self)  # the compare key, see eventFilter
        self._fallback_generator: Path | None = None  # opened if the last model fails
        # what waits for a model: files named at start, a recipe whose generator opens
        self._open_when_loaded: list[Callable[[], object]] = []
        # a session file that opens once its own generator has loaded: (path, generator,
        # the document's revision when the user agreed to replace it)
        self._session_after_load: tuple[str, ModelIdentity, int] | None = None
        self._restore_settings(open_last_model)
        self._on_state_changed(self.document.state)

    @property
    def model(self):
        return self.pack.model if self.pack is not None else None

    # ================================================================= building
    def _dock(self, title: str, name: str, widget: QWidget, scroll: bool = False,
              footer: QWidget | None = None) -> QDockWidget:
        """A panel. `scroll`: its form scrolls rather than set the window's least height
        (see `form_area`); `footer`: a control kept in view below the scrolling form."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        if scroll:
            area_widget = _FormArea()
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the form
            area_widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            area_widget.setWidget(widget)
            self._form_areas[dock] = area_widget
            widget = area_widget if footer is None else _with_footer(area_widget, footer)
        dock.setWidget(widget)
        # Qt keeps a dock behind another's tab 'visible', only moved out of view, so Tab
        # walked through widgets nobody could see. Its content is disabled while it is out
        # of view (hiding it instead changed the dock's size hints: the dock area was cut)
        dock.visibilityChanged.connect(widget.setEnabled)
        return dock

    def form_area(self, dock: QDockWidget) -> QScrollArea:
        """The scroll area of a form's dock (Source, Prompt)."""
        return self._form_areas[dock]

    def _arrange_panels(self) -> None:
        """The panels where the window first puts them: Source, Prompt and the Edit stack
        (with the Discovered directions behind its tab) down the right, Jobs below."""
        right = Qt.DockWidgetArea.RightDockWidgetArea
        # Jobs goes under the canvas only: across the whole width it took its height from
        # the panels on the right too, and cut the Prompt form off at the β row
        self.setCorner(Qt.Corner.BottomRightCorner, right)
        for dock in (self.source_dock, self.prompt_dock, self.stack_dock,
                     self.directions_dock):
            dock.setFloating(False)
            self.addDockWidget(right, dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.stack_dock, self.directions_dock)
        self.jobs_dock.setFloating(False)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)

    def reset_layout(self) -> None:
        """View ▸ Panels ▸ Reset layout: every panel back in its place and in view (a
        panel closed, floated off screen or dragged elsewhere), sized as at first."""
        self._arrange_panels()
        for dock in self._panel_docks():
            if dock is not self.jobs_dock or self.jobs.active_jobs():
                dock.show()
        self.stack_dock.raise_()
        QTimer.singleShot(0, self, self._fit_forms)

    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._fit_forms_when_shown:
            self._fit_forms_when_shown = False
            QTimer.singleShot(0, self, self._fit_forms)  # after this first layout

    def _fit_forms(self) -> None:
        """First layout: the side column as wide as its panels need, or up to a third of
        the window where there is room (Qt made it about 490 px at any window width, half
        a small screen, the picture the other half); the Source and Prompt forms get the
        height they need (they were a few pixels short at the default size, so both
        showed a scrollbar while the edit stack had room to spare); the stack takes the
        rest."""
        column = [self.source_dock, self.prompt_dock, self.stack_dock, self.directions_dock]
        areas = [self.form_area(d) for d in column[:2]]
        needed = max(d.minimumSizeHint().width() for d in column)
        # the forms' wish, not the directions' (behind a tab; their rows ask for ~490),
        # with room for a form's scrollbar: the forms' own hints (their docks' now count it
        # already, from their areas' least width, and the column came out a scrollbar wider)
        scrollbar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        wanted = max(*(a.widget().sizeHint().width() for a in areas),
                     self.stack_dock.sizeHint().width()) + scrollbar
        # `needed` first: the docks' least widths hold their forms' whole (a large font
        # passes SIDE_COLUMN_MAX; see _FormArea)
        width = max(needed, min(SIDE_COLUMN_MAX, max(wanted, self.width() // 3)))
        self.resizeDocks([self.source_dock], [width], Qt.Orientation.Horizontal)
        self._form_hints = {a: a.widget().sizeHint().height() for a in areas}
        self._give_forms([max(0, a.widget().sizeHint().height() - a.viewport().height())
                          for a in areas])

    def _give_forms(self, lacking: list[int]) -> None:
        """Source's and Prompt's docks grow by these heights, which the edit stack gives
        up as far as it can (a small screen or a big font: the forms then share what it
        has)."""
        forms, rest = [self.source_dock, self.prompt_dock], self.stack_dock
        if not all(d.isVisible() and d.height() > 0 for d in (*forms, rest)) \
                or not any(lacking):
            return
        spare = rest.height() - rest.minimumSizeHint().height()
        if sum(lacking) > spare:
            if spare <= 0:
                return
            lacking = [extra * spare // sum(lacking) for extra in lacking]
        heights = [d.height() + extra for d, extra in zip(forms, lacking, strict=True)]
        self.resizeDocks([*forms, rest], [*heights, rest.height() - sum(lacking)],
                         Qt.Orientation.Vertical)

    def _grow_forms(self) -> None:
        """A form whose content grew since (the note under Source after an inversion, the
        Prompt panel's notice) gets the height it gained, where it now lacks room: it
        showed a scrollbar over its last button. Only the growth is given, so heights the
        user chose stay as they were."""
        areas = [self.form_area(d) for d in (self.source_dock, self.prompt_dock)]
        lacking = []
        for area in areas:
            hint = area.widget().sizeHint().height()
            grown = hint - self._form_hints.get(area, hint)
            self._form_hints[area] = hint
            short = hint - area.viewport().height()
            lacking.append(max(0, min(grown, short)))
        self._give_forms(lacking)

    def _build_panels(self) -> None:
        self.source_panel = SourcePanel()
        sp = self.source_panel
        sp.seed_changed.connect(self._set_seed)
        sp.psi_changed.connect(self._set_psi)
        sp.interaction_finished.connect(self._end_interaction)
        sp.random_requested.connect(self.random_seed)
        sp.open_image_requested.connect(self.open_image_dialog)
        sp.open_latent_requested.connect(self.open_latent_dialog)
        self.prompt_panel = PromptPanel()
        pp = self.prompt_panel
        pp.edit_changed.connect(self._on_edit_changed)
        pp.interaction_finished.connect(self._end_interaction)
        pp.add_requested.connect(self.add_draft_to_stack)
        pp.new_prompt_requested.connect(lambda: self._tune(None))
        self.stack_panel = EditStackPanel()
        st = self.stack_panel
        st.strength_changed.connect(
            lambda eid, v: self._change_edit(eid, {"strength": v}, "Change strength",
                                             ("strength", eid)))
        st.enabled_changed.connect(
            lambda eid, on: self._change_edit(eid, {"enabled": on},
                                              "Enable edit" if on else "Disable edit", None))
        st.renamed.connect(lambda eid, name: self._change_edit(eid, {"name": name},
                                                               "Rename edit", None))
        st.removed.connect(self.remove_edit)
        st.moved.connect(self.move_edit)
        st.selected.connect(self._tune)
        st.interaction_finished.connect(self._end_interaction)
        st.emptied_with_focus.connect(
            lambda: pp.target.setFocus(Qt.FocusReason.OtherFocusReason))
        self.directions_panel = DirectionsPanel()
        self.jobs_panel = JobsPanel(self.jobs)
        self.source_dock = self._dock("Source", "source_dock", sp, scroll=True)
        # the panel's main action stays in view below its form (at 1024 x 640 it was
        # below the fold on the first start, though the empty stack says to press it)
        self.prompt_dock = self._dock("Prompt", "prompt_dock", pp, scroll=True,
                                      footer=pp.add_button)
        QWidget.setTabOrder(pp.gate, pp.add_button)  # its place in Tab order, as before
        self.stack_dock = self._dock("Edit stack", "stack_dock", st)
        self.directions_dock = self._dock("Discovered directions", "directions_dock",
                                          self.directions_panel)
        self.jobs_dock = self._dock("Jobs", "jobs_dock", self.jobs_panel)
        self._arrange_panels()
        self.stack_dock.raise_()
        self.jobs.job_started.connect(lambda _job: self.jobs_dock.show())
        self.jobs.job_finished.connect(self._on_job_finished)
        self.jobs.job_failed.connect(self._on_job_failed)
        self.jobs.job_ended.connect(self._on_job_ended)
        self.discovery = DiscoveryFlow(self, self.jobs, self.directions_panel,
                                       lambda: self.pack, self._add_edit)
        self.inversion = InversionFlow(self, self.jobs, self.canvas, lambda: self.pack,
                                       self._use_inverted_source, self.document.changed,
                                       self.request_render, self.document)
        self.styleclip_import = StyleClipImportFlow(self, self.jobs, lambda: self.pack,
                                                    self._precompute_key, self._last_dir,
                                                    self._remember_dir)

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None,
                tip: str | None = None, checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if icon_name:
            act.setIcon(icon(icon_name))
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)  # shortcuts work even when the menu bar is hidden
        return act

    def _history_action(self, prefix: str, slot, enabled: bool, enabled_changed,
                        text: str, text_changed) -> QAction:
        """Undo or Redo, labelled and enabled as QUndoStack's own actions ("Undo Change
        seed"), but through `slot`: pending input must become a step before the history
        moves."""
        act = QAction(self)

        def label(change: str) -> None:
            act.setText(f"{prefix} {change}" if change else prefix)

        label(text)
        act.setEnabled(enabled)
        text_changed.connect(label)
        enabled_changed.connect(act.setEnabled)
        act.triggered.connect(slot)
        return act

    def _panel_docks(self) -> list[QDockWidget]:
        return [self.source_dock, self.prompt_dock, self.stack_dock, self.directions_dock,
                self.jobs_dock]

    def _focus_areas(self) -> list[QWidget]:
        """What F6 goes round, in reading order: the picture, then the panels in view."""
        return [self.canvas, *(d for d in self._panel_docks() if in_view(d))]

    def _panel_action(self, dock: QDockWidget) -> QAction:
        """View ▸ Panels: shows a hidden panel, brings one that sits behind another's tab to
        the front, and hides the one in front. (Qt's own toggle hid a panel behind a tab,
        and showed it behind the tab again.)"""
        act = QAction(f"&{dock.windowTitle()}", self, checkable=True)  # Alt+its letter
        # visibilityChanged also tells when the panel's tab is chosen or left; isVisible()
        # stays true for a panel behind another's tab
        in_view = [not dock.isHidden()]

        def seen(visible: bool) -> None:
            in_view[0] = visible
            act.setChecked(not dock.isHidden())  # however it was closed or opened

        def chosen() -> None:
            if dock.isHidden():
                dock.show()
                dock.raise_()
            elif not in_view[0]:
                dock.raise_()
            else:
                dock.hide()
            act.setChecked(not dock.isHidden())
            if not dock.isHidden():  # chosen to work in: the keyboard goes there too
                # once the window has enabled the content it brought into view
                QTimer.singleShot(0, self, lambda: focus_area(dock))

        dock.visibilityChanged.connect(seen)
        act.triggered.connect(chosen)
        act.setChecked(not dock.isHidden())
        return act

    def _build_actions(self) -> None:
        a = self._action
        SK = QKeySequence.StandardKey
        self.open_generator_act = a("Open &generator…", self.open_generator_dialog, SK.Open,
                                    "mdi6.folder-open-outline",
                                    "Open a StyleGAN2 checkpoint (.pt, .pkl, .safetensors)")
        self.open_image_act = a("Open &image…", self.open_image_dialog, "Ctrl+I",
                                "mdi6.image-outline", "Start from your own picture")
        self.open_latent_act = a("Open &latent or recipe…", self.open_latent_dialog,
                                 "Ctrl+L", None, "Start from a W+ file, session or PNG recipe")
        self.open_session_act = a("Open sessi&on…", self.open_session_dialog, "Ctrl+Shift+O")
        self.save_session_act = a("&Save session", self.save_session, SK.Save,
                                  "mdi6.content-save-outline", "Save the source and edit stack")
        self.save_session_as_act = a("Save session &as…", self.save_session_as, SK.SaveAs)
        self.export_act = a("&Export…", self.export_dialog, "Ctrl+E", "mdi6.export",
                            "Export the image, an α sweep or a batch of seeds")
        self.quit_act = a("&Quit", self.close, SK.Quit)
        # in a text box these keys stay the box's own (it claims them first)
        self.copy_image_act = a("&Copy image", self.copy_image, SK.Copy, "mdi6.content-copy",
                                "Copy the picture, with its recipe, to the clipboard")
        self.copy_recipe_act = a("Copy r&ecipe", self.copy_recipe, "Ctrl+Shift+C", None,
                                 "Copy the picture's recipe, as text, to the clipboard")
        self.paste_act = a("&Paste image or recipe", self.paste, SK.Paste, "mdi6.content-paste",
                           "Invert a copied picture, or open a copied recipe or file")
        stack = self.document.undo_stack
        self.undo_act = self._history_action("&Undo", self.undo, stack.canUndo(),
                                             stack.canUndoChanged, stack.undoText(),
                                             stack.undoTextChanged)
        self.redo_act = self._history_action("&Redo", self.redo, stack.canRedo(),
                                             stack.canRedoChanged, stack.redoText(),
                                             stack.redoTextChanged)
        # every platform binding, and Ctrl+Y everywhere (X11's bindings lack it)
        redo_keys = QKeySequence.keyBindings(SK.Redo)
        if QKeySequence("Ctrl+Y") not in redo_keys:
            redo_keys.append(QKeySequence("Ctrl+Y"))
        for act, keys, name, icon_name in (
                (self.undo_act, QKeySequence.keyBindings(SK.Undo), "Undo", "mdi6.undo"),
                (self.redo_act, redo_keys, "Redo", "mdi6.redo")):
            act.setShortcuts(keys)
            act.setProperty(SHORTCUT_NAME, name)  # its text names the last change
            act.setIcon(icon(icon_name))
        self.addActions([self.undo_act, self.redo_act])
        self.add_act = a("&Add prompt to stack", self.add_draft_to_stack, None,
                         "mdi6.playlist-plus", "Keep the prompt's edit in the stack")
        self.add_act.setShortcuts(list(ADD_TO_STACK_KEYS))
        self.delete_act = a("&Delete edit", self.stack_panel.delete_selected, SK.Delete)
        self.rename_act = a("Re&name edit", self.stack_panel.rename_selected, "F2")
        for act in (self.delete_act, self.rename_act):  # greyed out with nothing selected
            act.setEnabled(self.stack_panel.selected_id() is not None)
            self.stack_panel.has_selection.connect(act.setEnabled)
        self.next_seed_act = a("&Next seed", lambda: self.source_panel.step_seed(+1), "PgDown")
        self.prev_seed_act = a("&Previous seed", lambda: self.source_panel.step_seed(-1),
                               "PgUp")
        self.random_seed_act = a("&Random seed", self.random_seed, "R")
        self.fit_act = a("&Fit to window", lambda: self.canvas.set_zoom(None), "Ctrl+0",
                         "mdi6.fit-to-screen-outline")
        self.actual_size_act = a("&Actual pixels (100 %)", lambda: self.canvas.set_zoom(1.0),
                                 "Ctrl+1")
        self.zoom_in_act = a("Zoom &in", self.canvas.zoom_in, SK.ZoomIn, "mdi6.magnify-plus")
        # Ctrl+= too: "+" needs Shift on many keyboards
        self.zoom_in_act.setShortcuts([*QKeySequence.keyBindings(SK.ZoomIn),
                                       QKeySequence("Ctrl+=")])
        self.zoom_out_act = a("Zoom &out", self.canvas.zoom_out, SK.ZoomOut,
                              "mdi6.magnify-minus")
        self.split_act = a("&Before/after split", self._toggle_split, "S",
                           "mdi6.compare-horizontal",
                           "Show the unedited image left of a movable line", checkable=True)
        self.models_act = a("Model &packs…", self.show_models_dialog, "Ctrl+M",
                            "mdi6.package-variant", "Download or import models, choose a pack")
        self.precompute_act = a("Pre&compute directions", self.start_precompute, None, None,
                                "Compute the channel relevance that prompt edits need")
        self.import_styleclip_act = a(
            "&Import StyleCLIP directions (fs3.npy)…", lambda: self.styleclip_import.start(),
            None, None, "Use the channel relevance the official StyleCLIP code computed for "
            "this generator (no precompute)")
        self.shortcuts_act = a("&Keyboard shortcuts", lambda: show_shortcuts(self), SK.HelpContents)
        self.about_act = a("&About Latent Atelier", self.show_about)

        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        file_menu.addActions([self.open_generator_act, self.open_image_act,
                              self.open_latent_act, self.open_session_act])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.setToolTipsVisible(True)  # each file's whole path (off by default)
        file_menu.addSeparator()
        file_menu.addActions([self.save_session_act, self.save_session_as_act,
                              self.export_act])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_act)
        edit_menu = mb.addMenu("&Edit")
        edit_menu.addActions([self.undo_act, self.redo_act])
        edit_menu.addSeparator()
        edit_menu.addActions([self.copy_image_act, self.copy_recipe_act, self.paste_act])
        edit_menu.addSeparator()
        edit_menu.addActions([self.add_act, self.rename_act, self.delete_act])
        source_menu = mb.addMenu("&Source")
        source_menu.addActions([self.next_seed_act, self.prev_seed_act, self.random_seed_act])
        view_menu = mb.addMenu("&View")
        view_menu.addActions([self.fit_act, self.actual_size_act, self.zoom_in_act,
                              self.zoom_out_act])
        view_menu.addSeparator()
        view_menu.addAction(self.split_act)
        compare_hint = QAction("Hold \\ to compare with the original", self)
        compare_hint.setEnabled(False)
        view_menu.addAction(compare_hint)
        view_menu.addSeparator()
        theme_menu = view_menu.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        for name in THEMES:
            act = QAction(f"&{name.capitalize()}", self, checkable=True)
            act.setData(name)
            act.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            self.theme_group.addAction(act)
            theme_menu.addAction(act)
        self._build_device_menu(view_menu.addMenu("&Device"))
        panels_menu = view_menu.addMenu("&Panels")
        for dock in self._panel_docks():
            panels_menu.addAction(self._panel_action(dock))
        panels_menu.addSeparator()
        panels_menu.addActions([
            a("&Reset layout", self.reset_layout, None, None,
              "Put every panel back where it was at first, in view"),
            a("&Next panel", lambda: focus_next_area(self._focus_areas(), +1), "F6", None,
              "Move the keyboard focus to the next panel (or the picture)"),
            a("Pre&vious panel", lambda: focus_next_area(self._focus_areas(), -1),
              "Shift+F6", None, "Move the keyboard focus to the previous panel")])
        self.models_menu = ModelsMenu(self.jobs, self, dialog_action=self.models_act)
        self.models_menu.pack_chosen.connect(self._on_pack_chosen)
        # rebuilt each time it opens (after its own rebuild): our pack actions at the end
        self.models_menu.aboutToShow.connect(
            lambda: (self.models_menu.addSeparator(), self.models_menu.addActions(
                [self.precompute_act, self.import_styleclip_act])))
        mb.addMenu(self.models_menu)
        help_menu = mb.addMenu("&Help")
        help_menu.addActions([self.shortcuts_act, self.about_act])

        tb = QToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.addActions([self.open_generator_act, self.save_session_act, self.export_act])
        tb.addSeparator()
        tb.addActions([self.undo_act, self.redo_act, self.add_act])
        tb.addSeparator()
        tb.addActions([self.fit_act, self.zoom_in_act, self.zoom_out_act, self.split_act])
        self.addToolBar(tb)
        self.toolbar = tb
        self._fit_icons()

    def _fit_icons(self) -> None:
        """Toolbar icons as large as the text beside them: 16 px under a 14 pt font were
        specks (they are drawn from vector glyphs, so any size is sharp)."""
        side = max(self.style().pixelMetric(QStyle.PixelMetric.PM_ToolBarIconSize),
                   round(1.4 * self.fontMetrics().height()))
        self.toolbar.setIconSize(QSize(side, side))

    def _build_device_menu(self, menu) -> None:
        """Auto, the CPU and each CUDA device; the choice is remembered (set_device)."""
        self.device_group = QActionGroup(self)
        for choice, label in device_choices():
            act = QAction(_device_item_text(choice, label), self, checkable=True)
            act.setData(choice)
            act.setChecked(choice == self._device_choice)
            act.triggered.connect(lambda _c=False, c=choice: self.set_device(c))
            self.device_group.addAction(act)
            menu.addAction(act)

    def _build_status_bar(self) -> None:
        self.status_device = QLabel(f"device: {self.renderer.device}")
        # cut with "…" in a narrow window, its whole text in the tooltip (a long file name
        # was cut off mid-word); it shrinks as a label does, not before the message area
        self.status_model = ElidedLabel("no model")
        self.status_model.setSizePolicy(QSizePolicy.Policy.Preferred,
                                        QSizePolicy.Policy.Preferred)
        self.status_zoom = QLabel("zoom: fit")
        self.status_time = QLabel("")
        self.canvas.zoom_changed.connect(lambda zoom: self.status_zoom.setText(f"zoom: {zoom}"))
        for w in (self.status_model, self.status_device, self.status_zoom, self.status_time):
            w.setContentsMargins(6, 0, 6, 0)  # the fields ran together, one space apart
            self.statusBar().addPermanentWidget(w)
        # as wide as their widest usual text from the start: the time changes on every
        # frame of a drag, and each change of its width moved the fields beside it
        for w, widest in ((self.status_zoom, f"zoom: {ZOOM_STEPS[-1] * 100:.0f} %"),
                          (self.status_time, f"9999 ms (preview) · {RENDERING_TEXT}")):
            shown = w.text()
            w.setText(widest)
            w.setMinimumWidth(w.sizeHint().width())
            w.setText(shown)

    # ================================================================= document changes
    def undo(self) -> None:
        # a toolbar click leaves the focus in the box: typing still in its pause was
        # pushed inside or after the undo, and the history went wrong
        self._flush_input()
        self.document.undo_stack.undo()

    def redo(self) -> None:
        self._flush_input()
        self.document.undo_stack.redo()

    def _flush_input(self) -> None:
        """What the boxes show becomes the document before it is read, saved or its history
        moves: a prompt within its typing pause, a number typed but not yet entered (the
        number boxes apply a value on Enter or when left)."""
        self.prompt_panel.finish_typing()
        box = QApplication.focusWidget()
        if box is not None and not isinstance(box, QAbstractSpinBox):
            box = box.parentWidget()  # the focus may be in a number box's own line edit
        if isinstance(box, QAbstractSpinBox) and self.isAncestorOf(box):  # not a dialog's
            box.interpretText()
            self._end_interaction()  # the typed number is a step of its own

    def _change(self, state: EditorState, text: str, merge_key=None) -> None:
        self._interactive = merge_key is not None
        self.document.change(state, text, merge_key)

    def _end_interaction(self) -> None:
        self.document.end_merge()
        if self._interactive:  # the hand let go: the settled, full-resolution frame
            self._interactive = False
            self.request_render()

    def _set_seed(self, seed: int) -> None:
        src = self.document.state.session.source
        source = Source(kind="seed", seed=seed, psi=src.psi)
        self._change(self._with_source(source), "Change seed", "seed")

    def _set_psi(self, psi: float) -> None:
        src = self.document.state.session.source
        self._change(self._with_source(dataclasses.replace(src, psi=psi)), "Change ψ", "psi")

    def _keeping_seed(self, source: Source) -> Source:
        """A latent source keeps the seed and ψ shown beside it: the seed buttons then step
        on from the user's seed, at the pack's ψ (they went to seed 1 at ψ 0.7)."""
        shown = self.document.state.session.source
        return dataclasses.replace(source, seed=shown.seed, psi=shown.psi)

    def _with_source(self, source: Source) -> EditorState:
        state = self.document.state
        return state.with_session(state.session.with_source(source))

    def random_seed(self) -> None:
        self._set_seed(random.randrange(0, MAX_SEED))
        self._end_interaction()  # one step, drawn in full (as the seed buttons' steps)

    def _edit_defaults(self) -> EditDefaults:
        """How a new prompt starts on the open pack: its way, less the gate where it has
        no co-variation to gate with (every render failed, asking for a precompute that
        takes days on a CPU)."""
        if self.pack is None:
            return EditDefaults()
        defaults = self.pack.edit_defaults
        # (while the CLIP loads the co-variation is not read yet: only the demo gates by
        # default, and its co-variation ships with it)
        return defaults if self.pack.covariation is not None or self.pack.clip_pending \
            else dataclasses.replace(defaults, gate=False)

    def _on_edit_changed(self, edit_id: str, changes: dict, text: str, merge_key) -> None:
        state = self.document.state
        new_target = changes.get("params", {}).get("target")
        if edit_id == state.draft.id and state.draft.strength == 0 and new_target \
                and new_target != state.draft.params.get("target"):
            # a new prompt shows at once, at the pack's default strength (as in the CLI);
            # other changes (the gate, β) leave a prompt the user set to 0 at 0
            changes = {**changes, "strength": self._edit_defaults().alpha}
        self._change_edit(edit_id, changes, text, merge_key)

    def _change_edit(self, edit_id: str, changes: dict, text: str, merge_key) -> None:
        try:
            state = self.document.state.update(edit_id, **changes)
        except KeyError:  # the edit was removed meanwhile (e.g. undo during a drag)
            return
        self._change(state, text, merge_key)

    def add_draft_to_stack(self) -> None:
        # what is in the boxes now (Ctrl+Enter right after typing came before the pause
        # that applies it: the prompt was missed, or added half-typed)
        self._flush_input()
        state = self.document.state
        if self._tuning_id is not None:
            # the panel shows an edit of the stack; the live prompt it hides is not added
            self.statusBar().showMessage("This edit is in the stack already: New prompt "
                                         "starts another", 5000)
            return
        if not str(state.draft.params.get("target", "")).strip():
            self.statusBar().showMessage("Write a target prompt first", 4000)
            return
        if state.draft.strength == 0:
            self.statusBar().showMessage("At strength 0 the edit changes nothing: set α "
                                         "first (this prompt may be in the stack already)",
                                         5000)
            return
        if self._stack_full():
            return
        self._tune(None)
        self._change(state.commit_draft(), "Add edit")
        self.document.end_merge()
        target = self.prompt_panel.target
        if target.hasFocus():  # the next prompt typed replaces the one added, not runs on
            target.selectAll()

    def _add_edit(self, edit: Edit, text: str) -> None:
        """Add a finished edit (a discovered direction) to the top of the stack."""
        if self._stack_full():
            return
        state = self.document.state
        self._change(state.with_session(state.session.add_edit(edit)), text)
        self.document.end_merge()
        self.statusBar().showMessage(f"{edit.title}: added at strength {edit.strength:g}; "
                                     "its slider is in the edit stack", 5000)

    def _stack_full(self) -> bool:
        """Whether the stack holds as many edits as a session file may (and says so):
        one more would make a file that no Latent Atelier opens."""
        if len(self.document.state.session.edits) < MAX_STACK:
            return False
        self.statusBar().showMessage(f"The edit stack holds at most {MAX_STACK:,} edits: "
                                     "delete some first", 8000)
        return True

    def remove_edit(self, edit_id: str) -> None:
        self._flush_input()  # typing into the edit is a step before its delete, as Add has
        state = self.document.state
        if self._selected_id == edit_id:
            self._selected_id = None
            self._deleted_while_tuned.add(edit_id)
        self._change(state.with_session(state.session.remove_edit(edit_id)), "Delete edit")

    def move_edit(self, edit_id: str, index: int) -> None:
        self._flush_input()
        state = self.document.state
        self._change(state.with_session(state.session.move_edit(edit_id, index)), "Move edit")

    def _tune(self, edit_id: str | None) -> None:
        """Select a stack edit, and load it into the prompt panel if it has a prompt (None:
        back to the new prompt)."""
        self._selected_id = edit_id
        # the user moved on: an edit deleted while tuned earlier no longer takes the
        # selection when an undo brings it back
        self._deleted_while_tuned.clear()
        # the stack shows it too: after New prompt the row stayed selected, and a click on
        # it changed nothing
        self.stack_panel.show_edits(self.document.state.session.edits, edit_id)
        self._show_prompt(self.document.state)

    @property
    def _tuning_id(self) -> str | None:
        """The stack edit in the prompt panel: the selected one when it is a prompt edit.
        A discovered direction stays selected (its row's buttons work) but is tuned by its
        stack slider, and the prompt panel keeps the new prompt."""
        try:
            edit = self.document.state.session.edit(self._selected_id)
        except KeyError:
            return None
        return self._selected_id if edit.kind == "global" else None

    @Slot(object)
    def _on_state_changed(self, state: EditorState) -> None:
        session = state.session
        ids = frozenset(e.id for e in session.edits)
        back = (ids - self._shown_edit_ids) & self._deleted_while_tuned
        if back:  # undo of a delete: select the edit again, as it was
            self._selected_id = next(e.id for e in session.edits if e.id in back)
        self._shown_edit_ids = ids
        if self._selected_id is not None and self._selected_id not in ids:
            self._selected_id = None  # undo removed the selected edit
        self.source_panel.show_source(session.source)
        if session.source.kind == "seed":
            self._seed_shown = (session.source, self.pack is not None
                                and self.pack.model.z_for_seed is not None)
        self.stack_panel.show_edits(session.edits, self._selected_id)
        self._show_prompt(state)
        self.request_render(interactive=self._interactive)

    def _show_prompt(self, state: EditorState) -> None:
        tuned = self._tuning_id is not None
        # the prompt typed and not added is still drawn while a stack edit is tuned: said,
        # or a picture with every stack edit off would differ from the plain one unexplained
        self.prompt_panel.show_edit(self._prompt_edit(state), bound=tuned,
                                    also_drawn=state.draft if tuned and state.draft_drawn
                                    else None)
        self._show_prompt_status()

    def _prompt_edit(self, state: EditorState) -> Edit:
        """The edit the prompt panel shows: the stack edit being tuned, or the draft."""
        tuning = self._tuning_id
        return state.session.edit(tuning) if tuning is not None else state.draft

    def _show_prompt_status(self) -> None:
        """The prompt panel's report: the picture's on the edit it shows when that picture
        was drawn from the edit as it is now; otherwise that it is updating, with the
        prompt's notes, which need no picture."""
        if self.last_result is None:
            return
        state = self.document.state
        edit = self._prompt_edit(state)
        if not self.prompt_panel.text_edits_available:
            # its notice says why (no CLIP, no directions): the engine's error on the
            # prompt carried over from the last model said it twice more, in other words
            self.prompt_panel.show_status(None)
            self._say_prompt_error(None)
        elif _status_key(self._drawn, edit.id) == _status_key(state.rendered_session(),
                                                              edit.id):
            status = self.last_result.edit_status.get(edit.id)
            self.prompt_panel.show_status(status)
            self._say_prompt_error(status.error if status is not None else None)
        else:
            self.prompt_panel.show_updating(self._prompt_notes(edit))

    def _say_prompt_error(self, error: str | None) -> None:
        """Why the prompt panel's edit is not drawn, in the status bar as well, once: in a
        small window the panel's line is scrolled out of view, and the edit just vanished."""
        if error and error != self._said_error:
            self.statusBar().showMessage(f"⚠ {error}", 10000)
        self._said_error = error

    def _prompt_notes(self, edit: Edit) -> list[str]:
        """What is wrong with a text edit's prompts (words the CLIP never learned...), as
        the engine says it, known at once: a slow model drew the next picture seconds
        later, and the last prompt's notes stood under the new one meanwhile."""
        if self._notes_context is None or not edit.enabled:
            return []
        return self._notes_context.edit_prompt_warnings(edit)

    # ================================================================= rendering
    def current_session(self) -> Session:
        """What the canvas shows, with the model identities a recipe needs."""
        session = self.document.state.rendered_session()
        if self.pack is not None:
            session = session.with_models(*self.pack.identities())
        return session

    def request_render(self, interactive: bool = False) -> RenderRequest | None:
        if self.pack is None:
            return None
        req = RenderRequest(self.current_session(), interactive=interactive,
                            compare=self.canvas.comparing, generation=self._generation)
        self.worker.submit(req)
        self.last_request = req
        self.status_time.setText(RENDERING_TEXT)
        return req

    @Slot(object)
    def _on_rendered(self, result: RenderResult) -> None:
        # results from an older model or older than what is shown are dropped
        if result.generation != self._generation or result.seq < self._shown_seq:
            return
        if not result.ok:
            # the picture shown is the last one drawn: said for as long as it is shown,
            # not only in the 8 s message (the field was blank, as before any picture)
            self.status_time.setText(NOT_DRAWN_TEXT)
            self.status_time.setToolTip(
                f"The last change could not be drawn: {result.error}"
                + ("\nThe picture shown is from before it." if self._shown_seq else ""))
            self.statusBar().showMessage(f"render failed: {result.error}", 8000)
            self._copy_pending = None  # the message says why nothing was copied
            if self._shown_seq == 0:  # nothing of this model drawn yet: say why, not "Loading"
                # and not over the last model's picture, which passed for this one's
                self._shown_before = self._before_image = None
                self.canvas.show_message(f"This picture cannot be drawn:\n{result.error}")
            return
        self._shown_seq = result.seq
        self.last_result = result
        self._drawn = result.session
        # the renderer hands back the same cached "before" array while only edits change:
        # wrap it once, not on every frame of a drag. A result without one drops the old:
        # it may show another source, and would be painted as this one's original
        if result.before is not self._shown_before:
            self._shown_before = result.before
            self._before_image = (qimage_from_array(result.before)
                                  if result.before is not None else None)
        image = qimage_from_array(result.image)
        size = None
        if result.preview and self.pack is not None:  # as large as the full one to come
            full = self.pack.model.resolution / max(image.width(), image.height())
            size = QSize(round(image.width() * full), round(image.height() * full))
        self.canvas.set_image(image, self._before_image, size=size)
        self._show_prompt_status()
        self.stack_panel.show_status(result.edit_status)
        self._show_render_time(result)
        self._copy_if_settled()
        if self._offer_when_drawn and not result.preview:
            self._offer_when_drawn = False
            # with the window as context: dropped if it is deleted first (a box on a
            # deleted parent crashed the test run)
            QTimer.singleShot(0, self, self._offer_precompute)

    def _show_render_time(self, result: RenderResult) -> None:
        """How long the picture took, and whether another is on its way (after a preview,
        the full resolution; a newer request): a slow model said nothing meanwhile."""
        kind = "preview" if result.preview else "full"
        text = f"{result.timings.get('total_ms', 0):.0f} ms ({kind})"
        if result.preview or result.seq < self.last_request.seq:
            text += f" · {RENDERING_TEXT}"
        self.status_time.setText(text)
        self.status_time.setToolTip("")

    # ================================================================= clipboard
    def copy_image(self) -> None:
        """The picture of the document as it is now, at full resolution, with its recipe;
        copied once it is drawn (a drag's preview, or a change still rendering, is not)."""
        self._copy_when_drawn("image", "Copy image")

    def copy_recipe(self) -> None:
        """The recipe of the picture as it is now, as JSON text: to paste into a message or
        a note, and back into this window (Paste) to draw the picture again."""
        self._copy_when_drawn("recipe", "Copy recipe")

    def _copy_when_drawn(self, what: str, title: str) -> None:
        if self.pack is None:
            QMessageBox.information(self, title, "Open a generator first.")
            return
        self._flush_input()  # the picture of what the boxes say
        self._copy_pending = what
        if not self._copy_if_settled():
            self.statusBar().showMessage(f"copying the {what} once the picture is drawn…",
                                         4000)

    def _copy_if_settled(self) -> bool:
        result, request = self.last_result, self.last_request
        if (self._copy_pending is None or result is None or request is None
                or result.seq != request.seq or result.preview):
            return False
        what, self._copy_pending = self._copy_pending, None
        # edits that could not be applied are off in the recipe, as on the canvas
        session, _ = disable_failing_edits(result.session, result.edit_status)
        recipe = file_recipe(session, platform=result.platform)
        if what == "recipe":
            QApplication.clipboard().setText(json.dumps(recipe, indent=2))
            self.statusBar().showMessage("copied the picture's recipe as text", 4000)
            return True
        put_picture(qimage_from_array(result.image), json.dumps(recipe))
        h, w = result.image.shape[:2]
        self.statusBar().showMessage(f"copied the picture ({w}x{h}) with its recipe", 4000)
        return True

    def paste(self) -> None:
        pasted = read_pasted(QApplication.clipboard().mimeData())
        if pasted is None:
            self.statusBar().showMessage(
                "The clipboard holds no picture, recipe or file to open", 4000)
        elif pasted.recipe is not None:
            self._apply_recipe_text(pasted.recipe, "the pasted recipe")
        elif pasted.paths:
            self.open_paths(pasted.paths)
        elif self.pack is None and self._loading is None:  # before writing it anywhere
            QMessageBox.information(self, "Paste", "Open a generator first.")
        else:
            try:
                path = save_pasted_image(pasted.image)
            except PasteError as e:
                QMessageBox.warning(self, "Cannot paste the picture", str(e))
                return
            # numbered from the second: two inversions in the Jobs panel (and two sources
            # in the history) read "pasted picture" alike
            self._pasted_pictures += 1
            name = "pasted picture" + (f" {self._pasted_pictures}"
                                       if self._pasted_pictures > 1 else "")

            # an export's bytes keep its recipe: replayed or inverted, as Open image asks;
            # with the model loading (the first, at start), as a dropped picture does
            self._once_loaded(
                lambda: self._open_image_or_recipe(str(path), as_picture=True, name=name),
                "The pasted picture")

    def _toggle_split(self, on: bool) -> None:
        self.canvas.set_split(on)
        self.request_render()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        # Holding "\" shows the original wherever the focus is (the edit-stack list's
        # type-ahead and the seed box took the key before), except in a text box.
        # A release always ends the hold, wherever the focus went meanwhile.
        if event.type() == QEvent.Type.LayoutRequest and \
                any(watched is a.widget() for a in self._form_areas.values()):
            self._form_growth.start()  # once the layout is done: its new size hint
        if (event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
                and event.key() == Qt.Key.Key_Backslash and not event.isAutoRepeat()):
            if event.type() == QEvent.Type.KeyRelease and self.canvas.holding_compare:
                self.canvas.set_holding_compare(False)
                return True
            # in a panel floated off the window too (a window of its own)
            if (event.type() == QEvent.Type.KeyPress
                    and QApplication.activeWindow() in (self, *self._panel_docks())
                    and not isinstance(QApplication.focusWidget(), QLineEdit)):
                self.canvas.set_holding_compare(True)
                self.request_render()  # the "before" image comes with the render
                return True
        return super().eventFilter(watched, event)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # a "\" released in another window never reaches this one: stop holding on leaving
        if event.type() == QEvent.Type.ActivationChange and not self.isActiveWindow():
            self.canvas.set_holding_compare(False)
        if event.type() == QEvent.Type.FontChange and hasattr(self, "toolbar"):
            self._fit_icons()
        super().changeEvent(event)

    # ================================================================= models
    def open_generator_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open generator", self._last_dir(),
                                              GENERATOR_FILTER)
        if path:
            self.open_generator(path)

    def open_generator(self, path: str, clip: ClipSource | None = None, **pack_options) -> None:
        """Load a generator with its CLIP on the worker (default: the one it was last used
        with, else the demo CLIP for the demo generator and ViT-B/32 otherwise, its
        installed file first); pack_options go to open_pack."""
        self._fallback_generator = None  # what the user opens now comes before the demo
        # the demo's file is "generator.safetensors": its name says nothing
        what = "the demo pack" if _is_demo_generator(path) else Path(path).name
        self.statusBar().showMessage(f"loading {what} …")
        self.canvas.set_message(f"Loading {what} …")
        self._loading, self._failed_load = (path, clip, pack_options), None
        self.models_menu.set_loading(path)
        # by default with the CLIP it was last used with (its precompute resumes with it)
        self.worker.load_model(path, clip or remembered_clip(path), self._device,
                               **pack_options)

    # ================================================================= device
    def _start_device(self, asked: str | None):
        """(choice, device) to start on: `asked`, else the one chosen last. One remembered
        that is gone (a GPU taken out, a hand-edited setting) gives way to auto."""
        choice = asked or settings_values.text(QSettings(), DEVICE_KEY, "auto")
        try:
            choice, device, self._start_note = resolve_device(choice)
        except AtelierError as e:
            why = str(e)  # a typed --device: the command line's words
            if not asked and choice not in dict(device_choices()):
                # the menu's choice from another computer, or a hand-edited setting: no
                # advice on what to type
                why = f"View ▸ Device was {choice[:40]!r} last time, which this computer " \
                      "does not have"
            choice, device, note = resolve_device("auto")
            self._start_note = f"{why}; {note or f'rendering on {device}'}"
        return choice, device

    def set_device(self, choice: str) -> None:
        """Render on `choice` (auto, cpu, cuda:N) from now on and at the next starts: the
        model open reopens there, the document and its history stay."""
        try:
            choice, device, self._start_note = resolve_device(choice)
        except AtelierError as e:  # gone since the menu was built
            self.statusBar().showMessage(str(e), 8000)
            self._check_device_action(self._device_choice)
            return
        self._check_device_action(choice)
        before = self._device_before or (self._device_choice, self._device)
        self._device_choice, self._device = choice, device
        # the model asked for last (not the one it replaces), the one open, or the one that
        # could not be opened on the device before: the choice is kept once it opens there
        reopen = self._loading or self._failed_load
        if reopen is None and self.pack is not None and device != self.renderer.device:
            reopen = self._opening(self.pack)
        if reopen is not None:
            self._device_before = before
            path, clip, options = reopen
            self.open_generator(path, clip, **options)
        else:  # nothing to move: the next model opens there
            self._device_before = None
            QSettings().setValue(DEVICE_KEY, choice)
            self.status_device.setText(f"device: {device}")
            self._tell_start_note()

    def _device_label(self, choice: str) -> str:
        """The menu's name of `choice` (CPU, CUDA 0: ...), without its shortcut mark."""
        for act in self.device_group.actions():
            if act.data() == choice:
                return act.text().replace("&", "")
        return choice

    def _check_device_action(self, choice: str) -> None:
        for act in self.device_group.actions():
            act.setChecked(act.data() == choice)

    def _tell_start_note(self, prefix: str = "") -> bool:
        """Once: why the device is not the GPU asked for (auto found it unusable), and
        that settings cannot be saved."""
        note, self._start_note = self._start_note, None
        if note:
            self.statusBar().showMessage(prefix + note, 15000)
        return bool(note)

    def show_models_dialog(self) -> None:
        self.models_menu.open_dialog()

    def _on_pack_chosen(self, generator_path: str, clip_spec: dict | None) -> None:
        self.open_generator(generator_path, ClipSource(**clip_spec) if clip_spec else None)

    @Slot(object)
    def _on_model_loaded(self, pack: OpenPack) -> None:
        self._fallback_generator = None
        self._loading = None
        self.models_menu.set_loading(None)
        if self._device_before is not None:  # the device chosen works: remembered
            self._device_before = None
            QSettings().setValue(DEVICE_KEY, self._device_choice)
        self.status_device.setText(f"device: {self.renderer.device}")
        old = self.pack
        first = old is None or pack.model.path != old.model.path
        # a session waiting for this generator replaces the document: nothing to keep
        after = self._session_after_load
        awaited = after is not None and after[1].content_hash == pack.model.content_hash
        if not awaited:
            self._session_after_load = None
        if first and not awaited and not self._may_drop_latent(old, pack):
            self._reopen(old)  # the latent stays, with the generator it was made for
            return
        self.pack = pack
        if old is None or not old.clip_pending:  # the pack the CLIP's will be compared to
            self._pack_before = old
        self._generation += 1
        self._shown_seq = 0
        self._drawn = None  # the old model's pictures are never shown again
        self._offer_when_drawn = False
        self._notes_context = pack.context()  # its own: a context's caches are per thread
        self._copy_pending = None  # the picture asked for is gone with its model
        info = pack.model
        # seen where no picture is shown yet: a 1024 px model's first one takes seconds on
        # a CPU, which "Loading …" misdescribed once the model was there
        self.canvas.set_message(
            f"Drawing {'the demo pack' if _is_demo_generator(info.path) else info.name} …")
        told = self._tell_start_note(f"{info.name} loaded; ")
        if not told and pack is not old:  # a refresh after a job would hide its message
            self.statusBar().showMessage(f"{info.name} loaded", 4000)
        if not _bundled(info.path):  # loaded at every start: it would push the user's
            self._remember_recent(info.path)  # files and last folder out
        self.models_menu.set_current(info.path)
        settings_values.set_path(QSettings(), "model/last_path", info.path)
        self.prompt_panel.set_placeholders(pack.neutral_prompt())
        self._take_clip(pack, old)
        if first:  # a new model starts a new history, with its own defaults
            state = self.document.state
            source = self._source_for_new_model(state.session.source)
            if info.z_for_seed is not None or (old is not None
                                               and old.model.z_for_seed is not None):
                # into or out of the demo world, whose ψ is forced: the model's own, as
                # `atelier edit --seed` uses it, so the same seed is the same picture;
                # at the start, the demo's face as the user left it (the seed came back
                # at another ψ: another face)
                psi = info.seed_psi
                if old is None and info.z_for_seed is not None:
                    psi = settings_values.number(QSettings(), "source/demo_psi", psi,
                                                 *PSI_RANGE)
                source = dataclasses.replace(source, psi=psi)
            draft = draft_for_pack(state.draft, pack.neutral_prompt(), self._edit_defaults(),
                                   old.neutral_prompt() if old is not None else DEFAULT_NEUTRAL)
            # the first model only fills in the untitled document's defaults; a later one
            # that changes a saved document leaves it unsaved (see Document.reset), and so
            # does any model that replaced the document's latent with a seed
            self.document.reset(EditorState(state.session.with_source(source), draft),
                                keep_modified=old is not None or self.document.modified
                                or source.kind != state.session.source.kind)
        else:
            self.request_render()
        if not pack.clip_pending:  # else once it is there: a session's CLIP is checked
            self._open_what_waited(pack)

    def _open_what_waited(self, pack: OpenPack) -> None:
        """Open the session waiting for this generator, and the files opened meanwhile."""
        after = self._session_after_load
        if after is not None and after[1].content_hash == pack.model.content_hash:
            QTimer.singleShot(0, self, lambda: self.open_session(after[0]))
        self._open_waiting_files()

    @Slot(object)
    def _on_clip_loaded(self, pack: OpenPack) -> None:
        """The open model's CLIP and directions came (model_loaded brought the generator
        alone): the picture stays, drawn by the same generator."""
        old = self.pack
        if old is None or old.model is not pack.model or not old.clip_pending:
            return  # another model was opened meanwhile: this CLIP is not for it
        self.pack = pack
        self._notes_context = pack.context()
        self._take_clip(pack, self._pack_before)
        if self.current_session().needs_clip:  # drawn while held for the CLIP, but asked
            self.request_render()  # for without it: the recipe names it now
        if self._loading is None:  # else what waits, waits for the model asked for since
            self._open_what_waited(pack)

    def _take_clip(self, pack: OpenPack, old: OpenPack | None) -> None:
        """What the window does with the pack's CLIP and directions, or says while they
        load (clip_pending: the prompt panel stays on, a prompt typed waits for them)."""
        info = pack.model
        imported = pack.data.imported_from if pack.data is not None else None
        other = pack.other_settings()  # a quick try's pack, found for want of the usual one
        self.status_model.setText(f"{info.name} · {info.resolution} px"
                                  + (f" · directions from {imported}" if imported else "")
                                  + (f" · directions with {other}" if other else ""))
        # the file and its format ("atelier", "rosinality") are for who asks
        self.status_model.set_tip(f"{info.path}\n{info.source_format} checkpoint"
                                  + (f"\n{pack.settings_note()}" if other else ""))
        if pack.clip is not None and pack.clip_source is not None:
            REMEMBERED_CLIPS.put(info.path, dataclasses.asdict(pack.clip_source))
        if pack.clip_pending:
            self.prompt_panel.set_text_edits_available(True, "Loading CLIP …")
        elif pack.clip is None:
            self.prompt_panel.set_text_edits_available(False, _no_clip_text(pack))
            if self._forget_clip_that_failed(pack):  # after this slot: a load of its own
                QTimer.singleShot(0, self, lambda: self._open_with_default_clip(pack))
        elif not pack.has_directions:
            self.prompt_panel.set_text_edits_available(
                False, "Prompt edits need this pack's directions: Models ▸ Precompute "
                       "directions (or Import StyleCLIP directions).")
        else:
            self.prompt_panel.set_text_edits_available(True)
        self.prompt_panel.set_suggestions(pack.suggestions() if pack.clip is not None else [])
        self.discovery.pack_changed(pack)
        # a new generator, or the same one with another CLIP: offer what it lacks, once
        # its picture is drawn (the CLIP may come after it)
        if pack.clip is not None and not pack.has_directions and not same_pack(old, pack) \
                and self.jobs.find(self._precompute_key(pack)) is None:
            drawn = self.last_result
            if drawn is not None and drawn.generation == self._generation \
                    and not drawn.preview:
                QTimer.singleShot(0, self, self._offer_precompute)
            else:
                self._offer_when_drawn = True

    def _open_waiting_files(self) -> None:
        waiting, self._open_when_loaded = self._open_when_loaded, []
        for action in waiting:  # after this slot: opening one may ask the user a question
            QTimer.singleShot(0, self, action)

    def _source_for_new_model(self, source: Source) -> Source:
        """The source, kept where it fits the new generator; a latent made for another
        one (an inverted picture, an opened W+) would fail every render, so the new model
        starts from the seed instead, and says so."""
        if source.kind != "wplus":
            return source
        if _latent_fits(source, self.pack):  # a session opened with no model named its file
            return self._latent_taken_in(source, None)
        self.statusBar().showMessage(
            f"{_latent_name(source)} was made for another generator; {self.pack.name} "
            f"starts from seed {source.seed}", 10000)
        return Source(seed=source.seed, psi=source.psi)

    def _may_drop_latent(self, old: OpenPack | None, pack: OpenPack) -> bool:
        """Before a new model replaces the latent made for the open one with a seed (the
        history goes with it): offer to save it. False when the user cancels, or a save
        did not happen."""
        source = self.document.state.session.source
        if source.kind != "wplus" or _latent_fits(source, pack):
            return True
        # also with no model open before: a session opened then may hold a latent
        made_for = old.name if old is not None else "another generator"
        return self._offer_to_save(
            "Replace the latent?",
            f"{_latent_name(source)} was made for {made_for}; opening {pack.name} replaces "
            f"it with seed {source.seed}. Save the session first?")

    @staticmethod
    def _forget_clip_that_failed(pack: OpenPack) -> bool:
        """Whether the CLIP remembered for this generator was the one that failed to load
        (a file replaced since) where its default CLIP is another: it is forgotten (it was
        tried at every start, and the prompt panel sent the user to download one)."""
        path = pack.model.path
        tried = pack.clip_source
        if tried is None or remembered_clip(path) != tried or default_clip_source(path) == tried:
            return False
        REMEMBERED_CLIPS.forget(path)
        return True

    def _open_with_default_clip(self, pack: OpenPack) -> None:
        if self.pack is pack and self._loading is None:  # nothing else asked for since
            path, _, options = self._opening(pack)
            self.open_generator(path, default_clip_source(path), **options)

    def _reopen(self, pack: OpenPack) -> None:
        """Back to the generator of `pack` (on the worker the new one is in place)."""
        path, clip, options = self._opening(pack)
        self.open_generator(path, clip, **options)

    @staticmethod
    def _opening(pack: OpenPack) -> tuple[str, ClipSource | None, dict]:
        """What open_generator needs to open `pack` again: path, CLIP, pack options."""
        return pack.model.path, pack.clip_source, {"relevance_config": pack.relevance_config,
                                                   "stats_samples": pack.stats_samples}

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        failed, self._loading = self._loading, None
        self.models_menu.set_loading(None)
        if failed is None and self.pack is not None and self.pack.clip_pending:
            # the open model's CLIP failed to load (one that cannot be read comes as
            # clip_loaded): no prompt edits, nor "Loading CLIP …" for ever
            self.prompt_panel.set_text_edits_available(
                False, f"Prompt edits need a CLIP model: {message}")
            self._open_waiting_files()  # (a waiting session is said below)
        if self.pack is None:
            self._failed_load = failed
        if self._device_before is not None:  # the device chosen is not kept
            (choice, self._device), self._device_before = self._device_before, None
            message += (f"\n\nView ▸ Device is back to {self._device_label(choice)}"
                        f" ({self._device_label(self._device_choice)} was chosen).")
            self._device_choice = choice
            self._check_device_action(choice)
        if self._session_after_load is not None:  # the message below says why
            message += (f"\n\n{Path(self._session_after_load[0]).name} was not opened: "
                        "open it again to show it with the generator open.")
            self._session_after_load = None
        self.statusBar().showMessage("could not open the model", 5000)
        fallback, self._fallback_generator = self._fallback_generator, None
        if self.pack is None:
            self.canvas.set_message("No model loaded.\nFile ▸ Open generator… (Ctrl+O)")
        QMessageBox.warning(self, "Could not open the model", message)
        if self.pack is None and fallback is not None:  # the last model, at start
            self.open_generator(str(fallback))
        elif self.pack is None:  # no model to come: each says what it needs
            self._open_waiting_files()

    def _offer_precompute(self) -> None:
        from .models_dialog import offer_precompute

        pack, drawn = self.pack, self.last_result
        # a job started or directions found since the model opened: nothing to offer; nor
        # from a window closed since its picture came
        if self._closed or pack is None or pack.has_directions \
                or self.jobs.find(self._precompute_key(pack)):
            return
        estimate, seconds = "", None
        if drawn is not None and drawn.generation == self._generation and not drawn.preview:
            render_s = drawn.timings.get("total_ms", 0) / 1000
            seconds = pack.precompute_seconds(render_s)
            if seconds:
                estimate = (f"roughly {rough_duration(seconds)} on {self.renderer.device}, "
                            f"where a picture takes {render_s:.1f} s")
        if offer_precompute(self, pack.title, estimate,
                            suggest=seconds is None or seconds < LONG_PRECOMPUTE_S):
            self.start_precompute()

    @staticmethod
    def _precompute_key(pack: OpenPack) -> str:
        """One precompute per (generator, CLIP): each CLIP has its own directions."""
        clip = pack.clip.content_hash if pack.clip is not None else "-"
        return f"{PRECOMPUTE_JOB}{pack.model.content_hash}:{clip}"

    def start_precompute(self) -> None:
        pack = self.pack
        if pack is None or pack.clip is None:
            QMessageBox.information(self, "Precompute directions",
                                    "Open a model pack with a CLIP model first.")
            return
        imported = pack.data.imported_from if pack.data is not None else None
        # a pack made with other settings (a quick `atelier precompute --n-images 2`)
        other = pack.settings_note()
        if pack.has_directions and not (imported or other) and pack.covariation is not None:
            self.statusBar().showMessage("This pack's directions are already computed", 4000)
            return
        key = self._precompute_key(pack)
        if self.jobs.find(key) is not None:
            self.statusBar().showMessage(f"{pack.name}'s directions are being computed "
                                         "(see the Jobs panel)", 6000)
            self.jobs_dock.show()
            return
        # hours of work would be lost when the window closes: refused before, not after
        if (why := unwritable_reason(folder := cache_dir() / "packs")) is not None:
            show_warning(self, "Precompute directions",
                         f"{pack.name}'s directions could not be kept: {folder} cannot be "
                         f"written ({why}). Start the editor with {CACHE_ENV} set to a "
                         "folder you can write.")
            return
        replace = (f"{pack.name} uses directions imported from {imported}. Compute its "
                   "own, over every layer, instead?" if imported else
                   f"{pack.name} uses {other}. Compute them with the default settings "
                   "instead?" if other else None)
        # gated edits need the co-variation whatever made the directions: an imported
        # pack's could be had only by replacing its directions (hours)
        keep = ("\n\nNo keeps them and measures only the co-variation that gated edits "
                "need." if pack.covariation is None else "")
        if replace is not None and QMessageBox.question(
                self, "Precompute directions",
                f"{replace}\n\nIt runs in the background and can take hours on a CPU; the "
                f"ones there are used until it is done.{keep}",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes:
            self.jobs.submit(f"Precompute directions for {pack.title}",
                             lambda token: pack.precompute(cancel=token,
                                                           with_defaults=bool(other)),
                             key=key)
        elif pack.has_directions and pack.covariation is None:
            # computed before gated edits existed, imported, or kept as they are when asked
            self.jobs.submit(f"Measure channel co-variation for {pack.title}",
                             lambda token: pack.covariation_job(cancel=token), key=key)
        elif not pack.has_directions:
            self.jobs.submit(f"Precompute directions for {pack.title}",
                             lambda token: pack.precompute(cancel=token), key=key)

    def _on_job_ended(self, job) -> None:
        # finished, cancelled or failed: what was saved (the directions before a cancelled
        # co-variation, say) is read again, so the window offers what is there
        if job.key and job.key.startswith(PRECOMPUTE_JOB):
            self.worker.refresh_pack()

    def _on_job_failed(self, job, message: str) -> None:
        key = job.key or ""
        long_work = key.startswith((PRECOMPUTE_JOB, DISCOVERY_JOB))  # they keep progress
        text = failed_job_text(message, progress_kept=long_work)
        self.statusBar().showMessage(f"{job.title} failed: {text.splitlines()[0]}", 10000)
        box = None
        if key.startswith(EXPORT_JOB):
            # the user is waiting for a file: say plainly that there is none
            box = show_warning(self, "Export failed", text)  # not waited on: the job ends now
        elif long_work:  # minutes or hours of work ended: a status line is easily missed
            box = show_warning(self, f"{job.title} failed", text)
        if box is not None and job.details:  # what the line left out, one click away
            box.setDetailedText(job.details)

    def _on_job_finished(self, job, result) -> None:
        self.statusBar().showMessage(_finished_text(job.title, result), 6000)
        # a precompute's or discovery's result that could not be cached: usable now, but
        # computed again next time, which the user must know (a full disk, say)
        if save_error := getattr(result, "save_error", None):
            show_warning(self, f"{job.title}: not saved", save_error)
        if isinstance(result, ExportResult) and (notes := result.warnings()):
            show_warning(self, job.title, "\n\n".join(notes))

    # ================================================================= files
    def open_paths(self, paths: list[str]) -> None:
        """Dropped or passed files: a generator, a session/recipe, a latent or an image."""
        # each picture's crop dialog says which of those opened together it is for
        with self.inversion.numbered([p for p in paths if kind_of_file(p) == "image"]):
            for path in paths:
                self.open_path(path)

    def open_path(self, path: str) -> None:
        # absolute: a name given on the command line, kept as typed in Open recent, named
        # another file (or none) once the window's working folder was not the file's
        given, path = path, os.path.abspath(path)
        p = Path(path)
        if not p.is_file():  # deleted or moved since it was listed: Open recent forgets it
            listed = self._forget_recent(given) | self._forget_recent(path)
            QMessageBox.warning(self, "Cannot open",
                                f"{p.name} is not a file." if p.exists() else
                                f"{p.name} {'no longer exists' if listed else 'does not exist'}"
                                f" in {p.parent}.")
            return
        kind = kind_of_file(path)
        if kind in ("session", "image", "latent") and \
                self._wait_for_load(lambda: self.open_path(path), p.name):
            return
        if kind is None:
            QMessageBox.warning(self, "Cannot open", f"{p.name} is not a file.")
        elif kind == "session":
            self.open_session(path)
        elif kind == "image":
            self._open_image_or_recipe(path)
        elif kind == "latent" and p.suffix.lower() == ".npy" and \
                self._holds_styleclip_directions(path):
            self.styleclip_import.start(path)
        elif kind == "latent":
            self.open_latent(path)
        elif kind == "generator":
            self.open_generator(path)
        elif kind == "unreadable picture":
            QMessageBox.warning(self, "Cannot open the image",
                                f"{p.name}: this program cannot read "
                                f"{UNREADABLE_PICTURES[p.suffix.lower()]} pictures; save it "
                                "as PNG or JPEG first (most photo viewers can).")
        else:
            QMessageBox.warning(self, "Cannot open",
                                f"{p.name}: Latent Atelier opens generators (.pt, .pkl, "
                                ".safetensors), sessions (.json), latents (.npy, .pt, "
                                ".safetensors) and images.")

    def _wait_for_load(self, open_it: Callable[[], object], name: str) -> bool:
        """While a model loads, `open_it` waits to run with it; whether it waits. A picture
        was turned away ("Open a generator first") while the first one loaded, or inverted
        into the model on its way out, its result then dropped."""
        if self._loading is None:
            return False
        self._open_when_loaded.append(open_it)
        self.statusBar().showMessage(f"{name} opens once {Path(self._loading[0]).name} has "
                                     "loaded", 8000)
        return True

    def _once_loaded(self, open_it: Callable[[], object], name: str) -> None:
        """`open_it` now, or once the model that is loading is there (_wait_for_load)."""
        if not self._wait_for_load(open_it, name):
            open_it()

    def _holds_styleclip_directions(self, path: str) -> bool:
        # of any width: StyleCLIP's 512 on a pack with another CLIP (ViT-L/14's 768) was
        # "a latent of shape (5376, 512)"; the import says what is wrong (or that it needs
        # a CLIP)
        pack = self.pack
        return pack is not None and looks_like_fs3(path, pack.model.generator.style_specs, None)

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self._last_dir(),
                                              IMAGE_FILTER)
        if path:
            self._remember_dir(path)
            # with a model loading, as a dropped picture does: chosen in the dialog, it was
            # inverted into the model on its way out and the result dropped minutes later
            self._once_loaded(lambda: self._open_image_or_recipe(path, as_picture=True),
                              Path(path).name)

    def _open_image_or_recipe(self, path: str, as_picture: bool = False,
                              name: str | None = None) -> None:
        """An export of this program replays its recipe (asked first when the user chose
        to open it as a picture: its pixels may have been retouched since); any other
        picture, or one whose recipe cannot be used and the user says so, is inverted.
        `name`: what the picture is called (its file's name by default)."""
        name = name or Path(path).name
        try:
            recipe = read_recipe(path)
        except DamagedRecipeError as e:  # the pixels still open: they may be inverted
            if ask_invert_instead(self, name, f"{name} cannot be replayed: {e.why}."):
                self.inversion.start(path, name)
            return
        except AtelierError as e:
            QMessageBox.warning(self, "Cannot open the image", cannot_open_image_text(e, name))
            return
        if recipe is None:
            self.inversion.start(path, name)  # your own picture: crop, then invert it
            return
        how = ask_replay_or_invert(self, name) if as_picture else REPLAY
        if how == INVERT:
            self.inversion.start(path, name)
        elif how == REPLAY and self._apply_recipe_text(
                recipe, name, path,
                refused=lambda why: ask_invert_instead(self, name, why)
                and self.inversion.start(path, name)) and not as_picture:
            self.statusBar().showMessage(
                f"Replayed the recipe in {name} (File ▸ Open image… inverts its pixels "
                "instead)", 8000)

    def _use_inverted_source(self, source: Source, text: str) -> None:
        # the latent draws the picture with the fixed noise it was fitted with; a recipe
        # opened earlier may have left other noise (and its PSNR would not be this one's)
        state = self._with_source(self._keeping_seed(source))
        state = state.with_session(dataclasses.replace(state.session, noise_mode="const"))
        self._change(state, text)
        self.document.end_merge()

    def open_latent_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open latent or recipe", self._last_dir(),
                                              LATENT_FILTER)
        if not path:
            return
        self._remember_dir(path)

        def open_it() -> None:
            kind = kind_of_file(path)
            if kind == "session":
                self.open_session(path)
            elif kind == "image":
                self._open_image_or_recipe(path)
            else:  # asked for a latent: its reader says why a file is none
                self.open_latent(path)

        # with a model loading, as a dropped file does (not read with the one going away)
        self._once_loaded(open_it, Path(path).name)

    def open_latent(self, path: str) -> None:
        if self.pack is None:
            QMessageBox.information(self, "Open latent", "Open a generator first.")
            return
        g = self.pack.model.generator
        try:  # read and check it on this generator now rather than failing every render
            try:
                source = wplus_file_source(path, g.n_latent, g.w_dim)
            except ManyLatentsError as many:  # e4e's latents.pt: one per test image
                index, ok = QInputDialog.getInt(
                    self, "Open latent", f"{Path(path).name} holds {many.count} latents. "
                    f"Which one (0 to {many.count - 1})?", 0, 0, many.count - 1)
                if not ok:
                    return
                source = wplus_file_source(path, g.n_latent, g.w_dim, index)
        except (AtelierError, ValueError) as e:
            QMessageBox.warning(self, "Cannot use this latent", str(e))
            return
        self._change(self._with_source(self._keeping_seed(source)), "Open latent")

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open session", self._last_dir(),
                                              SESSION_FILTER)
        if path:
            self.open_session(path)

    def open_session(self, path: str) -> None:
        """A session file becomes the document, with a history of its own: saving writes
        back to it, so opening one is not an undoable step (undoing it left the file's
        name on another document, and Save overwrote the file with it). One made with
        another generator may open that one first."""
        path = os.path.abspath(path)
        after = self._session_after_load
        awaited = after is not None and after[0] == path
        self._session_after_load = None
        if awaited and self.document.revision != after[2] and \
                not self._may_replace_document():
            return  # worked on while its generator loaded: asked again, and kept
        if not awaited and self._is_open_unchanged(path):
            # reading it again would only clear the history (undo back past the last save)
            self.statusBar().showMessage(f"{Path(path).name} is open already", 5000)
            return
        if not awaited:  # (the user answered these before its generator was opened)
            # checked before asking to save the work open now, and read again after:
            # saving may have written this very file (reopening the open session)
            checked = self._read_session(path, check_latent=False)
            choice = checked and self._generator_choice(checked, Path(path).name)
            if not choice or not self._may_replace_document():
                return
            if choice == OPEN_ITS_OWN:
                assert checked.made_with is not None
                self._session_after_load = (path, checked.made_with,
                                            self.document.revision)
                self.open_generator(checked.made_with.path)
                return
        opened = self._read_session(path)
        if opened is None:
            return
        self._selected_id = None
        # shown otherwise than the file says (other models, fixed noise): saving changes it
        self.document.reset(opened.state, unsaved=opened.differs)
        self.session_path = Path(path)
        self._session_file_sha = _sha256_or_none(self.session_path)
        self._remember_recent(path)
        self._update_title()
        self._tell_recipe_notes(opened)

    def _is_open_unchanged(self, path: str) -> bool:
        """Whether `path` is the open session's file, unchanged since this window read or
        wrote it, with no change in the document since."""
        return (self.session_path is not None and same_path(path, self.session_path)
                and not self.document.modified and self._session_file_sha is not None
                and _sha256_or_none(self.session_path) == self._session_file_sha)

    def _forget_session_file(self) -> None:
        self._session_file_sha = None

    def _generator_choice(self, opened: _FromRecipe, name: str) -> str | None:
        """How to open a recipe made with another generator than the one open
        (OPEN_ITS_OWN, SHOW_WITH_OPEN; None: not at all): asked, where it differs."""
        made = opened.made_with
        if self.pack is None or made is None or \
                made.content_hash == self.pack.model.content_hash:
            return SHOW_WITH_OPEN
        return ask_which_generator(self, name, made, self.pack.name)

    def _tell_recipe_notes(self, opened: _FromRecipe) -> None:
        if opened.notes:  # not waited on: the document is open, the note is about it
            show_warning(self, "Opened with changes", "\n\n".join(opened.notes))

    def _read_session(self, path: str, check_latent: bool = True) -> _FromRecipe | None:
        """The document a session file holds; None (the user told why) when it cannot be
        used."""
        name = Path(path).name
        try:
            text = read_recipe_text(path, "session")
        except RecipeError as e:
            QMessageBox.warning(self, CANNOT_OPEN_SESSION, f"{e}.")
            return None
        except OSError as e:
            QMessageBox.warning(self, CANNOT_OPEN_SESSION, f"{name}: {e.strerror or e}")
            return None
        if not text.strip():
            QMessageBox.warning(self, CANNOT_OPEN_SESSION, f"{name} is empty.")
            return None
        return self._state_from_recipe(text, name, restore_draft=True,
                                       folder=Path(path).parent, title=CANNOT_OPEN_SESSION,
                                       check_latent=check_latent)

    def _apply_recipe_text(self, text: str, name: str, path: str | None = None,
                           refused: Callable[[str], object] | None = None) -> bool:
        """A recipe (from an exported picture at `path`, or pasted) replaces the stack as
        one undoable step. One made with another generator may open that one first: the
        picture is opened again once it is loaded. A recipe that cannot be used is said
        in a box, or handed to `refused` (the message)."""
        folder = Path(path).parent if path is not None else None
        opened = self._state_from_recipe(text, name, folder=folder, check_latent=False,
                                         refused=refused)
        choice = opened and self._generator_choice(opened, name)
        if choice == OPEN_ITS_OWN:  # the picture or the pasted recipe opens again then
            assert opened.made_with is not None
            self._open_when_loaded.append(
                (lambda: self.open_path(path)) if path is not None else
                (lambda: self._apply_recipe_text(text, name, refused=refused)))
            self.open_generator(opened.made_with.path)
            return False
        opened = choice and self._state_from_recipe(text, name, folder=folder, refused=refused)
        if not opened:
            return False
        self._selected_id = None
        self._change(opened.state, f"Open {name}")
        self.document.end_merge()
        self._tell_recipe_notes(opened)
        return True

    def _state_from_recipe(self, text: str, name: str, restore_draft: bool = False,
                           folder: Path | None = None, title: str = "Cannot open the recipe",
                           check_latent: bool = True,
                           refused: Callable[[str], object] | None = None
                           ) -> _FromRecipe | None:
        """The document a recipe describes, checked against the open model (its latent
        too, with `check_latent`); None (the user told why, in a box of `title`) when it
        cannot be used. A session file's prompt being written goes back to the prompt
        panel with `restore_draft`. A latent file it names by a relative path is in
        `folder` (the recipe's own)."""
        try:
            recipe = parse_recipe(text)
            # a session file's prompt being written at strength 0 is no stack edit when
            # its text is pasted (it goes back to the prompt panel only when opened)
            session = Session.from_recipe(recipe) if restore_draft else \
                replayed_session(recipe)
            notes = []
            missing = _missing_latent_file(session.source.found_in(folder))
            if check_latent and missing is not None:
                # the edits are the user's work: kept, on the picture open now
                notes.append(f"{name} starts from the latent file {missing}, which is not "
                             "there. Its edits are shown on the picture open now, and "
                             "saving records that picture.")
                session = session.with_source(self.document.state.session.source)
            session = session.with_source(self._latent_taken_in(session.source, folder,
                                                                read=check_latent))
            if check_latent and session.source.kind == "wplus" and self.pack is not None:
                _check_latent(session.source, self.pack)
        except (AtelierError, ValueError) as e:
            self._refuse_recipe(f"{name}: {e}", title, refused)
            return None
        if session.noise_mode == "random":
            session = dataclasses.replace(session, noise_mode="const")
            notes.append(f"{name} draws random noise: a different picture at every render, "
                         "so no slider move, undo or export could show the same one twice. "
                         "It is shown with fixed noise, which saving records.")
        mismatches = (session.model_mismatches(*self.pack.identities())
                      if self.pack is not None else [])
        if mismatches:  # the generator first; a CLIP steers only the text edits
            kind, made, used = mismatches[0]
            self.statusBar().showMessage(
                f"{name} was made with {made.name}; it is shown with {self.pack.name}"
                if kind == "generator" else
                f"{name}'s text edits were made with CLIP {made.name}; they are shown with "
                f"{used.name}, so they may look different" if kind == "CLIP" else
                f"{name}'s text edits were made with other global directions ({made.name}); "
                f"they are shown with this pack's ({used.name}), so they may look different",
                10000)
        neutral = self.document.state.draft.params.get("neutral", DEFAULT_NEUTRAL)
        state = EditorState(dataclasses.replace(session, generator=None, clip=None,
                                                directions=None),
                            new_draft(neutral, defaults=self._edit_defaults()))
        if restore_draft:
            state = state.with_saved_draft(recipe.get(DRAFT_KEY))
        else:
            state = _last_edit_as_draft(state)
        if len(state.session.edits) > MAX_STACK:  # a recipe holds one more: a drawn prompt
            # shown, its session file could not be opened again (Save wrote one edit more)
            self._refuse_recipe(f"{name} holds {len(state.session.edits):,} edits, and the "
                                f"edit stack holds at most {MAX_STACK:,}. `atelier edit "
                                "--recipe` draws it.", title, refused)
            return None
        made = session.generator  # looked for here: it may name another install's path
        if made is not None and (local := local_generator(made)) is not None:
            made = dataclasses.replace(made, path=str(local))
        return _FromRecipe(state, made, notes, bool(notes or mismatches))

    def _refuse_recipe(self, message: str, title: str,
                       refused: Callable[[str], object] | None) -> None:
        """Say why a recipe cannot be used: in a box of `title`, or to `refused`."""
        if refused is not None:
            refused(message)
        else:
            QMessageBox.warning(self, title, message)

    def _latent_taken_in(self, source: Source, folder: Path | None,
                         read: bool = True) -> Source:
        """A latent a recipe names by its file only (an older or hand-written session):
        found beside the recipe when its path is relative, and carried in the document
        from now on (with a model open to read it), so that the next save holds it and a
        moved folder or a changed file no longer changes the picture. Without `read`
        (before the generator to read it with is chosen) only its path is made whole."""
        if source.latent_file is None:
            return source
        source = source.found_in(folder)
        if self.pack is None or not read:  # read when a model opens (_source_for_new_model)
            return source
        g = self.pack.model.generator
        loaded = wplus_file_source(Path(source.wplus_path), g.n_latent, g.w_dim)
        return dataclasses.replace(loaded, label=source.label or loaded.label)

    def save_session(self) -> bool:
        if self.session_path is None:
            return self.save_session_as()
        if not self.session_path.parent.is_dir():  # not made anew in silence: ask where
            QMessageBox.information(self, "Save session",
                                    f"The folder of {self.session_path.name} "
                                    f"({self.session_path.parent}) no longer exists: choose "
                                    "where to save it.")
            return self.save_session_as()
        if self._changed_on_disk() and QMessageBox.question(
                self, "Save session",
                f"{self.session_path.name} has changed on disk since this window opened or "
                "saved it (another program or window wrote it). Saving replaces those "
                "changes.\n\nSave over it anyway? (Cancel, then File ▸ Save session as…, "
                "keeps both.)",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) != QMessageBox.StandardButton.Save:
            return False
        return self._write_session(self.session_path)

    def _changed_on_disk(self) -> bool:
        """Whether the open session's file holds other bytes than this window read or
        wrote last (a file gone since is not "changed": saving makes it again)."""
        if self.session_path is None or self._session_file_sha is None:
            return False
        now = _sha256_or_none(self.session_path)
        return now is not None and now != self._session_file_sha

    def save_session_as(self) -> bool:
        suggested = self.session_path or Path(self._last_dir()) / f"session{SESSION_SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self, "Save session", str(suggested),
                                              SESSION_FILTER)
        if not path:
            return False
        chosen = Path(path)
        if not chosen.name.lower().endswith(".json"):
            # only a .json is opened as a session (recent files, a drop, the command line)
            stem = chosen.name.removesuffix(".atelier")  # "portrait.atelier" is half typed
            chosen = chosen.with_name(stem + SESSION_SUFFIX)
            if chosen.exists() and not confirm_overwrite(self, [chosen]):
                return False
        return self._write_session(chosen)

    def _write_session(self, path: Path) -> bool:
        from editor.core.paths import atomic_write_text, written_in_place

        self._flush_input()  # what was typed just now belongs in the file
        if path.is_dir():  # replacing it fails only after the write, naming a temp file
            QMessageBox.warning(self, "Cannot save the session",
                                f"{path} is a folder; choose a file name.")
            return False
        if written_in_place(path):  # written into, then read back: a pipe froze the window
            QMessageBox.warning(self, "Cannot save the session",
                                f"{path} is not a file (a pipe or a device); choose a file "
                                "name.")
            return False
        if path.is_file() and not path.stat().st_mode & 0o222:
            # the atomic write replaces the file whatever its own mode says
            QMessageBox.warning(self, "Cannot save the session",
                                f"{path.name} is write-protected: save under another name "
                                "(File ▸ Save session as…), or allow writing to it first.")
            return False
        try:
            recipe = self.document.state.to_session_file(self.current_session())
            atomic_write_text(path, json.dumps(recipe, indent=2))
        except OSError as e:  # its file name would be the hidden temporary one: say why only
            QMessageBox.warning(self, "Cannot save the session",
                                f"{path}: {e.strerror or e}")
            return False
        self.session_path = path
        self._session_file_sha = _sha256_or_none(path)
        self._remember_recent(str(path))
        self.document.mark_saved()
        self._update_title()
        self.statusBar().showMessage(f"saved {path.name}", 4000)
        return True

    def export_dialog(self) -> None:
        if self.pack is None or self.renderer.context is None:
            QMessageBox.information(self, "Export", "Open a model first.")
            return
        self._flush_input()  # export what the boxes say, not 350 ms ago
        session = self.current_session()
        # the models the session's identities name, taken with it: a model that finished
        # loading while the dialog was open drew it, under a recipe naming this one. Its
        # own caches: the worker keeps rendering meanwhile.
        ctx = self.pack.context()
        resolution = self.pack.model.resolution
        # the files of exports still running, not to be written twice at once
        self._export_targets = {key: targets for key, targets in self._export_targets.items()
                                if self.jobs.find(key) is not None}
        plan = get_export_plan(self, session, resolution=resolution,
                               edit_id=self._selected_id, failing=self._failing_edits(session),
                               busy=[p for ps in self._export_targets.values() for p in ps])
        if plan is None:
            return
        if self.inversion.previewing:  # the canvas shows something the file will not
            self.statusBar().showMessage(
                "Exporting the document's picture: the inversion still running is not in "
                "it until it finishes", 8000)
        self._export_count += 1
        key = f"{EXPORT_JOB}{plan.kind}:{self._export_count}"
        self._export_targets[key] = plan_targets(plan)
        self.jobs.submit(f"Export {plan.kind}",
                         lambda token: run_plan(ctx, session, plan, cancel=token,
                                                report=token.report),
                         key=key)

    def _failing_edits(self, session: Session) -> dict[str, str]:
        """Edit id -> why the last render could not apply it, for the edits of `session`
        that it drew as they are now (a sweep of one of them would fail)."""
        if self.last_result is None:
            return {}
        return {e.id: status.error for e in session.edits
                if (status := self.last_result.edit_status.get(e.id)) is not None
                and status.error
                and _status_key(self._drawn, e.id) == _status_key(session, e.id)}

    # ================================================================= recent files
    def _remember_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        if not settings_values.keeps(path):  # it would be listed as another file
            return
        s = QSettings()
        # one entry a file, however it was reached (a linked folder, its real path)
        recent = [p for p in settings_values.text_list(s, "recent/files")
                  if not same_path(p, path)]
        s.setValue("recent/files", ([path] + recent)[:MAX_RECENT])
        self._remember_dir(path)
        self._fill_recent_menu()

    def _remember_dir(self, path: str) -> None:
        """The next file dialog starts where this file was picked."""
        settings_values.set_path(QSettings(), "recent/dir",
                                 os.path.dirname(os.path.abspath(path)))

    def _forget_recent(self, path: str) -> bool:
        """Take a file off Open recent; whether it was on it."""
        s = QSettings()
        recent = settings_values.text_list(s, "recent/files")
        if path not in recent:
            return False
        s.setValue("recent/files", [p for p in recent if p != path])
        self._fill_recent_menu()
        return True

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        # cut: a hand-edited (or older) list of thousands made a menu taller than the screen
        recent = settings_values.text_list(QSettings(), "recent/files")[:MAX_RECENT]
        names = [Path(p).name for p in recent]
        fm = self.recent_menu.fontMetrics()
        for number, path in enumerate(recent, start=1):
            name = Path(path).name
            if names.count(name) > 1:  # two "session.atelier.json": their folders tell
                name = f"{name} — {Path(path).parent.name or path}"
            # a 200-character name made the menu wider than the screen; the middle goes,
            # the start and the extension stay
            name = fm.elidedText(name, Qt.TextElideMode.ElideMiddle,
                                 fm.averageCharWidth() * RECENT_NAME_CHARS)
            act = self.recent_menu.addAction(menu_text(name, number))
            act.setToolTip(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if recent:  # files of a finished project, or ones not to be shown to others
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("&Clear list", self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))

    def _clear_recent(self) -> None:
        QSettings().remove("recent/files")
        self._fill_recent_menu()

    def _last_dir(self) -> str:
        return settings_values.text(QSettings(), "recent/dir", str(Path.home()))

    # ================================================================= misc
    def set_theme(self, name: str) -> None:
        applied = apply_theme(name)
        QSettings().setValue("view/theme", applied)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == applied)
        self.canvas.update()

    def _update_title(self) -> None:
        name = self.session_path.name if self.session_path else "untitled"
        name = name.replace("[*]", "[*][*]")  # Qt's modified-marker placeholder, shown
        dirty = " •" if self.document.modified else ""
        self.setWindowTitle(f"{name}{dirty} — Latent Atelier")

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Latent Atelier",
            f"<b>Latent Atelier</b> {__version__}<br>Text-driven editing of StyleGAN2 images:"
            " StyleCLIP global directions, CLIP2StyleGAN discovered directions and GAN"
            " inversion; latent optimisation, mappers and StyleGAN-NADA are planned.<br>"
            f"Device: {self.renderer.device}")

    # ================================================================= settings, closing
    def _restore_settings(self, open_last_model: bool) -> None:
        s = QSettings()
        where = Path(s.fileName()).parent
        why = unwritable_reason(where)
        geometry = settings_values.byte_array(s, "window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self._first_size()
        dock_state = settings_values.byte_array(s, "window/state")
        restored = dock_state is not None and self.restoreState(dock_state)
        # shown when a job starts; after the restore, which showed it again if it was in
        # view when the window closed (an empty panel under the picture at every start)
        self.jobs_dock.hide()
        self._fit_forms_when_shown = not restored  # sizes are known only once shown
        self.set_theme(settings_values.text(s, "view/theme", "system"))
        if why is None:  # the folder takes files, the file may not (left by a run as
            # another user, a folder in its place): the theme just set is written to see
            s.sync()
            if s.status() == QSettings.Status.AccessError:  # a damaged file is rewritten
                where, why = Path(s.fileName()), "the file cannot be written"
        if why is not None:  # nothing chosen now would last
            self._start_note = "; ".join(filter(None, (
                self._start_note, f"settings cannot be saved in {where} ({why})")))
        self._fill_recent_menu()
        seed = settings_values.integer(s, "source/seed", 0, 0, MAX_SEED)
        # with ψ: the same seed at another ψ is another face (a real model's; the demo's
        # ψ is its own, set when it loads)
        psi = settings_values.number(s, "source/psi", Source().psi, *PSI_RANGE)
        self.document.reset(self._with_source(Source(seed=seed, psi=psi)))
        self._update_title()
        if open_last_model:
            self._open_last_model()

    def open_at_start(self, path: str) -> None:
        """A file to start on: the last generator, or a file named on the command line or
        by the desktop's "Open with". A generator opens with the demo pack to fall back on
        if it does not; any other file (a picture, a session, a latent) opens as a dropped
        one does, once a model is there to open it with."""
        path = os.path.abspath(path)
        if not names_a_generator(path):
            if self.pack is None:
                self._open_when_loaded.append(lambda: self.open_path(path))
            else:
                self.open_path(path)
            return
        self._start_on_generator(path)

    def _start_on_generator(self, path: str) -> None:
        """Start on `path`; should it not open, on the model used last (a file named by
        mistake replaced it with the demo, which then was the one used last), else the
        demo pack."""
        self.open_generator(path)
        for fallback in (self._last_model(), default_generator_path()):
            if fallback and Path(fallback).is_file() and \
                    Path(fallback).resolve() != Path(path).resolve():
                self._fallback_generator = Path(fallback)
                return

    @staticmethod
    def _last_model() -> str:
        """The generator used last ("" for none); another installation's demo is this
        one's (installations share the settings)."""
        last = settings_values.text(QSettings(), "model/last_path")
        return this_installs_model(last) if last else ""

    def _open_last_model(self) -> None:
        """The model the user worked on last, or the demo pack when it is gone (or was the
        demo); the demo pack also when the last one no longer opens."""
        demo = default_generator_path()
        last = self._last_model()
        if last and Path(last).is_file():  # a generator, whatever its name
            self._start_on_generator(last)
        elif demo is not None:
            self.open_generator(str(demo))
        else:
            self.canvas.set_message("No model loaded.\nFile ▸ Open generator… (Ctrl+O) to open "
                                    "a StyleGAN2 checkpoint\n(.pt, .pkl or .safetensors).")

    def _first_size(self) -> None:
        """1280 x 820, or less on a smaller screen (or a large HiDPI scale)."""
        area = available_area(self)
        if area is None:
            self.resize(1280, 820)
            return
        self.resize(min(1280, area.width()), min(820, area.height()))

    def _may_replace_document(self) -> bool:
        """Before the document goes (closing, opening another session): offer to save
        unsaved changes. False when the user cancels, or a save did not happen."""
        self._flush_input()  # what was typed just now is an unsaved change
        if not self.document.modified:
            return True
        name = self.session_path.name if self.session_path is not None else "this session"
        return self._offer_to_save("Save changes?", f"Save the changes to {name}?")

    def _offer_to_save(self, title: str, question: str) -> bool:
        """Save / Discard / Cancel: whether to go on (saved, or discarded)."""
        answer = QMessageBox.question(
            self, title, question,
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel)
        return not (answer == QMessageBox.StandardButton.Cancel or (
            answer == QMessageBox.StandardButton.Save and not self.save_session()))

    def closeEvent(self, event):  # noqa: N802 - Qt override
        if not self._may_replace_document():
            event.ignore()
            return
        jobs = self.jobs.active_jobs()
        if jobs:
            running = [job.title for job in jobs]
            # they save their progress when stopped; an export or an inversion starts over
            resumes = [job.title for job in jobs if (job.key or "").startswith(
                (PRECOMPUTE_JOB, DISCOVERY_JOB, DOWNLOAD_JOB))]
            # a batch stops between files: those written stay (its note is not seen once
            # the window has gone)
            batches = sum((job.key or "").startswith(f"{EXPORT_JOB}batch:") for job in jobs)
            kept = ("" if not batches else " (The files the batch export wrote so far stay.)"
                    if batches == 1 else " (The files the batch exports wrote so far stay.)")
            answer = QMessageBox.question(
                self, "Jobs still running",
                f"{', '.join(running)} {'is' if len(running) == 1 else 'are'} still running. "
                f"Stop and quit?{_resume_note(running, resumes)}{kept}",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        if self.pack is not None:  # with the seed below: the window closed last is the
            # one the next start shows, not its seed on a model another window opened later
            settings_values.set_path(s, "model/last_path", self.pack.model.path)
        # the last seed drawn, not a latent's own seed and ψ, which are no face the user
        # saw (an `atelier invert` recipe's: seed 0 at ψ 0.7, kept as the demo's ψ)
        if self._seed_shown is not None:
            source, on_demo = self._seed_shown
            s.setValue("source/seed", source.seed)
            # the demo's ψ is its own (its seed_psi, or this one at the next start): kept
            # as the real models' one, it became the next real model's at the next start
            s.setValue("source/demo_psi" if on_demo else "source/psi", source.psi)
        self._closed = True
        self.hide()  # stopping the jobs may take seconds: not with a frozen window on screen
        self.jobs.cancel_all()
        self.worker.stop()
        super().closeEvent(event)
