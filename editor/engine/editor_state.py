"""What the editor window edits: the session plus the prompt being tuned (the draft).

Qt-free and immutable, so undo/redo is a swap of two values and tests need no window. The
draft is the prompt panel's edit before "add to stack": it is shown live on top of the
stack and exported with it (the picture on screen is what gets saved), but it is not part
of the stack until the user adds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .session import Edit, Session

DEFAULT_NEUTRAL = "a face"


def new_draft(neutral: str = DEFAULT_NEUTRAL, target: str = "", beta: float = 0.15,
              strength: float = 0.0) -> Edit:
    return Edit(kind="global", params={"neutral": neutral, "target": target, "beta": beta},
                strength=strength)


@dataclass(frozen=True)
class EditorState:
    session: Session = field(default_factory=Session)
    draft: Edit = field(default_factory=new_draft)

    def rendered_session(self) -> Session:
        """The session the canvas shows and exports: the stack plus a draft that has a
        target prompt and a non-zero strength."""
        d = self.draft
        if d.enabled and d.strength != 0 and str(d.params.get("target", "")).strip():
            return self.session.add_edit(d)
        return self.session

    def with_session(self, session: Session) -> EditorState:
        return replace(self, session=session)

    def with_draft(self, draft: Edit) -> EditorState:
        return replace(self, draft=draft)

    def update(self, edit_id: str, **changes) -> EditorState:
        """Change the draft or a stack edit, whichever has this id."""
        if edit_id == self.draft.id:
            return replace(self, draft=replace(self.draft, **changes))
        return replace(self, session=self.session.update_edit(edit_id, **changes))

    def edit(self, edit_id: str) -> Edit:
        return self.draft if edit_id == self.draft.id else self.session.edit(edit_id)

    def commit_draft(self) -> EditorState:
        """Put the draft on the stack; a fresh draft keeps its prompts at strength 0, so
        the next edit starts from the same wording without changing the picture."""
        d = self.draft
        fresh = new_draft(d.params.get("neutral", DEFAULT_NEUTRAL), d.params.get("target", ""),
                          d.params.get("beta", 0.15))
        return EditorState(self.session.add_edit(d), fresh)
