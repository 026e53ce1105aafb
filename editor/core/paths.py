"""Where the program keeps its files, and how it writes them (atomically).

Every file the program writes goes through `atomic_path` / `atomic_write_bytes`: the data
lands in a temporary file beside the target, is flushed to disk, then renamed over the
target in one step. A reader (or a crash) therefore sees the old file or the new one,
never half of one, and a failed write leaves no stray temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "latent-atelier"
# Files that ship inside the package (demo models and their directions, the icon), so that
# an installed wheel finds them where a source checkout does.
RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
DEMO_MODELS_DIR = RESOURCES_DIR / "models" / "toyfaces"
CACHE_ENV = "ATELIER_CACHE_DIR"
CONFIG_ENV = "ATELIER_CONFIG_DIR"

# os.replace over a file another program holds open fails on Windows for a moment
# (virus scanners, indexers); a few short retries get past that.
_REPLACE_RETRIES = 5
_REPLACE_DELAY_S = 0.05


def _user_dir(path: Path) -> Path:
    """The folder, made if missing. One that cannot be made (a read-only home, a file in
    its place) is still returned: reading finds nothing there, and each write says why it
    fails, where raising here stopped the window from starting at all."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if path not in _unusable_dirs_told:
            _unusable_dirs_told.add(path)
            log.warning("cannot use the folder %s (%s)", path, e.strerror or e)
    return path


_unusable_dirs_told: set[Path] = set()


def cache_dir() -> Path:
    """User cache dir (models, precomputed packs); ATELIER_CACHE_DIR overrides it.
    Created on demand."""
    return _user_dir(cache_path())


def cache_path() -> Path:
    """Where cache_dir is, without making it (or saying it cannot be made)."""
    # appauthor=False: no extra "<author>" level on Windows.
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir(
        APP_NAME, appauthor=False)).expanduser()


def config_dir() -> Path:
    """User config dir (extra zoo entries, vocabularies); ATELIER_CONFIG_DIR overrides it.
    Created on demand."""
    return _user_dir(Path(os.environ.get(CONFIG_ENV) or platformdirs.user_config_dir(
        APP_NAME, appauthor=False)).expanduser())


STALE_TEMP_S = 24 * 3600  # a temporary file this old was left by a killed writer
MAX_LINK_HOPS = 40  # as the kernel follows (ELOOP past it)


def holds_undecoded_bytes(text: str) -> bool:
    """Whether `text` holds lone surrogates: the bytes Python could not decode in a file
    name that is not UTF-8 (legal on Linux), or in a word typed under LANG=C."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def _temp_stem(path: Path) -> str:
    # A cut of the name keeps the temporary name within the file system's limit (255
    # bytes) wherever the final name fits.
    # Cut by characters, not bytes (half a character is not a name on every system);
    # os.fsencode: a name that is not UTF-8, legal on Linux, comes as surrogates.
    stem = path.name
    while len(os.fsencode(stem)) > 100:
        stem = stem[:-1]
    return stem


def _create_temp_beside(path: Path) -> Path:
    """An empty new file in path's folder. Made with mode 0o666 so the process umask
    applies (mkstemp would force 0o600 and the result would be private to the user)."""
    stem = _temp_stem(path)
    for _ in range(100):
        tmp = path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")


def _fsync_file(path: Path) -> None:
    # Opened for writing: Windows' fsync (_commit) needs a writable handle.
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX). Windows cannot open folders this way."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (network, FUSE) refuse fsync on folders; the data is synced
    finally:
        os.close(fd)


def replace_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """os.replace with a few retries for files briefly held open by other programs."""
    for attempt in range(_REPLACE_RETRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if attempt == _REPLACE_RETRIES - 1:
                raise
            time.sleep(_REPLACE_DELAY_S * (attempt + 1))


def _put_in_place_new(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path` only where no file is there, in one step (a hard link fails
    with FileExistsError where one is), so that a file another writer made meanwhile (a
    second export, a command beside the window) is never replaced unasked. Where the file
    system has no hard links, a look and a replace, which leaves a moment between them."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as e:
        # no hard links here (FAT, exFAT, some network and FUSE mounts, each with its own
        # error); any other failure comes again from the replace, in its own words
        if path.exists() or path.is_symlink():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from e
        replace_file(tmp, path)
        return
    tmp.unlink()


def written_in_place(path: str | os.PathLike) -> bool:
    """Whether `path` is (or leads to) a device, a pipe or a socket: /dev/null, /dev/stdout,
    a FIFO. What is written to one goes into it, as with a shell's `>`; there is no file
    to replace (and no folder to write a temporary file in)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def open_descriptor(path: str | os.PathLike) -> int | None:
    """The descriptor of this process that `path` names (/dev/stdout, /dev/fd/3,
    /proc/self/fd/3, or a link to one), else None. With stdout on a file, the file a
    rename would replace is the shell's (`>> log`: the log's earlier lines were lost, and
    the table printed after the JSON went to the replaced file)."""
    own = f"/proc/{os.getpid()}/fd"
    hop = os.path.abspath(os.fspath(path))
    for _ in range(MAX_LINK_HOPS):
        folder, name = os.path.split(hop)
        if name.isdigit() and os.path.realpath(folder) == own:
            return int(name)
        try:
            hop = os.path.join(folder, os.readlink(hop))
        except (OSError, ValueError):  # not a link: a file of its own
            return None
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` (an empty file already exists there) for the
    caller to write; on a normal exit it is synced to disk and replaces `path` in one step,
    on an exception (KeyboardInterrupt included) it is removed. An existing target keeps
    its permission bits; a new one gets the process umask's. The caller may also replace
    the temporary file wholesale (as libraries that write by path do). Folders it had to
    make are removed again when the write fails and they are still empty. With
    `replace=False` a file at `path` (made while this one was written) is kept and
    FileExistsError raised.

    A symbolic link stays a link: the file it leads to is the one replaced (as editors
    save through a link), where replacing the link itself would leave its target stale.
    A device or a pipe (written_in_place) is yielded itself, to be written into: renamed
    over, `--json /dev/stdout` with stdout on /dev/null made /dev/null a plain file (as
    root), and a FIFO's reader got nothing. With `replace=False` too: it is no file
    another writer made (an export without --overwrite into a FIFO was refused as one)."""
    path = Path(path)
    if written_in_place(path):
        yield path
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    made = _make_parents(path.parent)
    _remove_stale_temps(path)
    try:
        tmp = _create_temp_beside(path)
        # a new file gets the umask's mode: a library that writes by path may put its own
        # private file (0600, as safetensors does) in the temporary one's place
        new_mode = tmp.stat().st_mode & 0o7777
        try:
            yield tmp
            _fsync_file(tmp)
            try:
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            except FileNotFoundError:
                # best effort: a file system without modes (FAT) may refuse it
                with contextlib.suppress(OSError):
                    os.chmod(tmp, new_mode)
            if replace:
                replace_file(tmp, path)
            else:
                _put_in_place_new(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except BaseException:
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise
    _fsync_dir(path.parent)


# folder -> (when it was listed, the temporary files in it then). A batch export writes
# thousands of files into one folder: listed again for each, the batch was quadratic (45 ms
# a file among 100,000). A temporary file made after a listing is not stale until
# STALE_TEMP_S later, so until then the listing holds every one that may be.
_listed_temps: dict[Path, tuple[float, tuple[str, ...]]] = {}
_MAX_LISTED_FOLDERS = 64


def _remove_stale_temps(path: Path) -> None:
    """Temporary files of earlier writes of `path` that a kill (SIGKILL, power loss) left
    behind; one of a writer still at work is recent, and stays."""
    now = time.time()
    cutoff = now - STALE_TEMP_S
    when, names = _listed_temps.get(path.parent, (None, ()))
    if when is None or not cutoff < when <= now:
        when, names = now, _temp_names(path.parent)
    prefix = f".{_temp_stem(path)}."
    removed = {name for name in names  # as the pattern ".{stem}.*.tmp" matches
               if name.startswith(prefix) and name[len(prefix):].endswith(".tmp")
               and _remove_if_older(path.parent / name, cutoff)}
    _listed_temps.pop(path.parent, None)  # the newest last: the oldest is dropped first
    _listed_temps[path.parent] = (when, tuple(n for n in names if n not in removed))
    if len(_listed_temps) > _MAX_LISTED_FOLDERS:
        _listed_temps.pop(next(iter(_listed_temps)), None)


def _temp_names(folder: Path) -> tuple[str, ...]:
    """The names in `folder` that may be temporary files (none where it cannot be read)."""
    try:
        with os.scandir(folder) as entries:
            return tuple(e.name for e in entries
                         if e.name.startswith(".") and e.name.endswith(".tmp"))
    except OSError:
        return ()


def _remove_if_older(path: Path, cutoff: float) -> bool:
    """Remove the file `path` if it was last written before `cutoff` (a time.time()); a
    file gone meanwhile, or one that cannot be removed, stays as it is."""
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink()
            return True
    return False


_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # _create_temp_beside's names


def sweep_stale_temps(folder: str | os.PathLike) -> int:
    """Remove, anywhere under `folder`, the temporary files of writes a kill left behind
    (older than STALE_TEMP_S: a writer still at work keeps its own), where
    `_remove_stale_temps` finds only those of a target written again. For the program's own
    folders (the cache), never the user's. Returns how many were removed."""
    cutoff = time.time() - STALE_TEMP_S
    return sum(_remove_if_older(Path(parent) / name, cutoff)
               for parent, _dirs, files in os.walk(folder)
               for name in files if _TEMP_NAME.match(name))


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written into `folder`, or None when they can: checked by
    writing one, before work whose result would be lost. Folders made for the check are
    removed again (the work may still fail, and the writer makes them)."""
    folder = Path(folder)
    made: list[Path] = []
    try:
        made = _make_parents(folder)
        _create_temp_beside(folder / "write-check").unlink()
    except OSError as e:
        return e.strerror or str(e)
    finally:
        for f in made:  # innermost first
            try:
                f.rmdir()
            except OSError:
                break
    return None


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p; the folders it created, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for f in reversed(missing):
        f.mkdir(exist_ok=True)
    return missing


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path. A name of one of this process's
    descriptors (`--json /dev/stdout`) is written through it, as a shell does: opened
    again, a file behind it was cut to nothing (`>> log`) or written over from its start."""
    if (fd := open_descriptor(path)) is not None:
        for stream in (sys.stdout, sys.stderr):  # what was printed to it comes first
            with contextlib.suppress(AttributeError, OSError, ValueError):
                if stream.fileno() == fd:
                    stream.flush()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (no newline translation); returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))
