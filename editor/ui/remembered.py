"""Small per-file memories kept in QSettings: the crop chosen for each picture, the CLIP
each generator was last used with.

One JSON value per memory, not a settings key per file: paths contain "/" (QSettings'
group separator), and the memory must stay bounded (the oldest entries are forgotten).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from editor.engine.packs import ClipSource


class RememberedMap:
    """A bounded mapping from file keys to JSON values, newest first."""

    def __init__(self, settings_key: str, limit: int):
        self.settings_key = settings_key
        self.limit = limit

    def all(self) -> dict[str, Any]:
        try:
            found = json.loads(str(QSettings().value(self.settings_key, "{}")))
        except (ValueError, RecursionError):  # a hand-edited value: never stops the start
            return {}
        return found if isinstance(found, dict) else {}

    def get(self, key: str) -> Any:
        return self.all().get(key)

    def forget(self, key: str) -> None:
        entries = self.all()
        if entries.pop(key, None) is not None:
            QSettings().setValue(self.settings_key, json.dumps(entries))

    def put(self, key: str, value: Any) -> None:
        entries = {key: value}  # newest first, so the cut drops the oldest
        entries.update((k, v) for k, v in self.all().items() if k != key)
        QSettings().setValue(self.settings_key,
                             json.dumps(dict(list(entries.items())[:self.limit])))


# generator path -> the CLIP it was last opened with
REMEMBERED_CLIPS = RememberedMap("model/clips", limit=32)


def remembered_clip(generator_path: str) -> ClipSource | None:
    """The CLIP this generator was last used with, if it is remembered (and still well
    formed): the default otherwise."""
    spec = REMEMBERED_CLIPS.get(generator_path)
    if not isinstance(spec, dict):
        return None
    try:
        clip = ClipSource(**spec)
    except TypeError:
        return None
    if not all(v is None or isinstance(v, str) for v in (clip.path, clip.arch, clip.tag)):
        return None
    if clip.path and not Path(clip.path).is_file():
        return None  # deleted since: the default, rather than a pack without text edits
    return clip if clip.path or (clip.arch and clip.tag) else None
