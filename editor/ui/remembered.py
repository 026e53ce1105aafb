"""Small per-file memories kept in QSettings: the crop chosen for each picture, the CLIP
each generator was last used with.

One JSON value per memory, not a settings key per file: paths contain "/" (QSettings'
group separator), and the memory must stay bounded (the oldest entries are forgotten).
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QSettings


class RememberedMap:
    """A bounded mapping from file keys to JSON values, newest first."""

    def __init__(self, settings_key: str, limit: int):
        self.settings_key = settings_key
        self.limit = limit

    def all(self) -> dict[str, Any]:
        try:
            found = json.loads(str(QSettings().value(self.settings_key, "{}")))
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def get(self, key: str) -> Any:
        return self.all().get(key)

    def put(self, key: str, value: Any) -> None:
        entries = {key: value}  # newest first, so the cut drops the oldest
        entries.update((k, v) for k, v in self.all().items() if k != key)
        QSettings().setValue(self.settings_key,
                             json.dumps(dict(list(entries.items())[:self.limit])))
