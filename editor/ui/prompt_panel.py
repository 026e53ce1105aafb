"""The prompt panel: neutral and target text, strength α, disentanglement β, auto-β, gate.

It edits one edit at a time: the draft (a new prompt, shown live, "Add to stack" keeps it)
or an edit of the stack the user selected for tuning. It never changes the document
itself; it reports changes (edit id + changed fields) and the window makes them undoable.
"""

from __future__ import annotations

import html
import re
import unicodedata

from PySide6.QtCore import QEvent, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QCompleter,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from editor.core.errors import one_line
from editor.engine.compose import EditStatus
from editor.engine.editor_state import DEFAULT_NEUTRAL, EditDefaults
from editor.engine.session import STRENGTH_RANGE, Edit

from .elided_label import ElidedLabel
from .keys import claim_keys, menu_text, route_undo_keys
from .sliders import FloatSlider
from .theme import warning_colour

ALPHA_RANGE = (-10.0, 10.0)
# what the α box takes when typed (what a recipe may hold): its keys were refused beyond
# the slider's range, so "25" became 2 without a word
ALPHA_TYPED_RANGE = STRENGTH_RANGE
BETA_RANGE = (0.05, 0.6)  # a small CLIP needs higher β than ViT-B/32 (see EditDefaults)
# what the β box takes when typed: any threshold on |relevance|, a cosine (0: every
# channel that has one); its keys were refused beyond the slider's range
BETA_TYPED_RANGE = (0.0, 1.0)
# Add to stack, the keypad's Enter too; the first is the one the menu and tooltip name
ADD_TO_STACK_KEYS = (QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter"))
TYPING_PAUSE_MS = 350  # apply a prompt once typing pauses; each key would re-encode text
# a recipe's prompt may be longer than QLineEdit's default limit (32,767 characters): the
# box must hold all of it, or showing it cut its end and Save wrote the cut prompt
PROMPT_MAX_LENGTH = 2**31 - 1
NO_NEUTRAL_HINT = "none: the target alone"  # a recipe's empty neutral (--neutral "")
LONG_WORD_CHARS = 30
LONG_WORD = re.compile(rf"[^\W_]{{{LONG_WORD_CHARS + 1},}}")  # letters or digits, no break
UPDATING_TEXT = "Updating…"  # the edit changed; its new report comes with its picture
EDIT_OFF_TEXT = "This edit is off in the stack: tick its box there to apply it"


class PromptPanel(QWidget):
    edit_changed = Signal(str, dict, str, object)  # edit id, changes, undo text, merge key
    interaction_finished = Signal()
    add_requested = Signal()
    new_prompt_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._edit: Edit | None = None
        self._shows = 0  # show_edit calls so far: one may come from within another
        self._available = True  # text edits work with the open models
        self._default_neutral = DEFAULT_NEUTRAL  # the pack's, which an empty box means
        self._notice_reason = ""  # why prompt edits are unavailable, when they are
        # what the report line says while it has no report ("Loading CLIP …": available,
        # a prompt typed waits); in the line's own room, not the notice's, which grew the
        # dock for a second and left it taller
        self._waiting_note = ""
        self._auto_beta: float | None = None  # the β auto-β last chose for the edit shown
        # what each box was last filled with: only a box the user changed since changes
        # the edit (Save once rewrote prompts nobody touched)
        self._filled = {"neutral": "", "target": ""}
        self._typing = QTimer(self, singleShot=True, interval=TYPING_PAUSE_MS)
        # each prompt the pause applies is an undo step of its own, as after Enter: the
        # typing went on merging into one step while the box kept the focus, and Undo went
        # back past every prompt tried
        self._typing.timeout.connect(self._finish_typing)

        self.heading = ElidedLabel()  # a long edit name must not widen the panel
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.new_button = QPushButton("New prompt")
        self.new_button.setToolTip("Stop tuning the selected edit and write a new prompt")
        self.new_button.clicked.connect(self.new_prompt_requested)
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.new_button)
        self.also_drawn = QLabel()  # the new prompt, drawn while a stack edit is tuned
        self.also_drawn.setWordWrap(True)
        self.also_drawn.setTextFormat(Qt.TextFormat.PlainText)  # prompts are the user's text
        # the form's width, never its own (see `channels`): a long word widened the form
        self.also_drawn.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.also_drawn.setVisible(False)

        self.neutral = QLineEdit()
        self.neutral.setPlaceholderText(DEFAULT_NEUTRAL)
        self.neutral.setToolTip("What the image is now, in words (the neutral prompt)")
        self.target = QLineEdit()
        self.target.setPlaceholderText(f"{DEFAULT_NEUTRAL} with blonde hair")
        self.target.setToolTip("What it should become (the target prompt); the edit moves "
                               "the image along target − neutral")
        self.suggest_button = QToolButton()
        self.suggest_button.setText("…")
        self.suggest_button.setToolTip("Prompts this model knows")
        self.suggest_button.setAccessibleName("Prompts this model knows")
        self.suggest_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        # the "…" says it opens a list; the style's menu arrow drew over it in the corner
        self.suggest_button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
        self.suggest_button.setMenu(QMenu(self.suggest_button))
        self.suggest_button.setEnabled(False)
        # the form labels the row, not the box in it
        self.target.setAccessibleName("Target prompt")
        target_row = QHBoxLayout()
        target_row.addWidget(self.target, 1)
        target_row.addWidget(self.suggest_button)
        route_undo_keys([self.neutral, self.target], self._finish_typing)
        for box in (self.neutral, self.target):
            # typing: PgUp/PgDown stepped the seed, F2 opened the selected edit's rename
            claim_keys(box)
            box.setMaxLength(PROMPT_MAX_LENGTH)
            box.textEdited.connect(lambda _t: self._typing.start())
            box.editingFinished.connect(self._finish_typing)

        self.alpha = FloatSlider(*ALPHA_RANGE, value=0.0, decimals=2,
                                 typed_range=ALPHA_TYPED_RANGE)
        self.alpha.setToolTip("Strength α: how far to move; negative goes the other way")
        self.alpha.value_changed.connect(
            lambda v: self._emit({"strength": v}, "Change strength", "alpha"))
        self.alpha.drag_finished.connect(self.interaction_finished)
        self.alpha.set_accessible_name("Strength α")
        self.beta = FloatSlider(*BETA_RANGE, value=0.15, decimals=3,
                                typed_range=BETA_TYPED_RANGE)
        self.beta.setToolTip("Disentanglement β: only style channels whose relevance "
                             "exceeds β move; higher is more focused, lower is stronger")
        self.beta.value_changed.connect(lambda v: self._emit_params({"beta": v}, "Change β",
                                                                    "beta"))
        self.beta.drag_finished.connect(self.interaction_finished)
        self.beta.set_accessible_name("Disentanglement β")
        self.auto_beta = QCheckBox("Auto β")
        self.auto_beta.setToolTip(auto_beta_tip(None))
        self.auto_beta.toggled.connect(self._toggle_auto_beta)
        self.gate = QCheckBox("Only channels that vary with the text")
        self.gate.setToolTip("Keep only the style channels that also vary with the prompt "
                             "across the model's own samples: fewer side effects on the "
                             "rest of the face (measured once per model pack). β then "
                             "applies to the gated scores (relevance × correlation)")
        self.gate.toggled.connect(self._toggle_gate)
        self.channels = QLabel("")
        self.channels.setWordWrap(True)
        self.channels.setTextFormat(Qt.TextFormat.PlainText)  # prompts are not markup
        # room for the second line (a warning) from the start: the form is fitted to its
        # height once, when the window first shows, and a later line gave it a scrollbar
        self.channels.setMinimumHeight(2 * self.channels.fontMetrics().lineSpacing())
        # its width is the form's, never its own: a long word in it (a prompt typed without
        # spaces) widened the form past the dock, out of reach of the α and β boxes
        self.channels.setSizePolicy(QSizePolicy.Policy.Ignored,
                                    QSizePolicy.Policy.Preferred)
        self.notice = QLabel("")  # why prompt edits are unavailable, when they are
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.add_button = QPushButton("Add to stack")
        key = ADD_TO_STACK_KEYS[0].toString(QKeySequence.SequenceFormat.NativeText)
        # the menu's words for the key ("Ctrl+Enter" here beside "Ctrl+Return" there)
        self.add_button.setToolTip(f"Keep this edit in the stack and start a new one ({key})")
        self.add_button.clicked.connect(self.add_requested)

        form = QFormLayout()
        form.addRow("Neutral", self.neutral)
        form.addRow("Target", target_row)
        form.addRow("Strength α", self.alpha)
        form.addRow("β", self.beta)
        form.addRow("", self.auto_beta)
        form.addRow("", self.gate)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.also_drawn)
        layout.addWidget(self.notice)
        layout.addLayout(form)
        layout.addWidget(self.channels)
        layout.addWidget(self.add_button)
        layout.addStretch(1)
        self.set_text_edits_available(True)

    # ----------------------------------------------------------------- showing the model
    def show_edit(self, edit: Edit, bound: bool, also_drawn: Edit | None = None) -> None:
        """Show `edit`: a stack edit being tuned (`bound`) or the new prompt. `also_drawn`:
        the new prompt, drawn on top of the stack, while a stack edit is tuned."""
        self._shows += 1
        switching = self._edit is None or edit.id != self._edit.id
        if switching:
            shows = self._shows
            self._apply_text()  # pending typing belongs to the edit being left
            if self._shows != shows:
                # the window showed the state with that typing applied, from within: what
                # this call was given is older (its "also drawn" line lacked the prompt)
                return
            self._auto_beta = None  # the β auto chose for the edit being left
        self._edit = edit
        p = edit.params
        self.heading.setText(f"Tuning: {edit.title}" if bound else "New prompt")
        self.also_drawn.setText(elide_long_words(
            f"Also drawn, not in the stack: {also_drawn.title} at α {also_drawn.strength:g} "
            "(New prompt shows it)") if also_drawn is not None else "")
        self.also_drawn.setVisible(also_drawn is not None)
        self.new_button.setVisible(bound)
        self.add_button.setVisible(not bound)
        self._show_prompts(switching)
        self.alpha.set_value(edit.strength)
        with QSignalBlocker(self.auto_beta):
            self.auto_beta.setChecked(bool(p.get("auto_beta")))
        self.auto_beta.setToolTip(auto_beta_tip(p.get("min_channels")))
        with QSignalBlocker(self.gate):
            self.gate.setChecked(bool(p.get("gate")))
        self._enable_beta()
        if not p.get("auto_beta"):
            self.beta.set_value(float(p.get("beta", 0.15)))

    def show_status(self, status: EditStatus | None) -> None:
        """The engine's report on the edit shown: channels passing β, or why none do."""
        # the engine leaves a disabled edit out, so it has no report: tuning one seemed to
        # do nothing at all
        off = self._edit is not None and not self._edit.enabled
        self._show_line(EDIT_OFF_TEXT if off else status_text(status))
        self.channels.setToolTip(
            "The edit follows what CLIP understands of the prompt; words it never learned "
            "move it in a direction nobody chose. The … menu lists prompts in its words."
            if status is not None and status.unknown_words else "")
        if self._auto_beta_shown():
            self._show_auto_beta(status)

    def show_updating(self, notes: list[str]) -> None:
        """The edit changed since the picture shown was drawn: its report comes with the
        next picture. Until then the line says so, with what is known at once (`notes` on
        its prompts), rather than pass the last prompt's channels off as this one's."""
        self._show_line(UPDATING_TEXT + warning_lines(notes))
        if self._auto_beta_shown():
            self.beta.show_blank()  # this prompt's is not known yet
            # nor is where manual β would start: the last choice was another prompt's
            self._auto_beta = None

    def _show_line(self, text: str) -> None:
        # in the text colour while updating too: "Updating…" says so, and its warnings
        # were unreadable in the disabled grey (1.6:1) for as long as a render took
        text = text or self._waiting_note
        self.channels.setText(elide_long_words(text))
        # a screen reader reads the line with the prompt it reports on (it never has the
        # keyboard itself): "no channel passes β", words CLIP never learned
        self.target.setAccessibleDescription(text)

    def _auto_beta_shown(self) -> bool:
        return self._edit is not None and bool(self._edit.params.get("auto_beta"))

    def _show_auto_beta(self, status: EditStatus | None) -> None:
        """Auto β is the engine's choice for this prompt; without one, show none rather
        than the last prompt's."""
        chosen = status.beta if status is not None and not status.error else None
        if chosen:
            self._auto_beta = chosen  # where manual β starts when auto is turned off
            self.beta.set_value(chosen)
        else:
            self.beta.show_blank()

    def set_placeholders(self, neutral: str) -> None:
        """Example prompts in the pack's own words (the demo's are about cartoon faces);
        `neutral` is also what an empty Neutral box means."""
        self._default_neutral = neutral
        self.target.setPlaceholderText(f"{neutral} with blonde hair")
        self._show_prompts(switching=False)

    def _show_prompts(self, switching: bool) -> None:
        """Fill the boxes with the edit's prompts, unless a box means its prompt already:
        rewriting it under the hand after the typing pause dropped a space just typed
        ("face with" + "glasses") and filled a neutral box the user had emptied."""
        neutral = self._edit.params.get("neutral", "") if self._edit is not None else None
        # an empty box means the pack's neutral, except for an edit made without one
        self.neutral.setPlaceholderText(NO_NEUTRAL_HINT if neutral == ""
                                        else self._default_neutral)
        # never overwrite typing that is still waiting for its pause (the focus may have
        # gone to a slider already)
        if self._edit is None or (self._typing.isActive() and not switching):
            return
        for box, key in self._boxes():
            prompt = self._edit.params.get(key, "")
            if self._prompt_in(box, key) != prompt:
                with QSignalBlocker(box):
                    box.setText(prompt)
            self._filled[key] = box.text()

    def _boxes(self) -> tuple[tuple[QLineEdit, str], ...]:
        return (self.neutral, "neutral"), (self.target, "target")

    def _prompt_in(self, box: QLineEdit, key: str) -> str:
        """The prompt a box's text means: on one line, without the spaces around it; an
        empty neutral box means its placeholder, the pack's neutral (as `atelier edit`
        without --neutral), and the edit records that prompt, so its recipe replays the
        same."""
        # (a line edit keeps a pasted prompt's line breaks while it shows them as spaces:
        # the edit's title came out on two lines, cut in half in its stack row)
        text = one_line(without_format_characters(box.text()))
        return self._default_neutral if key == "neutral" and not text else text

    def _typed_prompt(self, box: QLineEdit, key: str) -> str:
        """The edit's prompt after the user's typing: the box's, where they changed it
        since it was filled; the edit's own otherwise (stored spaces and all)."""
        if box.text() == self._filled[key]:
            return self._edit.params.get(key, "")
        return self._prompt_in(box, key)

    def set_suggestions(self, prompts: list[str]) -> None:
        menu = self.suggest_button.menu()
        menu.clear()
        for text in prompts:
            act = QAction(menu_text(text), menu)
            act.triggered.connect(lambda _c=False, t=text: self._use_suggestion(t))
            menu.addAction(act)
        # a pack without directions offers them too, but they cannot be used yet
        self.suggest_button.setEnabled(bool(prompts) and self._available)
        completer = QCompleter(prompts, self.target)
        completer.setFilterMode(completer.filterMode().MatchContains)
        completer.activated.connect(lambda _t: self._finish_typing())
        self.target.setCompleter(completer)

    @property
    def text_edits_available(self) -> bool:
        """Whether prompt edits work with the open models (see the notice otherwise)."""
        return self._available

    def set_text_edits_available(self, available: bool, reason: str = "") -> None:
        self._available = available
        for w in (self.neutral, self.target, self.alpha, self.auto_beta,
                  self.gate, self.add_button):
            w.setEnabled(available)
        self.suggest_button.setEnabled(available and bool(self.suggest_button.menu().actions()))
        self._enable_beta()
        self._notice_reason = reason if not available else ""
        self._show_notice()
        self.notice.setVisible(not available and bool(reason))
        waiting = reason if available else ""
        if waiting != self._waiting_note:
            # the line shows the note it had, or nothing: it shows the new one (or nothing)
            idle = self.channels.text() in ("", elide_long_words(self._waiting_note))
            self._waiting_note = waiting
            if idle:
                self._show_line("")

    def _show_notice(self) -> None:
        # the theme's warning colour, again when the theme changes: one orange for both
        # was 2.9:1 on the light theme
        reason = self._notice_reason
        colour = warning_colour(self.palette()).name()
        self.notice.setText(f"<span style='color:{colour}'>{html.escape(reason)}</span>"
                            if reason else "")

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "notice"):  # not while the panel is being built
            self._show_notice()
        super().changeEvent(event)

    # ----------------------------------------------------------------- user input
    def _emit(self, changes: dict, text: str, merge: str | None) -> None:
        self._flush_typing()
        if self._edit is None:
            return
        self.edit_changed.emit(self._edit.id, changes, text,
                               None if merge is None else (merge, self._edit.id))

    def _emit_params(self, params: dict, text: str, merge: str | None) -> None:
        self._flush_typing()  # before the params are read: they must hold the typed text
        if self._edit is None:
            return
        self._emit({"params": {**self._edit.params, **params}}, text, merge)

    def _flush_typing(self) -> None:
        """Typing still waiting for its pause is applied first, as its own step: a click
        on α or the gate within the pause lost it (the box was emptied)."""
        if self._typing.isActive():
            self._apply_text()

    def _apply_text(self) -> None:
        self._typing.stop()
        if self._edit is None:
            return
        prompts = {key: self._typed_prompt(box, key) for box, key in self._boxes()}
        if prompts != {key: self._edit.params.get(key, "") for key in prompts}:
            self._emit_params(prompts, "Edit prompt", "text")

    def _finish_typing(self) -> None:
        self._apply_text()
        self.interaction_finished.emit()

    def finish_typing(self) -> None:
        """What is in the boxes now becomes the edit's prompt (before Add reads it)."""
        self._finish_typing()

    def _use_suggestion(self, text: str) -> None:
        """A chosen suggestion is a step of its own: merged with the typing before it, one
        Undo went back past that typing too."""
        self._flush_typing()
        self.target.setText(text)
        if self._edit is not None and text != self._edit.params.get("target", ""):
            self._emit_params({"neutral": self._typed_prompt(self.neutral, "neutral"),
                               "target": text}, "Use a suggested prompt", None)
        self.interaction_finished.emit()

    def _enable_beta(self) -> None:
        """β is set by hand only where text edits work and auto-β is off (a slider that
        moves nothing made undo steps that changed nothing)."""
        self.beta.setEnabled(self._available)
        self.beta.set_read_only(self.auto_beta.isChecked())  # the chosen β stays readable

    def _toggle_auto_beta(self, on: bool) -> None:
        self._enable_beta()
        params: dict = {"auto_beta": on}
        if not on and self._auto_beta is not None:
            # manual β starts where auto left it (all its digits): the stored β, a default
            # the user never saw, changed the picture on a mere switch of mode
            params["beta"] = self._auto_beta
        self._emit_params(params, "Auto β" if on else "Manual β", None)
        self.interaction_finished.emit()

    def _toggle_gate(self, on: bool) -> None:
        self._emit_params({"gate": on}, "Gate channels" if on else "Ungate channels", None)
        self.interaction_finished.emit()


def status_text(status: EditStatus | None) -> str:
    """The line under the prompt: channels passing β, or why none do; and the words the
    CLIP never learned, which move the edit in a direction nobody chose."""
    if status is None:
        return ""
    if status.error:
        return f"⚠ {status.error}"
    beta = f" at β = {status.beta:.3f}" if status.beta is not None else ""
    passes = "channel passes" if status.n_channels == 1 else "channels pass"
    text = f"{status.n_channels} style {passes}{beta}"
    return text + warning_lines(status.prompt_warnings())


def without_format_characters(text: str) -> str:
    """Text less its invisible format characters (Unicode Cf: zero-width spaces and joiners,
    direction marks), which text pasted from web pages carries: the CLIP read one as a
    word, the window named it as an unknown word “”, and it changed the edit."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def elide_long_words(text: str) -> str:
    """Words too long to read at a glance (a prompt typed without spaces), cut short with
    an ellipsis: the line wraps between words only, so one such word runs out of view."""
    return LONG_WORD.sub(lambda m: m[0][:LONG_WORD_CHARS - 1] + "…", text)


def warning_lines(notes: list[str]) -> str:
    """Notes on an edit's prompts, each on a line of its own below the report."""
    return "".join(f"\n⚠ {note}" for note in notes)


def auto_beta_tip(min_channels: object) -> str:
    """The auto-β tooltip, with the edit's own channel minimum (the pack's default)."""
    least = (min_channels if isinstance(min_channels, int) and min_channels > 0
             else EditDefaults().min_channels)
    return f"Pick the largest β that still moves at least {least} channels"
