"""Reading QSettings values that may be anything: the settings file is the user's (or an
older version's, or a crashed write's), so every value is checked for its type and range
and a bad one counts as absent. A bad value must never stop the program from starting."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from editor.core.paths import holds_undecoded_bytes


def byte_array(settings: QSettings, key: str) -> QByteArray | None:
    value = settings.value(key)
    if isinstance(value, QByteArray):
        return value
    if isinstance(value, bytes | bytearray):
        return QByteArray(bytes(value))
    return None


def integer(settings: QSettings, key: str, default: int, low: int, high: int) -> int:
    """An integer within low..high: a number stored as text is read, one out of range is
    clamped, anything else is the default."""
    value = settings.value(key, default)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return default
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(max(value, low), high)


def keeps(path: str) -> bool:
    """Whether a settings value holds this path as it is. Qt's strings drop the lone
    surrogates of a name that is not UTF-8: "caf\\xe9.pt" came back as "caf.pt", and Open
    recent or the next start opened that other file (or found none)."""
    return not holds_undecoded_bytes(path)


def set_path(settings: QSettings, key: str, path: str) -> None:
    """Store a path, or forget the key where the path cannot be kept (see keeps)."""
    if keeps(path):
        settings.setValue(key, path)
    else:
        settings.remove(key)


def text(settings: QSettings, key: str, default: str = "") -> str:
    value = settings.value(key, default)
    return value if isinstance(value, str) else default


def text_list(settings: QSettings, key: str) -> list[str]:
    """A list of non-empty strings; a single string (how QSettings stores a one-item list
    in some formats) is a one-item list, and other entries are dropped."""
    value = settings.value(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, str) and v]


def number(settings: QSettings, key: str, default: float, low: float, high: float) -> float:
    """A finite float within low..high (clamped); anything else is the default."""
    value = settings.value(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    if value != value or value in (float("inf"), float("-inf")):
        return default
    return min(max(value, low), high)


def flag(settings: QSettings, key: str, default: bool) -> bool:
    """A boolean: true/false as QSettings writes them (text in INI files), else default."""
    value = settings.value(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default
