"""The model zoo: known pretrained files, verified resumable downloads, local imports.

The registry is data: `zoo_registry.json` beside this module, plus the user's own
`<config_dir>/zoo_registry.json` (same format; an entry there with a built-in name replaces
it, e.g. to point at a mirror). Both are validated when read.

Installed files live in `<cache_dir>/models/<name>/<filename>`, and
`<cache_dir>/models/index.json` records each one with the sha256 it had and whether that
was checked against a hash the registry knows ("verified").

Downloads use urllib only. A download streams into `<file>.part`, resumes an existing part
with an HTTP Range request (starting over when the server ignores Range), checks size and
sha256 where the registry knows them, and only then renames the part into place: a file
under its final name is always complete. Nothing here starts a download by itself.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import http.client
import json
import logging
import os
import re
import select
import shutil
import socket
import ssl
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import AtelierError, Cancelled, ZooDownloadError, first_line, one_line
from .hashing import file_sha256
from .paths import atomic_path, atomic_write_text, cache_dir, config_dir, replace_file

try:  # POSIX: lock the part file against a second downloader in another program
    import fcntl
except ImportError:  # Windows: only downloads within this program are kept apart
    fcntl = None

log = logging.getLogger(__name__)

REGISTRY_PATH = Path(__file__).with_name("zoo_registry.json")
USER_REGISTRY_NAME = "zoo_registry.json"
INDEX_NAME = "index.json"
INDEX_LOCK_NAME = "index.lock"  # beside the index: taken by every program that writes it
REGISTRY_VERSION = 1
INDEX_VERSION = 1

KINDS = ("generator", "clip")
FORMAT_KIND = {"rosinality-pt": "generator", "nvidia-pkl": "generator", "open_clip": "clip"}
_REQUIRED = ("name", "kind", "format", "url", "licence", "description")
_OPTIONAL = ("filename", "size", "sha256", "homepage", "resolution", "arch", "tag", "source")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_NAME_CHARS = 200  # a name given on import: its folder and `.claims/<name>.lock` fit in 255
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE_RE = re.compile(r"^bytes\s+\*/(\d+)$")
# Beside `<file>.part`: what the server said of the file when the part was started (ETag,
# Last-Modified, size), so that a resume appends only to the same file.
PART_INFO_SUFFIX = ".part.json"

CHUNK_SIZE = 1 << 20  # the most read at once; progress is reported at least per chunk
USER_AGENT = "latent-atelier-zoo/1"
# How often a download waiting on the network looks at its cancel token, and the longest
# it waits before reporting the bytes that arrived (seconds).
POLL_S = 0.25
# Pause before resuming after a dropped connection (seconds, times the attempt number).
RETRY_DELAY_S = 1.0
# How often a download opens its part file again when another program renamed or deleted
# it between the open and the lock (each time means another download just finished).
_PART_OPEN_TRIES = 5

ProgressCallback = Callable[[int, int | None], None]
CancelToken = threading.Event | Callable[[], bool] | None
DOWNLOAD_CLAIM = "download"  # what a download's claim on its entry's name says it writes
# reads a file as a model (model_files.identify_model_file in the app): (path, the CLIP
# architecture the registry expects or None, stopped() that ends a long read early) -> what
# it is (.kind; .resolution, .arch)
Identify = Callable[[Path, str | None, Callable[[], bool]], Any]


class ZooRegistryError(AtelierError):
    """A registry file is malformed, or a model name is not in the registry."""


class UnknownModelError(ZooRegistryError):
    """No registry entry has this name."""


class DownloadCancelled(ZooDownloadError, Cancelled):
    """The caller cancelled a download; its `.part` file was kept for resuming."""


class ZooImportError(ZooDownloadError):
    """A local file could not be imported into the model cache."""


class ImportCancelled(ZooImportError, Cancelled):
    """The caller cancelled an import before it was recorded: nothing was installed."""


class _NotTheEntry(ZooImportError):
    """The file reads as another kind or size of model than its registry entry."""


@dataclass(frozen=True)
class ZooEntry:
    """One known pretrained file."""

    name: str
    kind: str  # "generator" | "clip"
    format: str  # "rosinality-pt" | "nvidia-pkl" | "open_clip"
    url: str
    filename: str
    licence: str
    description: str
    size: int | None = None  # bytes, when known
    sha256: str | None = None  # lowercase hex, when known
    homepage: str | None = None  # a page a person can open to get the file by hand
    resolution: int | None = None  # generators
    arch: str | None = None  # CLIP: open_clip architecture, e.g. "ViT-B-32"
    tag: str | None = None  # CLIP: open_clip pretrained tag, e.g. "openai"
    source: str | None = None  # where the URL, size and hash were taken from
    origin: str = "builtin"  # "builtin" or the path of the user registry it came from


@dataclass(frozen=True)
class InstalledModel:
    """A file in the model cache, as the index records it."""

    name: str
    path: Path
    sha256: str
    size: int
    verified: bool  # the sha256 matched the one the registry knows
    entry: str | None  # the registry entry this file is, None for an unknown file
    kind: str | None
    format: str | None
    source: str  # the URL it was downloaded from, or the path it was imported from
    added: str  # ISO-8601 time, UTC
    # CLIP: the open_clip architecture it is loaded as (the registry's, or the one its
    # weights fit); None for a generator, and for a CLIP file that carries its own config
    arch: str | None = None


# --------------------------------------------------------------------------- registry


def _check_url(value: Any, allow_http: bool) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    parts = urllib.parse.urlsplit(value)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.netloc:
        return f"must be an {' or '.join(schemes)} URL, got '{value}'"
    return None


def _default_filename(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def _check_filename(value: str) -> str | None:
    if not value or value in (".", "..") or value.startswith("."):
        return f"'{value}' is not a usable file name"
    if "/" in value or "\\" in value or "\x00" in value:
        return f"'{value}' must be a plain file name, without folders"
    if value.endswith((".part", PART_INFO_SUFFIX)):
        return f"must not end in .part or {PART_INFO_SUFFIX} (used for partial downloads)"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry_problems(raw: dict, allow_http: bool) -> list[str]:
    """Everything wrong with one raw entry, as readable phrases."""
    problems = [f"unknown field '{k}'" for k in raw if k not in _REQUIRED + _OPTIONAL]
    problems += [f"missing field '{k}'" for k in _REQUIRED if k not in raw]
    name, kind, fmt = raw.get("name"), raw.get("kind"), raw.get("format")
    if "name" in raw and not (isinstance(name, str) and _NAME_RE.match(name)):
        problems.append("name must use lowercase letters, digits, '.', '_' and '-'")
    elif name in (INDEX_NAME, INDEX_LOCK_NAME):  # its folder would take the index's place
        problems.append(f"the name '{name}' is reserved for the model index")
    if "kind" in raw and kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    if "format" in raw and fmt not in FORMAT_KIND:
        problems.append(f"format must be one of {', '.join(FORMAT_KIND)}")
    elif fmt in FORMAT_KIND and kind in KINDS and FORMAT_KIND[fmt] != kind:
        problems.append(f"format '{fmt}' is for a {FORMAT_KIND[fmt]}, not a {kind}")
    if "url" in raw and (why := _check_url(raw["url"], allow_http)):
        problems.append(f"url {why}")
    for key in ("licence", "description"):
        if key in raw and not (isinstance(raw[key], str) and raw[key].strip()):
            problems.append(f"{key} must be a non-empty string")
    filename = raw.get("filename")
    if filename is None and isinstance(raw.get("url"), str):
        filename = _default_filename(raw["url"])
    if not isinstance(filename, str):
        problems.append("filename must be a string")
    elif why := _check_filename(filename):
        problems.append(f"filename {why}")
    for key in ("size", "resolution"):
        if raw.get(key) is not None and not (_is_int(raw[key]) and raw[key] > 0):
            problems.append(f"{key} must be a positive integer or null")
    sha = raw.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256_RE.match(sha.lower())):
        problems.append("sha256 must be 64 hexadecimal digits or null")
    if raw.get("homepage") is not None and (why := _check_url(raw["homepage"], True)):
        problems.append(f"homepage {why}")
    for key in ("arch", "tag"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            problems.append(f"{key} must be a non-empty string")
        elif value is None and kind == "clip":
            problems.append(f"a clip entry needs '{key}' (the open_clip {key})")
    if raw.get("source") is not None and not isinstance(raw["source"], str):
        problems.append("source must be a string")
    return problems


def _entry_from_raw(raw: dict, origin: str) -> ZooEntry:
    values = {k: raw.get(k) for k in _REQUIRED + _OPTIONAL}
    values["filename"] = values["filename"] or _default_filename(raw["url"])
    if values["sha256"]:
        values["sha256"] = values["sha256"].lower()
    return ZooEntry(**values, origin=origin)


def parse_registry(data: Any, where: str, *, allow_http: bool = False,
                   origin: str = "builtin") -> list[ZooEntry]:
    """Validate a parsed registry (`{"version": 1, "entries": [...]}` or a bare list of
    entries) and return its entries. Every problem found is reported at once."""
    if isinstance(data, dict):
        version = data.get("version", REGISTRY_VERSION)
        if version != REGISTRY_VERSION:
            raise ZooRegistryError(f"{where}: registry version {version!r} is not supported "
                                   f"(this program reads version {REGISTRY_VERSION})")
        data = data.get("entries")
    if not isinstance(data, list):
        raise ZooRegistryError(f"{where}: expected a list of entries (or an object with an "
                               "'entries' list)")
    problems: list[str] = []
    entries: list[ZooEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            problems.append(f"entry {i + 1}: must be a JSON object")
            continue
        label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{i + 1}"
        found = _entry_problems(raw, allow_http)
        if label in seen:
            found.append("the name is used twice")
        seen.add(label)
        if found:
            problems.append(f"entry '{label}': " + "; ".join(found))
        else:
            entries.append(_entry_from_raw(raw, origin))
    if problems:
        raise ZooRegistryError(f"{where}: " + " | ".join(problems))
    return entries


def load_registry_file(path: str | os.PathLike, *, allow_http: bool = False,
                       origin: str = "builtin") -> list[ZooEntry]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ZooRegistryError(f"cannot read the model registry {path}: {e.strerror or e}") from e
    except ValueError as e:  # JSONDecodeError and bad UTF-8 alike
        raise ZooRegistryError(f"the model registry {path} is not valid JSON: {e}") from e
    return parse_registry(data, str(path), allow_http=allow_http, origin=origin)


@lru_cache(maxsize=1)
def _builtin_entries() -> tuple[ZooEntry, ...]:
    return tuple(load_registry_file(REGISTRY_PATH))


def user_registry_path() -> Path:
    """Where users add or override entries (same format as the built-in registry)."""
    return config_dir() / USER_REGISTRY_NAME


def list_entries(include_user: bool = True) -> list[ZooEntry]:
    """Built-in entries in registry order, then the user's; a user entry with a built-in
    name replaces that entry in place. User entries may use plain http URLs."""
    entries = {e.name: e for e in _builtin_entries()}
    try:
        user = user_registry_path() if include_user else None
    except OSError as e:  # a config folder that cannot be made holds no entries
        log.warning("no user registry: %s", e)
        user = None
    if user is not None and user.is_file():
        for e in load_registry_file(user, allow_http=True, origin=str(user)):
            entries[e.name] = e
    return list(entries.values())


def registry_entries() -> tuple[list[ZooEntry], str | None]:
    """list_entries() for listing and downloading: a user registry that cannot be read
    leaves the built-in entries usable, and comes back as one line saying so (else None)."""
    try:
        return list_entries(), None
    except ZooRegistryError as e:
        text = one_line(str(e))
        return list_entries(include_user=False), f"{text} (ignored: fix it to see its models)"


def get_entry(name: str) -> ZooEntry:
    """The registry entry called `name`; UnknownModelError lists the known names."""
    entries, problem = registry_entries()
    key = name.strip().lower()
    for entry in entries:
        if entry.name == key:
            return entry
    names = [e.name for e in entries]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    also = f" Note: {problem}" if problem else ""
    raise UnknownModelError(
        f"unknown model '{name}'.{hint} Known models: {', '.join(names)}.{also}")


def _as_entry(entry_or_name: ZooEntry | str) -> ZooEntry:
    return entry_or_name if isinstance(entry_or_name, ZooEntry) else get_entry(entry_or_name)


# ------------------------------------------------------------------------------ index

_index_lock = threading.RLock()  # index updates are read-modify-write


def models_dir() -> Path:
    """The cache folder that holds installed models and their index (created on demand).
    One that cannot be made (a read-only cache) is still named: reading it finds nothing
    installed, and writing in it fails with the system's reason, where a write is asked
    (make_models_dir says why beforehand)."""
    folder = cache_dir() / "models"
    if make_models_dir(folder) is not None:
        log.debug("cannot make %s", folder)
    return folder


def make_models_dir(folder: Path | None = None) -> str | None:
    """Make the models folder where it is missing; why it cannot be, in words ("read-only
    file system"), or None."""
    folder = folder or cache_dir() / "models"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"{e.filename or folder}: {(e.strerror or str(e)).lower()}"
    return None


def _index_path() -> Path:
    return models_dir() / INDEX_NAME


def _read_index() -> dict[str, dict]:
    try:
        path = _index_path()
    except OSError as e:  # a cache folder that cannot be made holds no models
        log.warning("no model cache: %s", e)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        # Losing the index loses no model files; they can be imported again. It is set
        # aside, not overwritten by the next import, so that its records can be mended;
        # an index damaged again is set aside beside it (index.json.bad-2), not over it.
        aside = path.with_name(path.name + ".bad")
        number = 1
        while aside.exists() and number < 100:
            number += 1
            aside = path.with_name(f"{path.name}.bad-{number}")
        try:
            os.replace(path, aside)
        except OSError:
            aside = path
        log.warning("the model index %s is damaged (%s); kept as %s, the models in %s "
                    "can be imported again", path, e, aside.name, path.parent)
        return {}
    except OSError as e:
        log.warning("ignoring the unreadable model index %s (%s)", path, e)
        return {}
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return {}
    return {k: v for k, v in models.items() if isinstance(v, dict)}


def _write_index(models: dict[str, dict]) -> None:
    text = json.dumps({"version": INDEX_VERSION, "models": models}, indent=2, sort_keys=True)
    atomic_write_text(_index_path(), text + "\n")


def _stored_path(path: Path) -> str:
    """Paths inside the models folder are stored relative to it, so the cache can move."""
    try:
        return path.resolve().relative_to(models_dir().resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _to_record(model: InstalledModel) -> dict:
    return {"path": _stored_path(model.path), "sha256": model.sha256, "size": model.size,
            "verified": model.verified, "entry": model.entry, "kind": model.kind,
            "format": model.format, "source": model.source, "added": model.added,
            "arch": model.arch}


def _from_record(name: str, rec: dict) -> InstalledModel | None:
    try:
        path = Path(rec["path"])
        return InstalledModel(
            name=name, path=path if path.is_absolute() else models_dir() / path,
            sha256=str(rec["sha256"]), size=int(rec["size"]), verified=bool(rec["verified"]),
            entry=rec.get("entry"), kind=rec.get("kind"), format=rec.get("format"),
            source=str(rec.get("source", "")), added=str(rec.get("added", "")),
            arch=rec["arch"] if isinstance(rec.get("arch"), str) else None)
    except (KeyError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def _index_locked():
    """Hold the index against other threads and, on POSIX, other programs (a download in
    the window while the CLI imports): without it one program's record was lost."""
    with _index_lock:
        handle = None
        if fcntl is not None:
            try:
                handle = open(models_dir() / INDEX_LOCK_NAME, "a+b")  # noqa: SIM115
            except OSError as e:  # e.g. a read-only cache: writing the index fails anyway
                log.debug("cannot open the index lock: %s", e)
        if handle is None:
            yield
            return
        with handle:  # closing it releases the lock
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield


def _record(model: InstalledModel) -> None:
    with _index_locked():
        models = _read_index()
        models[model.name] = _to_record(model)
        _write_index(models)


def installed() -> list[InstalledModel]:
    """What the model cache holds (index entries whose file is still there), by name."""
    # held against other programs too: a damaged index is set aside by its reader, which
    # must not set aside the new one another program wrote in its place meanwhile
    with _index_locked():
        records = _read_index()
    found = (_from_record(name, rec) for name, rec in sorted(records.items()))
    return [m for m in found if m is not None and m.path.is_file()]


def installed_model(name: str) -> InstalledModel | None:
    """The installed file recorded under `name` (or as that registry entry), if any."""
    models = installed()
    for m in models:
        if m.name == name:
            return m
    return next((m for m in models if m.entry == name), None)


@dataclass(frozen=True)
class Removed:
    model: InstalledModel
    file_deleted: bool  # False for a file downloaded into a folder of the user's (--dir)


def remove(name: str) -> Removed:
    """Forget an installed model (by its name, or the registry entry it is) and delete its
    file when it lies in the models folder; a file downloaded elsewhere (--dir) stays where
    the user put it. UnknownModelError when nothing is installed under `name`."""
    model = installed_model(name.strip().lower())
    if model is None:
        names = ", ".join(m.name for m in installed()) or "none"
        raise UnknownModelError(f"no installed model is called '{name}' (installed: {names})")
    # only a file in the model's own folder, where downloads and imports put it: a record
    # pointing elsewhere in the cache (hand-edited: the index itself, another model's file)
    # is taken off the list, as one outside it is (removing it deleted the index)
    inside = model.path.resolve().parent == (models_dir() / model.name).resolve()
    deleted = False
    try:
        with _index_locked():
            models = _read_index()
            models.pop(model.name, None)
            try:
                _write_index(models)
            except OSError as e:
                # a full disk, when models are removed most: the file goes first, then
                # the index has room (a record whose file is gone is not listed anyway)
                if e.errno != errno.ENOSPC or not inside:
                    raise
                _remove_copy(model.path)
                deleted = True
                _write_index(models)
    except OSError as e:  # a read-only cache: the index names a temporary file
        if deleted:
            raise AtelierError(f"{model.name}'s file was deleted, but the model index in "
                               f"{models_dir()} cannot be written ({e.strerror or e}); it "
                               "is no longer listed") from e
        raise AtelierError(f"cannot remove {model.name}: the model index in {models_dir()} "
                           f"cannot be written ({e.strerror or e}); nothing was removed"
                           ) from e
    if inside and not deleted:
        try:
            _remove_copy(model.path)
        except OSError as e:
            raise AtelierError(f"{model.name} is no longer listed, but its file {model.path} "
                               f"could not be deleted ({e.strerror or e})") from e
    return Removed(model, inside)


def clip_entry_names(arch: str, tag: str) -> list[str]:
    """The registry entries that are open_clip's (arch, tag), by name."""
    return [e.name for e in registry_entries()[0]
            if e.kind == "clip" and e.arch == arch and e.tag == tag]


def discard_partial(entry: ZooEntry, dest_dir: str | os.PathLike | None = None) -> int | None:
    """Delete what an interrupted download of `entry` kept for resuming; its size in
    bytes, or None when there is none. ZooDownloadError while a download is writing it."""
    part = part_path(entry, dest_dir)
    if not part.is_file():
        return None
    size = part.stat().st_size
    with _PartFile(part, entry) as held:  # locked: a running download is not cut off
        part.unlink(missing_ok=True)
        held.info_path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the entry's folder, when nothing else is in it
        part.parent.rmdir()
    return size


def installed_clip_weights(arch: str, tag: str) -> Path | None:
    """The installed file of a registry CLIP entry for open_clip's (arch, tag), if any: a
    CLIP downloaded through the zoo serves every use of that (arch, tag), not only the
    files picked by path."""
    entries = set(clip_entry_names(arch, tag))
    return next((m.path for m in installed() if (m.entry or m.name) in entries), None)


def installed_clip_arch(path: str | os.PathLike) -> str | None:
    """The open_clip architecture of an installed CLIP file: its registry entry's, else the
    one its weights were matched to (or named) on import; None for any other file. A
    command given such a file needs no --clip-arch, and loads it as the window does (an
    OpenAI-trained import recorded as -quickgelu is not run with GELU)."""
    try:
        target = Path(path).resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return None
    for m in installed():
        if m.path.resolve() == target:
            entry = next((e for e in registry_entries()[0] if e.name == m.entry), None) \
                if m.entry else None
            return entry.arch if entry is not None else m.arch  # (None for a generator)
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- download


def target_path(entry: ZooEntry, dest_dir: str | os.PathLike | None = None) -> Path:
    """Where `download` puts the entry's file."""
    folder = Path(dest_dir) if dest_dir is not None else models_dir() / entry.name
    return folder / entry.filename


def part_path(entry: ZooEntry, dest_dir: str | os.PathLike | None = None) -> Path:
    """The partial file an interrupted download of the entry leaves for resuming."""
    final = target_path(entry, dest_dir)
    return final.with_name(final.name + ".part")


def part_info_path(part: Path) -> Path:
    """Where the validators of a part file are kept."""
    return part.with_name(part.name.removesuffix(".part") + PART_INFO_SUFFIX)


class _ConnectionDropped(Exception):
    """The transfer stopped early; the part file holds what arrived and can be resumed."""


def _is_cancelled(cancel: CancelToken) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def format_size(n: int | None) -> str:
    """A file size for people ("1.2 GB"; "?" when unknown), in the CLI and the window."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _import_hint(entry: ZooEntry) -> str:
    """How to install a file fetched by hand, in the window and on the command line: one
    the registry has a checksum for is known by it whatever its name, others by name."""
    how = "Import file… in Models ▸ Model packs, or `atelier models import PATH`"
    if entry.sha256:
        return f"import it ({how})"
    return (f"import it under its file name, {entry.filename} ({how}; there "
            f"`--name {entry.name}` takes it under any name)")


def _describe_reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return "the host name could not be looked up"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "the connection timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


def _unreachable_error(entry: ZooEntry, reason: object) -> ZooDownloadError:
    host = _host(entry.url)
    if isinstance(reason, ssl.SSLError):
        return ZooDownloadError(
            f"the secure connection to {host} failed while downloading {entry.name} "
            f"({reason}). Download {entry.filename} by hand and {_import_hint(entry)}.")
    return ZooDownloadError(
        f"could not reach {host} to download {entry.name} ({_describe_reason(reason)}). "
        f"We seem to be offline. Connect and try again, or get {entry.filename} on another "
        f"machine and {_import_hint(entry)}.")


def _http_error(entry: ZooEntry, e: urllib.error.HTTPError) -> ZooDownloadError:
    if 300 <= e.code < 400:  # urllib's reason for a redirect loop spans several lines
        return ZooDownloadError(f"{_host(entry.url)} redirected the download of {entry.name} "
                                f"in a loop (HTTP {e.code}); try again later")
    msg = f"{_host(entry.url)} answered HTTP {e.code} ({e.reason}) for {entry.name}."
    if e.code in (401, 403, 404, 410):
        where = entry.homepage or entry.url
        msg += (f" The file may have moved or need a sign-in: get it from {where} and "
                f"{_import_hint(entry)}.")
    elif e.code == 429 or e.code >= 500:
        msg += " The server is busy or failing; try again later."
    return ZooDownloadError(msg)


class _RangeNotSatisfiable(Exception):
    """HTTP 416 to a resume: the part is as long as the file, or longer (then stale)."""

    def __init__(self, total: int | None):
        super().__init__(f"range not satisfiable (file size {total})")
        self.total = total


class _InsecureRedirect(Exception):
    def __init__(self, url: str, where: str):
        super().__init__(url)
        self.url, self.where = url, where  # where it led, in words


class _NoDowngradeRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed, except from https to anything else: the built-in models
    publish no checksum, so TLS is all that vouches for what arrives, and one plain-http
    hop could send the download anywhere; and never to anything but http(s)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = (urllib.parse.urlsplit(url).scheme for url in (req.full_url, newurl))
        if new not in ("http", "https"):  # urllib would follow ftp too: not a download of
            fp.close()                     # ours, and its failure read as "offline"
            raise _InsecureRedirect(newurl, "to an address that is not a web address")
        if old == "https" and new != "https":
            fp.close()
            raise _InsecureRedirect(newurl, "from https to an insecure address")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngradeRedirects)


def _urlopen(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    return _OPENER.open(request, timeout=timeout)


def _open(entry: ZooEntry, start: int, timeout: float,
          if_range: str | None = None) -> http.client.HTTPResponse:
    """Request the file from byte `start`; with `if_range` (the ETag or Last-Modified the
    part was started with) a server whose file changed sends all of it instead.
    Raises _RangeNotSatisfiable on HTTP 416 to a resume."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
        if if_range:
            headers["If-Range"] = if_range
    request = urllib.request.Request(entry.url, headers=headers)
    try:
        return _urlopen(request, timeout)
    except _InsecureRedirect as e:
        raise ZooDownloadError(
            f"{_host(entry.url)} redirected the download of {entry.name} {e.where} "
            f"({e.url}); refused, since nothing else vouches for the file") from None
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and start:
            m = _UNSATISFIED_RANGE_RE.match((e.headers or {}).get("Content-Range", "").strip())
            raise _RangeNotSatisfiable(int(m[1]) if m else None) from None
        raise _http_error(entry, e) from None
    except urllib.error.URLError as e:
        raise _unreachable_error(entry, e.reason) from None
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets before any data
        raise _unreachable_error(entry, e) from None


def _response_offset(response: http.client.HTTPResponse, start: int) -> tuple[int, int | None]:
    """(byte offset the body starts at, total file size if the server says it)."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if response.status == 200:  # a whole file: a fresh request, or Range was ignored
        return 0, length
    if response.status == 206:
        range_text = response.headers.get("Content-Range", "").strip()
        m = _CONTENT_RANGE_RE.match(range_text)
        total = (int(m[3]) if m[3] != "*" else None) if m else None
        if m and int(m[1]) == start:
            return start, total
        if m and int(m[1]) == 0:  # the file from its first byte: used as a fresh start
            return 0, total
        raise _WrongRange(range_text or "no Content-Range")
    raise ZooDownloadError(f"unexpected HTTP status {response.status} from {response.url}")


class _WrongRange(Exception):
    """A 206 answer whose bytes start neither where asked nor at the file's start."""


def _web_page_error(entry: ZooEntry, response: http.client.HTTPResponse,
                    labelled: str = "") -> ZooDownloadError:
    where = entry.homepage or entry.url
    return ZooDownloadError(
        f"{_host(response.url)} sent a web page{labelled} instead of {entry.filename} (a "
        f"quota, sign-in or confirmation page). Open {where} in a browser, download the "
        f"file, then {_import_hint(entry)}.")


def _reject_web_page(entry: ZooEntry, response: http.client.HTTPResponse) -> None:
    """File hosts (Google Drive above all) answer quota, sign-in and virus-scan notices with
    an HTML page and status 200; never store that as a model."""
    if response.headers.get_content_type() == "text/html":
        raise _web_page_error(entry, response)


_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<!--")
_GZIP_MAGIC = b"\x1f\x8b"


def _first_bytes(entry: ZooEntry, part: _PartFile, response: http.client.HTTPResponse,
                 timeout: float) -> bytes:
    """The start of the body, left in place for the copy (b"" when it cannot be seen)."""
    if response.length == 0:
        return b""
    try:
        return response.peek(64)[:64]
    except TimeoutError as e:
        raise _stalled(entry, part, part.size(), timeout) from e
    except (OSError, ValueError, AttributeError, http.client.HTTPException):
        return b""  # a cancel, or a dropped connection: the copy says which


def _check_content(entry: ZooEntry, response: http.client.HTTPResponse, part: _PartFile,
                   total: int | None, timeout: float) -> None:
    """Before sizes are compared: say what the server sent when it is no file to keep (a
    compressed body against the request, a web page labelled as a file), rather than
    taking its size for a changed file."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise ZooDownloadError(
            f"{_host(response.url)} sent {entry.filename} compressed (Content-Encoding: "
            f"{encoding}) although it was asked for the file itself; that is not the model, "
            "and it was not saved. Try again later, or download the file by hand and "
            f"{_import_hint(entry)}.")
    head = _first_bytes(entry, part, response, timeout)
    if head.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip().lower().startswith(_HTML_STARTS):
        raise _web_page_error(entry, response, " labelled as a file")
    if head.startswith(_GZIP_MAGIC) and entry.size is not None and total is not None \
            and total != entry.size:
        raise ZooDownloadError(
            f"{_host(response.url)} sent {entry.filename} gzip-compressed ({total} bytes, "
            f"the file has {entry.size}); that is not the model, and it was not saved. Try "
            f"again later, or download the file by hand and {_import_hint(entry)}.")


def _check_server_size(entry: ZooEntry, total: int | None, part: _PartFile) -> None:
    if entry.size is not None and total is not None and total != entry.size:
        part.start_at(0)  # the part belongs to another file; emptied, then removed
        raise ZooDownloadError(
            f"the server offers {total} bytes for {entry.name} but the registry expects "
            f"{entry.size}: the file at {entry.url} has changed. Nothing was kept.")


def _check_free_space(entry: ZooEntry, part: _PartFile, need: int) -> None:
    """Refuse before writing when the known or announced size does not fit."""
    try:
        free = shutil.disk_usage(part.path.parent).free
    except OSError:
        return
    if need > free:
        raise ZooDownloadError(
            f"not enough free space for {entry.name} in {part.path.parent}: it needs "
            f"{format_size(need)} more, {format_size(free)} is free. Free some space, or "
            "download into another folder (`atelier models download NAME --dir DIR`).")


def _write_error(entry: ZooEntry, part: Path, e: OSError, done: int) -> ZooDownloadError:
    what = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e)).lower()
    return ZooDownloadError(
        f"cannot write the download of {entry.name} ({what}); {_mb(done)} kept in {part}. "
        "Free some space and run the download again to resume, or delete that file.")


def _save_error(entry: ZooEntry, e: OSError) -> ZooDownloadError:
    """A file-system error outside the transfer (folder, names, permissions), one line."""
    where = f" ({e.filename})" if e.filename else ""
    return ZooDownloadError(f"cannot save {entry.name}{where}: "
                            f"{(e.strerror or str(e)).lower()}")


class _PartFile:
    """The `.part` file, open for writing without truncation and held exclusively: a second
    download of the same file (another thread, or on POSIX another program) is refused
    instead of interleaving its bytes with ours."""

    _held: set[str] = set()
    _held_lock = threading.Lock()

    def __init__(self, path: Path, entry: ZooEntry):
        self.path = path
        self.entry = entry
        self._key = os.path.normcase(os.path.abspath(path))
        self.file: Any = None
        self._owned = False  # True once locked: only then may an empty part be removed

    def _busy(self) -> ZooDownloadError:
        return ZooDownloadError(f"{self.entry.name} is already being downloaded (into "
                                f"{self.path}); wait for that download to finish")

    def __enter__(self) -> _PartFile:
        with self._held_lock:
            if self._key in self._held:
                raise self._busy()
            self._held.add(self._key)
        try:
            for _ in range(_PART_OPEN_TRIES):
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0),
                             0o666)
                self.file = os.fdopen(fd, "r+b")
                self._lock()
                if self.is_at_path():
                    break
                # Another program renamed (installed) or deleted the file between our open
                # and our lock: what we hold is no longer the part. Open the new one.
                self._owned = False
                self.file.close()
                self.file = None
            else:
                raise self._busy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _lock(self) -> None:
        """Lock the open file; refused (and left alone) while another program holds it."""
        if fcntl is not None:
            try:
                fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                # Another downloader's file, maybe still empty: never ours to delete.
                self.file.close()
                self.file = None
                raise self._busy() from None
        self._owned = True

    def is_at_path(self) -> bool:
        """Whether the open file is still the one called `path` (not renamed, not deleted)."""
        try:
            here, there = os.fstat(self.file.fileno()), os.stat(self.path)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def __exit__(self, *exc: object) -> None:
        try:
            if self.file is not None:
                empty = self._owned and self.size() == 0
                if empty and self.is_at_path():  # nothing arrived: leave no trace
                    self.path.unlink(missing_ok=True)  # while still locked
                    self.info_path.unlink(missing_ok=True)
                self.file.close()  # flushes what arrived, so a resume starts after it
        finally:
            with self._held_lock:
                self._held.discard(self._key)

    def size(self) -> int:
        self.file.flush()
        return os.fstat(self.file.fileno()).st_size

    @property
    def info_path(self) -> Path:
        return part_info_path(self.path)

    def info(self) -> dict:
        """What the server said of the file when this part was started ({} if unknown)."""
        try:
            data = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def remember(self, response: http.client.HTTPResponse, total: int | None) -> None:
        """Keep the validators of a response that starts the part from byte 0."""
        info = {"etag": response.headers.get("ETag"), "size": total,
                "last_modified": response.headers.get("Last-Modified")}
        if any(info.values()):
            atomic_write_text(self.info_path, json.dumps(info) + "\n")
        else:
            self.info_path.unlink(missing_ok=True)

    def write(self, data: bytes, done: int) -> None:
        """Append; a full disk or another write error is one line saying what was kept."""
        try:
            self.file.write(data)
        except OSError as e:
            raise _write_error(self.entry, self.path, e, done) from e

    def ready_to_rename(self) -> None:
        """Flush what arrived to the disk before the part is renamed into place. Kept open
        (and locked) where a file lock keeps other programs out; closed elsewhere
        (Windows), where an open file cannot be renamed: the downloads of this program
        stay kept apart until the end all the same."""
        self.file.flush()
        os.fsync(self.file.fileno())
        if fcntl is None:
            self.file.close()
            self.file = None

    def start_at(self, offset: int) -> None:
        """Append from `offset` (the current size), or start over when it is 0."""
        if offset == 0:
            self.file.seek(0)
            self.file.truncate()
        else:
            self.file.seek(offset)


def _cancelled(entry: ZooEntry, part: _PartFile, done: int) -> DownloadCancelled:
    if not done:
        return DownloadCancelled(f"download of {entry.name} cancelled before any of it "
                                 "arrived")
    return DownloadCancelled(f"download of {entry.name} cancelled; {_mb(done)} kept in "
                             f"{part.path}. Start it again to resume.")


def _stalled(entry: ZooEntry, part: _PartFile, done: int, timeout: float) -> ZooDownloadError:
    return ZooDownloadError(
        f"{_host(entry.url)} stopped sending {entry.name} (nothing for {timeout:g} s); "
        f"{_mb(done)} kept in {part.path}. Run the download again to resume.")


class _OpenInBackground(threading.Thread):
    """urlopen on a helper thread, so that a cancel is not kept waiting for a server that
    does not answer: the waiting caller gives up, and the helper closes what comes late."""

    def __init__(self, entry: ZooEntry, start: int, timeout: float, if_range: str | None):
        super().__init__(name=f"open {entry.name}", daemon=True)
        self.args = (entry, start, timeout, if_range)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.abandoned = False
        self.outcome: Any = None

    def run(self) -> None:
        try:
            outcome: Any = _open(*self.args)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            outcome = e
        with self.lock:
            if not self.abandoned:
                self.outcome = outcome
                self.done.set()
                return
        if isinstance(outcome, http.client.HTTPResponse):
            outcome.close()

    def wait(self, cancel: CancelToken) -> http.client.HTTPResponse | None:
        """The response; None if cancelled first (the helper is then left to finish)."""
        while not self.done.wait(POLL_S):
            if _is_cancelled(cancel):
                with self.lock:
                    if not self.done.is_set():
                        self.abandoned = True
                        return None
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _open_cancellable(entry: ZooEntry, start: int, timeout: float, if_range: str | None,
                      cancel: CancelToken) -> tuple[http.client.HTTPResponse | None, bool]:
    """(_open's answer, whether the caller cancelled while it waited)."""
    if cancel is None:
        return _open(entry, start, timeout, if_range), False
    opener = _OpenInBackground(entry, start, timeout, if_range)
    opener.start()
    response = opener.wait(cancel)
    return response, opener.abandoned


@contextlib.contextmanager
def _wake_on_cancel(response: http.client.HTTPResponse, cancel: CancelToken):
    """While the body is read: a cancel shuts the connection down, so that a read blocked
    on a slow or silent server returns at once instead of after the socket's timeout."""
    if cancel is None:
        yield
        return
    try:  # a duplicate of the connection's socket: shutting it down ends both
        sock = socket.socket(fileno=os.dup(response.fp.fileno()))
    except (OSError, ValueError, AttributeError):  # e.g. Windows: cancel at the next read
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_S):
            if _is_cancelled(cancel):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = threading.Thread(target=watch, name="download cancel watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        sock.close()


def _transfer_once(entry: ZooEntry, part: _PartFile, progress: ProgressCallback | None,
                   cancel: CancelToken, timeout: float) -> None:
    """One HTTP request, appending to the part file. Raises _ConnectionDropped when the
    stream ends early, DownloadCancelled when asked to stop (the part is kept either way),
    ZooDownloadError when the server sends nothing for `timeout` seconds."""
    start = part.size()
    if entry.size is not None and start > entry.size:
        part.start_at(0)
        start = 0
    if entry.size is not None and start == entry.size:
        return  # whole already; verification decides whether it is right
    info = part.info() if start else {}
    try:
        response, cancelled = _open_cancellable(entry, start, timeout, _if_range(info),
                                                cancel)
    except _RangeNotSatisfiable as e:
        if e.total is not None and e.total == start:
            return  # the part is the whole file; verification decides whether it is right
        log.info("%s: the part is longer than the file on the server; starting over",
                 entry.name)
        return _start_over(entry, part, progress, cancel, timeout)
    if cancelled:
        raise _cancelled(entry, part, start)
    with response, _wake_on_cancel(response, cancel):
        try:
            offset, total = _response_offset(response, start)
        except _WrongRange as e:
            if not start:
                raise ZooDownloadError(
                    f"{_host(entry.url)} answered the request for all of {entry.name} with "
                    f"part of it ({e}); the server is misbehaving. Try again later, or "
                    f"download the file by hand and {_import_hint(entry)}.") from None
            log.info("%s: asked for bytes from %d, the server answered %s; downloading "
                     "the whole file again", entry.name, start, e)
            response.close()  # its resumes cannot be trusted: the whole file, no Range
            return _start_over(entry, part, progress, cancel, timeout)
        _reject_web_page(entry, response)
        if offset and info.get("size") and total and info["size"] != total:
            response.close()  # a server without validators, whose file changed size
            return _start_over(entry, part, progress, cancel, timeout)
        if offset == 0:
            _check_content(entry, response, part, total, timeout)
        _check_server_size(entry, total, part)
        _check_free_space(entry, part, (total or entry.size or 0) - offset)
        if offset == 0:
            part.remember(response, total)
        total = total if total is not None else entry.size
        part.start_at(offset)
        done = _copy_body(entry, response, part, offset, total, progress, cancel, timeout)
    if total is not None and done < total:
        raise _ConnectionDropped(f"the server closed the connection at {_mb(done)}")


def _readable(response: http.client.HTTPResponse, seconds: float) -> bool:
    """Whether more of the body arrives within `seconds` (a hint only: True when unsure)."""
    try:
        return bool(select.select([response.fp.fileno()], [], [], seconds)[0])
    except (OSError, ValueError, AttributeError):
        return True


def _if_range(info: dict) -> str | None:
    """The validator to resume with: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = info.get("etag")
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    modified = info.get("last_modified")
    return modified if isinstance(modified, str) and modified else None


def _start_over(entry: ZooEntry, part: _PartFile, progress: ProgressCallback | None,
                cancel: CancelToken, timeout: float) -> None:
    """The part holds another version of the file: empty it and download from byte 0."""
    part.start_at(0)
    part.info_path.unlink(missing_ok=True)
    _transfer_once(entry, part, progress, cancel, timeout)


def _copy_body(entry: ZooEntry, response: http.client.HTTPResponse, part: _PartFile,
               done: int, total: int | None, progress: ProgressCallback | None,
               cancel: CancelToken, timeout: float) -> int:
    """Append the body to the part; the byte count reached. read1 returns whatever has
    arrived, so a slow server still shows progress (reported per full chunk, or after
    POLL_S), and every read ends in time to look at the cancel token."""
    if progress:
        progress(done, total)
    filled, reported_at = 0, time.monotonic()
    while True:
        if _is_cancelled(cancel):
            raise _cancelled(entry, part, done)
        if filled and progress and not _readable(response, POLL_S):
            filled, reported_at = 0, time.monotonic()  # the server paused: show what came
            progress(done, total)
        try:
            chunk = response.read1(CHUNK_SIZE - filled)
        except TimeoutError as e:
            raise _stalled(entry, part, done, timeout) from e
        except (OSError, http.client.HTTPException) as e:
            if _is_cancelled(cancel):  # the watcher shut the connection down
                raise _cancelled(entry, part, done) from None
            raise _ConnectionDropped(str(e) or type(e).__name__) from e
        if not chunk:
            if _is_cancelled(cancel):
                raise _cancelled(entry, part, done)
            if progress and filled:
                progress(done, total)  # the last bytes
            return done
        part.write(chunk, done)
        done += len(chunk)
        filled += len(chunk)
        now = time.monotonic()
        if filled >= CHUNK_SIZE or now - reported_at >= POLL_S:
            filled, reported_at = 0, now
            if progress:
                progress(done, total)


def _transfer(entry: ZooEntry, part: _PartFile, progress: ProgressCallback | None,
              cancel: CancelToken, timeout: float, retries: int) -> None:
    """Fill the (held) part file, resuming after dropped connections: up to `retries`
    times in a row without progress (progress = the part got longer than ever before)."""
    failures, best = 0, -1
    while True:
        try:
            _transfer_once(entry, part, progress, cancel, timeout)
            if part.size() == 0:  # removed on the way out, with nothing to resume
                raise ZooDownloadError(f"{_host(entry.url)} sent an empty file for "
                                       f"{entry.name}; nothing was kept")
            return
        except _ConnectionDropped as e:
            have = part.size()
            failures = 0 if have > best else failures + 1
            best = max(best, have)
            if failures >= retries:
                raise ZooDownloadError(
                    f"the download of {entry.name} from {_host(entry.url)} broke off "
                    f"({e}); {_mb(have)} kept in {part.path}. Run the download again to "
                    "resume.") from e
            log.info("download of %s interrupted (%s); resuming", entry.name, e)
            if _wait_cancellable(RETRY_DELAY_S * (failures + 1), cancel):
                raise _cancelled(entry, part, have) from e


def _wait_cancellable(seconds: float, cancel: CancelToken) -> bool:
    """Sleep up to `seconds`; True as soon as the download is cancelled."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if _is_cancelled(cancel):
            return True
        time.sleep(min(left, POLL_S))
    return _is_cancelled(cancel)


def _verify(entry: ZooEntry, part: Path) -> tuple[str, int]:
    """Size and sha256 check of a finished part file: (sha256, size); a wrong file is
    deleted."""
    size = part.stat().st_size
    if entry.size is not None and size != entry.size:
        part.unlink()
        raise ZooDownloadError(
            f"the download of {entry.name} has {size} bytes, expected {entry.size}; it was "
            "deleted. Try again.")
    got = file_sha256(part)
    if entry.sha256 is not None and got != entry.sha256:
        part.unlink()
        raise ZooDownloadError(
            f"checksum mismatch for {entry.name}: expected sha256 {entry.sha256}, got {got}. "
            f"The download was deleted. Try again; if it keeps failing, the file at "
            f"{entry.url} has changed.")
    return got, size


def _installed_record(entry: ZooEntry, path: Path, sha: str, source: str,
                      size: int) -> InstalledModel:
    """The record of `path`, with the sha256 and size it was checked with."""
    return InstalledModel(
        name=entry.name, path=path, sha256=sha, size=size,
        verified=entry.sha256 is not None and sha == entry.sha256, entry=entry.name,
        kind=entry.kind, format=entry.format, source=source, added=_now(), arch=entry.arch)


def _already_there(entry: ZooEntry, final: Path,
                   identify: Identify | None = None) -> InstalledModel | None:
    """The complete file from an earlier download, if `final` holds it. A file there that
    no record of ours names, of an entry with no hash to check it by, is read as an
    import reads a file (`identify`): one that is not the model (a note of the user's
    under that name) is refused, neither installed unread nor replaced unasked."""
    if not final.is_file():
        return None
    size = final.stat().st_size
    if entry.size is not None and size != entry.size:
        return None
    known = installed_model(entry.name)
    if known and known.path.resolve() == final.resolve() and known.size != size:
        # damaged since it was installed: the record is all we know when the registry
        # has neither size nor hash
        log.warning("%s has %d bytes, %d when it was installed; downloading it again",
                    final, size, known.size)
        return None
    if known and known.path.resolve() == final.resolve() and (
            entry.sha256 is None or known.sha256 == entry.sha256):
        return known  # skip re-hashing a big file we recorded ourselves
    sha = file_sha256(final)
    if entry.sha256 is not None and sha != entry.sha256:
        log.warning("%s does not match the registry's sha256; downloading it again", final)
        return None
    if entry.sha256 is None and identify is not None:
        try:
            _identify_as(final, entry, identify)
        except AtelierError as e:
            raise ZooDownloadError(
                f"{final} is there already and is not {entry.name} "
                f"({first_line(e) or type(e).__name__}); move it away and download it "
                f"again (or replace it: `atelier models download {entry.name} --force`)"
                ) from e
    return _installed_record(entry, final, sha, entry.url, size)


def _file_state(path: Path) -> tuple[int, int, int, int] | None:
    """What tells a file from its replacement (device, inode, size, mtime), or None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def download(entry_or_name: ZooEntry | str, dest_dir: str | os.PathLike | None = None, *,
             progress: ProgressCallback | None = None, cancel: CancelToken = None,
             timeout: float = 30.0, retries: int = 3,
             identify: Identify | None = None,
             force: bool = False) -> InstalledModel:
    """Download a registry entry (or name) into the cache (or `dest_dir`) and record it.

    progress(done_bytes, total_bytes_or_None) is called from this thread as data arrives.
    cancel: a threading.Event or a callable returning True to stop; the `.part` file is
    kept and DownloadCancelled raised. Dropped connections are resumed up to `retries`
    times in a row. When the registry has no sha256 the file is recorded with the hash it
    had and `verified=False` (logged at INFO only): callers must say so.
    `identify(path, arch, stopped)` (model_files.identify_model_file in the app, as for
    import_file) reads the finished file before it is installed: one that is not a model,
    or not this entry's kind of model, is deleted and refused. `force` downloads again
    even when the file is there (a damaged one that kept its size); it is replaced only
    once the new one is complete.
    Raises ZooDownloadError (offline, HTTP errors, checksum mismatch, web page served)."""
    entry = _as_entry(entry_or_name)
    try:
        with _entry_claimed(entry.name, DOWNLOAD_CLAIM, ZooDownloadError):
            return _download(entry, dest_dir, progress, cancel, timeout, retries, identify,
                             force)
    except OSError as e:  # a read-only cache, a name too long for the file system...
        raise _save_error(entry, e) from e


def _download(entry: ZooEntry, dest_dir: str | os.PathLike | None,
              progress: ProgressCallback | None, cancel: CancelToken, timeout: float,
              retries: int, identify: Identify | None,
              force: bool) -> InstalledModel:
    final = target_path(entry, dest_dir)
    if final.parent.exists() and not final.parent.is_dir():
        raise ZooDownloadError(f"cannot save {entry.name} in {final.parent}: it is a file, "
                               "not a folder")
    created_folder = not final.parent.exists()
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        seen = _file_state(final)
        model = (None if force else _already_there(entry, final, identify)) or _fetch(
            entry, final, part_path(entry, dest_dir), progress, cancel, timeout, retries,
            identify, recheck=not force, seen=seen)
    except BaseException:
        if created_folder:  # an empty model folder would look like a half install
            with contextlib.suppress(OSError):
                final.parent.rmdir()
        raise
    _record(model)
    return model


def _check_is_model(entry: ZooEntry, part: Path,
                    identify: Identify | None) -> None:
    """Read the finished download as an import reads a file: what the server sent may be
    a web page labelled as a file, or junk, and is then deleted, never installed."""
    if identify is None:
        return
    try:
        _identify_as(part, entry, identify)
    except AtelierError as e:
        part.unlink(missing_ok=True)
        why = first_line(e) or type(e).__name__
        # the reader names the file it read: the download's own name, not the .part
        why = why.replace(str(part), entry.filename).replace(part.name, entry.filename)
        raise ZooDownloadError(f"what {_host(entry.url)} sent for {entry.name} is not the "
                               f"model ({why}); it was deleted") from e


def _fetch(entry: ZooEntry, final: Path, part: Path, progress: ProgressCallback | None,
           cancel: CancelToken, timeout: float, retries: int,
           identify: Identify | None = None, *, recheck: bool = False,
           seen: tuple[int, int, int, int] | None = None) -> InstalledModel:
    """Download into `part` and install it as `final`. The part stays locked until it is
    renamed into place: checked, read and renamed while no other program can write it.
    With `recheck`, `seen` is the state of `final` (None: missing) when it was found
    missing or wrong: one that changed since was installed by another download, and is
    used when whole."""
    with _PartFile(part, entry) as held:
        if recheck and _file_state(final) != seen and \
                (model := _already_there(entry, final, identify)) is not None:
            log.info("%s was installed by another download meanwhile", entry.name)
            return model
        _transfer(entry, held, progress, cancel, timeout, retries)
        held.info_path.unlink(missing_ok=True)  # whole: nothing left to resume
        sha, size = _verify(entry, part)
        _check_is_model(entry, part, identify)
        if _is_cancelled(cancel):  # checked and read (seconds for a large file)
            raise DownloadCancelled(f"download of {entry.name} cancelled after it arrived; "
                                    f"the whole file is kept in {part}. Start it again to "
                                    "install it.")
        held.ready_to_rename()
        try:
            replace_file(part, final)
        except FileNotFoundError:
            # not ours to lose while locked; a program that does not lock it took it
            if (model := _already_there(entry, final)) is not None:
                return model
            raise ZooDownloadError(f"the download of {entry.name} was removed by another "
                                   f"program while it was being checked ({part}); run the "
                                   "download again") from None
    model = _installed_record(entry, final, sha, entry.url, size)
    if not model.verified:
        # callers say so where people see it (the CLI's last line, the window's list)
        log.info("%s: the registry has no sha256 for it, so it was not verified; its "
                 "sha256 is %s", entry.name, sha)
    return model


# ----------------------------------------------------------------------------- import


def _slug(text: str) -> str:
    """A model name from a file name: accents dropped, other characters to '-' ('' when
    nothing usable is left, e.g. a name in another script)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower()).strip("-._")


CLAIMS_DIR = ".claims"  # in the models folder: a lock per name an import is writing to
_claimed: dict[str, str] = {}  # name -> sha256 of the file this program's import writes
CLAIM_WAIT_S = 0.1


def _try_claim(name: str, sha: str, across_programs: bool = True) -> Any | None:
    """Hold `name` against other imports, in this program and (POSIX, `across_programs`)
    in others, until released; None when another import holds it. The claim says which
    file it writes."""
    with _index_lock:
        if name in _claimed:
            return None
        handle = None
        if fcntl is not None and across_programs:
            folder = models_dir() / CLAIMS_DIR
            try:
                folder.mkdir(parents=True, exist_ok=True)
                # unbuffered: a write the disk refuses fails here, never again in close()
                handle = open(folder / f"{name}.lock", "a+b", buffering=0)  # noqa: SIM115
            except OSError as e:  # a read-only cache: the copy fails anyway, and says why
                log.debug("cannot open the name claim for %s: %s", name, e)
        if handle is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # another import holds it
                handle.close()
                return None
            try:
                handle.truncate(0)
                handle.write(sha.encode())
            except OSError as e:
                # a full disk: the name is held all the same (which file it writes goes
                # unsaid); the copy then fails, and says the disk is full
                log.debug("cannot write the name claim for %s: %s", name, e)
        _claimed[name] = sha
        return (name, handle)


def _claim_writes(name: str) -> str | None:
    """The sha256 of the file another import holding `name` writes, where it says."""
    with _index_lock:
        if name in _claimed:
            return _claimed[name]
    try:
        return (models_dir() / CLAIMS_DIR / f"{name}.lock").read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _release_claim(claim: Any) -> None:
    name, handle = claim
    with _index_lock:
        _claimed.pop(name, None)
        if handle is not None:
            with contextlib.suppress(OSError):  # emptied while held: no reader takes the
                handle.truncate(0)  # sha of an import long ended for one that is running
            handle.close()  # releases the lock; the empty file stays (unlinking races)


def _claim_after_the_same(name: str, sha: str) -> Any | None:
    """_try_claim, waiting while another import of the same file holds `name` (a double
    click, the window and the CLI): one copy, once the other has recorded it. A download
    claims within this program only: its .part file's lock keeps other programs out."""
    if sha == DOWNLOAD_CLAIM:
        return _try_claim(name, sha, across_programs=False)
    claim = _try_claim(name, sha)
    while claim is None and _claim_writes(name) == sha:
        time.sleep(CLAIM_WAIT_S)
        claim = _try_claim(name, sha)
    return claim


@contextlib.contextmanager
def _entry_claimed(name: str, writes: str, error: type[AtelierError]) -> Iterator[None]:
    """Hold a registry entry's name while a download (`writes` DOWNLOAD_CLAIM) or an import
    (the file's sha256) installs it: an import matched to an entry while it downloaded
    was replaced, record and file, when the download ended."""
    claim = _claim_after_the_same(name, writes)
    if claim is None:
        if _claim_writes(name) != DOWNLOAD_CLAIM:
            raise error(f"another job is importing {name} right now; wait for it to end "
                        "or cancel it, then try again")
        raise error(f"{name} is already being downloaded; wait for the download to end "
                    "or cancel it, then try again")
    try:
        yield
    finally:
        _release_claim(claim)


@contextlib.contextmanager
def _claimed_name(key: str, sha: str, pick_free: bool) -> Iterator[str]:
    """A name for an imported file, held by this import until it is recorded: `key`, or
    with `pick_free` key-2, key-3, ... : the first that neither holds a different
    installed file nor is being written by another import at the same moment (two files
    of one name imported at once took one name, and the second replaced the first).
    Without `pick_free` a taken `key` is a ZooImportError."""
    n = 1
    while True:
        candidate = key if n == 1 else f"{key}-{n}"
        claim = _claim_after_the_same(candidate, sha)
        if claim is not None:
            # looked at while held: an import that held it may have recorded it since
            held = installed_model(candidate)
            if (held is None and not _unlisted_files(candidate)) or \
                    (held is not None and held.sha256 == sha):
                break
            _release_claim(claim)
            if not pick_free:
                raise ZooImportError(f"a different model is already installed as "
                                     f"'{candidate}'; choose another name")
        elif not pick_free:
            raise ZooImportError(f"another import is writing a model named '{candidate}' "
                                 "right now; choose another name, or try again when it ends")
        n += 1
    try:
        yield candidate
    finally:
        _release_claim(claim)


def _unlisted_files(name: str) -> bool:
    """Whether the models folder `name`, which no record lists, holds files (its index
    was damaged and set aside): a new import must not write over them."""
    folder = models_dir() / name
    try:
        return folder.is_dir() and any(f.is_file() and not f.name.endswith(".tmp")
                                       for f in folder.iterdir())
    except OSError:
        return False


def _identify_as(path: Path, entry: ZooEntry | None, identify: Identify,
                 cancel: CancelToken = None) -> Any:
    """What `identify` finds in the file (its `.kind`, and `.arch` for CLIP weights);
    AtelierError when it is not a model, or not the model its registry entry describes.

    A CLIP entry's architecture is handed to `identify` to check: searching for it
    instead takes up to half a minute (timm towers), and refuses the architectures whose
    twins the shapes cannot tell apart (a 320 px variant, say)."""
    expected_arch = entry.arch if entry is not None and entry.kind == "clip" else None
    found = identify(path, expected_arch, lambda: _is_cancelled(cancel))
    if entry is not None and entry.kind != found.kind:
        raise _NotTheEntry(f"it is a {found.kind}, but {entry.name} is a {entry.kind}")
    arch = getattr(found, "arch", None)
    if expected_arch and arch and arch != expected_arch:
        raise _NotTheEntry(f"it holds {arch} weights, but {entry.name} is {expected_arch}")
    resolution = getattr(found, "resolution", None)
    if entry is not None and entry.resolution and resolution and \
            entry.resolution != resolution:
        raise _NotTheEntry(f"it is a {resolution} px generator, but {entry.name} is "
                           f"{entry.resolution} px")
    return found


def _identified(src: Path, entry: ZooEntry | None,
                identify: Identify | None, cancel: CancelToken = None) -> Any:
    """What `identify` says the file is, checked against its registry entry."""
    if identify is None:
        return None
    try:
        return _identify_as(src, entry, identify, cancel)
    except AtelierError as e:
        _stop_if_cancelled(cancel, src)  # a read the cancel ended is no verdict on the file
        raise ZooImportError(f"not importing {src.name}: {e}") from e


def _match_entry(entries: Iterable[ZooEntry], sha: str, filename: str | None
                 ) -> ZooEntry | None:
    """The registry entry a file is: by sha256, else (for entries without a known hash,
    given a `filename`) by file name when exactly one entry has that name."""
    entries = list(entries)
    by_hash = [e for e in entries if e.sha256 == sha]
    if by_hash:
        return by_hash[0]
    by_name = [e for e in entries if e.sha256 is None and e.filename == filename]
    return by_name[0] if len(by_name) == 1 else None


def _check_against(entry: ZooEntry, src: Path, sha: str, size: int) -> None:
    if entry.sha256 is not None and sha != entry.sha256:
        raise ZooImportError(f"{src} is not {entry.name}: its sha256 is {sha}, expected "
                             f"{entry.sha256}")
    if entry.size is not None and size != entry.size:
        raise ZooImportError(f"{src} is not {entry.name}: it has {size} bytes, expected "
                             f"{entry.size}")


def import_file(path: str | os.PathLike, name: str | None = None,
                identify: Identify | None = None,
                cancel: CancelToken = None,
                progress: ProgressCallback | None = None) -> InstalledModel:
    """Copy a local file into the model cache and record it.

    A file whose sha256 matches a registry entry is recorded as that entry (verified).
    With `name` of a registry entry, the file must match what the registry knows of it;
    any other `name` records the file under that name. Without a name, a file the
    registry does not know keeps its own stem as name (made unique: a different file
    never replaces an imported one), and a file installed already (the same content,
    under any name) is not copied again: that model is returned (its `source` then names
    the file it was first imported from).

    `identify(path, arch, stopped)` (model_files.identify_model_file in the app) reads the
    file first and returns what it is (`.kind`, `.resolution`, `.arch`) or raises: a file
    that is not a model, or not the model its registry entry describes, is refused before
    anything is copied. `arch` is the CLIP architecture a registry entry expects (checked,
    not searched for), else None; `stopped()` says the import was cancelled (a CLIP
    architecture's search takes up to half a minute).

    `cancel` is looked at between the steps and within the hashing and the copy (a large
    file takes seconds to a minute each); once the model is recorded it is installed,
    whatever comes after. progress(done_bytes, total_bytes) counts the hashing and the
    copy together (twice the file's size)."""
    src = Path(path).expanduser()
    if src.is_dir():
        raise ZooImportError(f"cannot import {src}: it is a folder, not a model file")
    if not src.is_file():
        raise ZooImportError(f"cannot import {src}: no such file")
    size = src.stat().st_size
    if size == 0:
        raise ZooImportError(f"cannot import {src}: the file is empty")
    if name is not None and not _NAME_RE.match(name.strip().lower()):
        raise ZooImportError(f"'{name}' is not a usable model name: use letters, digits, "
                             "'.', '_' and '-'")
    if name is not None and len(name.strip()) > MAX_NAME_CHARS:
        # the name is a folder's, and its claim's file name: longer ones failed in the
        # file system with a traceback
        raise ZooImportError(f"'{name.strip()[:40]}…' is too long for a model name "
                             f"({len(name.strip())} characters; at most {MAX_NAME_CHARS})")
    if name is not None and name.strip().lower() in (INDEX_NAME, INDEX_LOCK_NAME):
        raise ZooImportError(f"the name '{name}' is reserved for the model index; choose "
                             "another")
    entries = registry_entries()[0]
    registry = {e.name: e for e in entries}
    steps = _ImportSteps(src, size, cancel, progress)
    try:
        sha = steps.hash()
    except OSError as e:
        raise ZooImportError(f"cannot read {src}: {e.strerror or e}") from e
    key = name.strip().lower() if name is not None else None
    if key is not None and key in registry:
        entry: ZooEntry | None = registry[key]
        _check_against(entry, src, sha, size)
    else:
        # a name of the user's own says what the file is: its file name (often kept by
        # fine-tunes of a registry model) is no reason to take it for that model
        entry = _match_entry(entries, sha, src.name if key is None else None)
    if entry is not None and key in (None, entry.name) and entry.sha256 is None \
            and (other := _installed_other(entry.name, sha)) is not None:
        # the registry knows no hash of it: a file of its name is no reason to replace the
        # (intact) model installed as it, which was silently overwritten
        if key is not None:
            raise ZooImportError(
                f"a different file is installed as '{entry.name}' ({other.path.name}, "
                f"sha256 {other.sha256[:12]}…); remove it first (Remove… in Models ▸ "
                f"Model packs, or `atelier models remove {entry.name}`) or import this one "
                "under another name")
        entry = None  # another model that kept the file name: imported as one of its own
    if entry is not None and key in (None, entry.name):  # imports of it write the same content
        if (same := _installed_intact(entry.name, sha)) is not None:
            return same  # downloaded or imported before: its record (source, date) is kept
        try:
            with _entry_claimed(entry.name, sha, ZooImportError):  # not while it downloads
                return _install_copy(src, entry.name, entry, sha, size, identify, steps)
        except ZooImportError as e:
            # matched by its file name alone: a file that reads as another kind or size
            # of model is one of the user's own that kept the name (a 256 px fine-tune's
            # ffhq.pkl), imported as such; it was refused, and the window has no --name
            if key is not None or entry.sha256 is not None or \
                    not isinstance(e.__cause__, _NotTheEntry):
                raise
            entry = None
    if key is None and (same := _installed_copy(sha, size)) is not None:
        return same  # a second copy (an FFHQ generator: 360 MB) under another name
    pick_free = key is None
    if key is None:
        key = _slug(src.stem) or f"model-{sha[:8]}"
        if key in (*registry, INDEX_NAME, INDEX_LOCK_NAME):
            # never shadow a registry name with another file, nor take the index's place
            key = f"{key}-imported"
    with _claimed_name(key, sha, pick_free) as key:  # never another model's name
        return _install_copy(src, key, entry, sha, size, identify, steps)


def found_installed(model: InstalledModel, path: str | os.PathLike) -> bool:
    """Whether import_file(path) gave a model installed before from another file (the
    same content: nothing was copied), rather than `path`'s own copy."""
    return model.source != str(Path(path).expanduser().resolve())


def _installed_other(name: str, sha: str) -> InstalledModel | None:
    """The model installed as `name` where it holds other content than `sha` and is
    intact (its file still hashes to what was recorded; a damaged one may be repaired by
    an import of the right file)."""
    model = installed_model(name)
    # (installed() lists those whose file is there)
    return model if model is not None and model.sha256 != sha and _intact(model) else None


def _installed_intact(name: str, sha: str) -> InstalledModel | None:
    """The model installed as `name` where it holds `sha` and its file still does (a
    damaged one is repaired by importing the right file)."""
    model = installed_model(name)
    return model if model is not None and model.sha256 == sha and _intact(model) else None


def _intact(model: InstalledModel) -> bool:
    """Whether the model's file still hashes to what was recorded."""
    try:
        return file_sha256(model.path) == model.sha256
    except OSError:
        return False


def _installed_copy(sha: str, size: int) -> InstalledModel | None:
    """An installed model with this content whose file is still in place."""
    for model in installed():
        if model.sha256 == sha and model.size == size and model.path.is_file() \
                and model.path.stat().st_size == size:
            return model
    return None


class _ImportSteps:
    """An import's reading of its file (hash, then copy) in chunks: each chunk looks at
    `cancel` and reports progress over both passes."""

    def __init__(self, src: Path, size: int, cancel: CancelToken,
                 progress: ProgressCallback | None):
        self.src, self.size, self.cancel, self.progress = src, size, cancel, progress

    def hash(self) -> str:
        h = hashlib.sha256()
        with open(self.src, "rb") as f:
            for block in self._blocks(f, done_before=0):
                h.update(block)
        return h.hexdigest()

    def copy(self, dest: Path, expected_sha: str) -> None:
        with atomic_path(dest) as tmp:  # a cancel removes the partial copy
            h = hashlib.sha256()
            with open(self.src, "rb") as fin, open(tmp, "wb") as fout:
                for block in self._blocks(fin, done_before=self.size):
                    h.update(block)
                    fout.write(block)
            if h.hexdigest() != expected_sha:
                raise ZooImportError(f"{self.src} changed while it was being copied; try "
                                     "again")

    def finished(self) -> None:
        if self.progress is not None:
            self.progress(2 * self.size, 2 * self.size)

    def _blocks(self, f, done_before: int) -> Iterator[bytes]:
        done = 0
        while block := f.read(CHUNK_SIZE):
            _stop_if_cancelled(self.cancel, self.src)
            yield block
            done += len(block)
            if self.progress is not None:
                self.progress(done_before + done, 2 * self.size)


def _install_copy(src: Path, key: str, entry: ZooEntry | None, sha: str, size: int,
                  identify: Identify | None, steps: _ImportSteps
                  ) -> InstalledModel:
    """Copy `src` (read first by `identify`) to the models folder as `key`, and record it."""
    _stop_if_cancelled(steps.cancel, src)
    found = _identified(src, entry, identify, steps.cancel)
    _stop_if_cancelled(steps.cancel, src)
    dest = models_dir() / key / (entry.filename if entry else src.name)
    same_file = dest.exists() and os.path.samefile(src, dest)
    copied = not same_file and not (dest.is_file() and file_sha256(dest) == sha)
    # a copy may repair a listed model's damaged file: only a file that was not there
    # before is taken away again
    new_file = copied and not dest.exists()
    if copied:
        try:
            steps.copy(dest, sha)
        except OSError as e:
            raise ZooImportError(f"cannot copy {src} to {dest}: {e.strerror or e}") from e
        if _is_cancelled(steps.cancel):  # the last moment before it is installed
            if new_file:
                _remove_copy(dest)
            _stop_if_cancelled(steps.cancel, src)
    model = InstalledModel(
        name=key, path=dest, sha256=sha, size=size,
        verified=entry is not None and entry.sha256 == sha,
        entry=entry.name if entry else None,
        kind=entry.kind if entry else getattr(found, "kind", None),
        format=entry.format if entry else None, source=str(src.resolve()), added=_now(),
        arch=entry.arch if entry else getattr(found, "arch", None))
    try:
        _record(model)
    except OSError as e:  # a full disk: no unlisted copy is left behind
        if new_file:
            _remove_copy(dest)
        raise ZooImportError(f"cannot record {key} in the model index "
                             f"({e.strerror or e}); nothing was imported") from e
    steps.finished()
    return model


def _stop_if_cancelled(cancel: CancelToken, src: Path) -> None:
    if _is_cancelled(cancel):
        raise ImportCancelled(f"import of {src.name} cancelled; nothing was installed")


def _remove_copy(dest: Path) -> None:
    """A model's file in the cache, and its folder when nothing else is in it: an import's
    copy that will not be recorded, or a removed model's."""
    dest.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        dest.parent.rmdir()


__all__ = [
    "DownloadCancelled", "ImportCancelled", "InstalledModel", "UnknownModelError",
    "ZooDownloadError",
    "ZooEntry", "ZooImportError", "ZooRegistryError", "download", "file_sha256",
    "get_entry", "import_file", "registry_entries", "remove", "Removed", "installed",
    "installed_model", "list_entries",
    "load_registry_file", "models_dir", "parse_registry", "part_path", "target_path",
    "user_registry_path",
]
