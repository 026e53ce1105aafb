"""The open document: an EditorState behind a QUndoStack.

Every change the user makes goes through `Document.change`, which pushes a command holding
the state before and after; undo and redo swap whole immutable states, so they restore the
exact previous picture. A slider drag sends many changes with the same merge key; they merge
into one history step until `end_merge()` (the hand let go).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from editor.engine.editor_state import EditorState

_MERGEABLE_ID = 1


class StateCommand(QUndoCommand):
    def __init__(self, document: Document, before: EditorState, after: EditorState,
                 text: str, merge_key: object = None):
        super().__init__(text)
        self._document = document
        self.before, self.after = before, after
        self.merge_key = merge_key

    def id(self) -> int:  # noqa: A003 - Qt API
        return _MERGEABLE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, StateCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        self.setObsolete(self.after == self.before)  # a drag back to the start is no step
        return True

    def redo(self) -> None:
        self._document._replay(self.after)

    def undo(self) -> None:
        self._document._replay(self.before)


class Document(QObject):
    changed = Signal(object)  # EditorState
    modified_changed = Signal(bool)
    history_reset = Signal()  # before the new state's `changed`: no undo reaches back past it

    def __init__(self, state: EditorState | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._state = state or EditorState()
        self.undo_stack = QUndoStack(self)
        self._merge_round = 0
        # unsaved work carried over a history reset (a new model keeps the stack): the
        # undo stack is clean then, but the user's changes are not saved anywhere
        self._unsaved_reset = False
        self._replaying = False  # a step's undo or redo is under way
        self._generation = 0  # bumped by every reset: see `generation`
        self._revision = 0  # bumped by every change, undo and redo: see `revision`
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)

    @property
    def generation(self) -> int:
        """Which document this is: a reset (another session opened, a new model's history)
        makes it another one; changes, their undo and redo do not. Work started for one
        document (an inversion) checks it before landing in the document open then."""
        return self._generation

    @property
    def revision(self) -> int:
        """Bumped by every change the user makes, and by its undo and redo; not by a reset.
        Whether the user worked on the document between two moments (while a model that
        a question was answered for loaded, say)."""
        return self._revision

    @property
    def modified(self) -> bool:
        """Whether there are changes that no save holds."""
        return self._unsaved_reset or not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()
        self._unsaved_reset = False
        self._emit_modified()

    def _emit_modified(self) -> None:
        self.modified_changed.emit(self.modified)

    def _on_clean_changed(self, clean: bool) -> None:
        # from the signal's value, not by asking the stack: it also comes while the stack
        # is being destroyed with the window
        self.modified_changed.emit(self._unsaved_reset or not clean)

    @property
    def state(self) -> EditorState:
        return self._state

    def change(self, new_state: EditorState, text: str, merge_key: object = None) -> None:
        """Make `new_state` current as one undoable step (merged with the previous step
        when both carry the same merge key within one drag)."""
        if new_state == self._state or self._replaying:
            return  # a panel echoing the state being restored is no step of its own
        key = None if merge_key is None else (merge_key, self._merge_round)
        top = self._open_step(key)
        if top is not None and new_state != top.before:
            # merged here, as push would merge it: PySide keeps every command pushed
            # alive, the ones Qt merged and deleted too, so each event of every drag
            # stayed in memory with its state for the rest of the session
            top.after = new_state
            self._replay(new_state)
        else:  # a new step, or a drag back to its start, which Qt drops
            self.undo_stack.push(StateCommand(self, self._state, new_state, text, key))
        self._revision += 1

    def _open_step(self, key: object) -> StateCommand | None:
        """The last step, where a change with `key` would merge into it: the same key, not
        the saved step, nothing to redo after it. (QUndoStack.push drops the steps to redo
        first and may merge then; such a rare change, during a drag just undone, is left
        to push.)"""
        stack = self.undo_stack
        index = stack.index()
        if key is None or index == 0 or index != stack.count() or index == stack.cleanIndex():
            return None
        top = stack.command(index - 1)
        return top if isinstance(top, StateCommand) and top.merge_key == key else None

    def end_merge(self) -> None:
        """The current drag or typing burst is over: the next change starts a new step."""
        self._merge_round += 1

    def reset(self, state: EditorState, keep_modified: bool = False,
              unsaved: bool = False) -> None:
        """History starts over: an opened session (saved as it is; `unsaved` where it is
        shown otherwise than its file says), or a new model (`keep_modified`: the work
        carried over stays unsaved until it is saved; so does a saved document the reset
        changed, or Save wrote, say, a seed over a saved latent)."""
        unsaved = unsaved or keep_modified and (self.modified
                                                or state.session != self._state.session)
        self._generation += 1  # before the signals: their slots see the new document
        self.undo_stack.clear()
        self.history_reset.emit()
        self._set(state)
        self.undo_stack.setClean()
        self._unsaved_reset = unsaved
        self._emit_modified()

    def _replay(self, state: EditorState) -> None:
        """A step's undo or redo: a change pushed meanwhile (input still pending when the
        panels were refilled) would land inside the step being replayed."""
        self._replaying = True
        self._revision += 1
        try:
            self._set(state)
        finally:
            self._replaying = False

    def _set(self, state: EditorState) -> None:
        self._state = state
        self.changed.emit(state)
