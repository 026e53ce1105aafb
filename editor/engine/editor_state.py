"""What the editor window edits: the session plus the prompt being tuned (the draft).

Qt-free and immutable, so undo/redo is a swap of two values and tests need no window. The
draft is the prompt panel's edit before "add to stack": it is shown live on top of the
stack and exported with it (the picture on screen is what gets saved), but it is not part
of the stack until the user adds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .session import Edit, Session

# As StyleCLIP's examples ("face" -> "face with blonde hair") and `atelier edit`: "a face"
# put "a photo of a a face." against "a photo of a face with blonde hair." in the
# template ensemble, so the direction also carried the extra article.
DEFAULT_NEUTRAL = "face"
DRAFT_KEY = "draft_id"  # in a session file: the edit that is the prompt being written


@dataclass(frozen=True)
class EditDefaults:
    """How a model pack's new text edits start. β is a cosine in the CLIP model's space, so
    its useful range belongs to the CLIP model: StyleCLIP's 0.1-0.15 suits ViT-B/32 with its
    6,048 FFHQ channels, while a small CLIP's relevance vectors share more of their
    direction and pass far more channels at the same β."""

    alpha: float = 4.0
    beta: float = 0.15
    auto_beta: bool = False
    min_channels: int = 10  # auto-β keeps at least this many channels
    gate: bool = False  # keep channels that also vary with the text (covariation)

    def beta_params(self) -> dict:
        """How a new text edit picks its channels: β (or auto-β) and the gate."""
        params: dict = {"beta": self.beta}
        if self.auto_beta:
            params.update(auto_beta=True, min_channels=self.min_channels)
        if self.gate:
            params["gate"] = True
        return params


def new_draft(neutral: str = DEFAULT_NEUTRAL, target: str = "",
              defaults: EditDefaults | None = None, strength: float = 0.0) -> Edit:
    params = {"neutral": neutral, "target": target,
              **(defaults or EditDefaults()).beta_params()}
    return Edit(kind="global", params=params, strength=strength)


BETA_KEYS = ("beta", "auto_beta", "min_channels", "gate")  # how a text edit picks channels


def _beta_params_of(edit: Edit) -> dict:
    return {k: edit.params[k] for k in BETA_KEYS if k in edit.params}


def draft_for_pack(draft: Edit, neutral: str, defaults: EditDefaults,
                   old_neutral: str) -> Edit:
    """The draft when another model pack opens. A typed target stays, but it picks its
    channels as the new pack's edits do (β's useful range belongs to its CLIP), and a
    neutral that was the old pack's own ("a cartoon face") becomes the new pack's: the
    demo's gate and auto-β once stayed on a pack without the co-variation they need."""
    if not str(draft.params.get("target", "")).strip():
        return new_draft(neutral, defaults=defaults)
    params = {k: v for k, v in draft.params.items() if k not in BETA_KEYS}
    if params.get("neutral") == old_neutral:
        params["neutral"] = neutral
    return replace(draft, params={**params, **defaults.beta_params()})


def replayed_session(recipe: dict) -> Session:
    """The picture a recipe or session file describes: its session, less a prompt that was
    being written at strength 0 (a session file keeps it only to give it back to the
    prompt panel; a replay that kept it wrote it into its own recipe as a stack edit)."""
    session = Session.from_recipe(recipe)
    draft_id = recipe.get(DRAFT_KEY)
    if any(e.id == draft_id and e.strength == 0 for e in session.edits):
        session = session.remove_edit(draft_id)
    return session


@dataclass(frozen=True)
class EditorState:
    session: Session = field(default_factory=Session)
    draft: Edit = field(default_factory=new_draft)

    @property
    def draft_drawn(self) -> bool:
        """Whether the draft is drawn on top of the stack: it has a target prompt and a
        non-zero strength."""
        d = self.draft
        return d.enabled and d.strength != 0 and bool(str(d.params.get("target", "")).strip())

    def rendered_session(self) -> Session:
        """The session the canvas shows and exports: the stack plus the draft when drawn."""
        return self.session.add_edit(self.draft) if self.draft_drawn else self.session

    def to_session_file(self, session: Session) -> dict:
        """What a session file holds: `session` (the rendered one, with the models'
        identities), which replays the picture on screen anywhere, plus which of its edits
        is the prompt still being written, so that reopening makes it the draft again.
        A prompt written but not drawn (at strength 0) is kept too, as an edit of strength
        0, which adds nothing to the picture: it was lost on reopening."""
        written = self.draft.enabled and bool(str(self.draft.params.get("target", "")).strip())
        if written and not self.draft_drawn:  # a drawn one is one of the session's edits
            session = session.add_edit(replace(self.draft, strength=0.0))
        recipe = session.to_recipe()
        if written:
            recipe[DRAFT_KEY] = self.draft.id
        return recipe

    def with_saved_draft(self, draft_id: object) -> EditorState:
        """A session file's draft back in the prompt panel (see `to_session_file`); a
        recipe without one, or naming no edit, is left as it is."""
        if not isinstance(draft_id, str) or draft_id not in {e.id for e in self.session.edits}:
            return self
        return EditorState(self.session.remove_edit(draft_id), self.session.edit(draft_id))

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
        fresh = new_draft(d.params.get("neutral", DEFAULT_NEUTRAL), d.params.get("target", ""))
        fresh = replace(fresh, params={**fresh.params, **_beta_params_of(d)})
        return EditorState(self.session.add_edit(d), fresh)
