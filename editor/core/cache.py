"""On-disk cache of precomputed tensors (style statistics, relevance, discovered directions),
keyed by the content hashes of the models involved and the settings used.

Entries are safetensors files with JSON metadata, written atomically; an entry written by
another format version, for other key parts (a file put under another entry's name), or one
that fails to read, counts as absent (and is recomputed).
A `.partial` entry holds the progress of an interrupted computation for resuming; a
`.lock` file beside it is held (an advisory lock, where the system has them) by the
computation under way, so that a second one of the same entry is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import AtelierError
from .paths import atomic_path, cache_dir
from .tensor_files import readable_name, save_tensors

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the lock is a no-op there
    fcntl = None  # type: ignore[assignment]


class EntryBusy(AtelierError, OSError):
    """Another computation of the same entry holds its lock (in this or another process).
    Its message speaks for itself: the window's failed-job box showed it after the class
    name ("EntryBusy: another discovery sampling ..."), as for a bug."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


def cache_key(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class TensorCache:
    """One cached entry: `kind` names what it holds, `key_parts` what it depends on."""

    def __init__(self, kind: str, key_parts: dict, version: int, root: Path | None = None):
        self.kind = kind
        self.version = version
        self.key_parts = key_parts
        self.key = cache_key(kind, version, key_parts)
        self.dir = (root or cache_dir() / "packs") / kind
        self.path = self.dir / f"{self.key}.safetensors"
        self.partial_path = self.dir / f"{self.key}.partial.safetensors"

    def _read(self, path: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
        from safetensors import SafetensorError, safe_open

        if not path.exists():
            return None
        try:
            with readable_name(path) as name, safe_open(name, framework="pt") as f:
                info = self._info_if_ours(f.metadata() or {})
                if info is None:
                    return None
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError):
            return None
        return tensors, info

    def _info_if_ours(self, meta: dict) -> object | None:
        """The info an entry's metadata holds where it was written for this entry (this
        kind, version and key parts), else None."""
        if meta.get("kind") != self.kind or meta.get("version") != str(self.version):
            return None
        try:
            info = json.loads(meta.get("info", "{}"))
            # what the entry was computed for: a file copied or renamed under another
            # entry's name (another generator's pack) would otherwise be taken as this one
            stored_key = json.loads(meta.get("key_parts", "null"))
        except json.JSONDecodeError:
            return None  # damaged metadata: the entry counts as absent and is recomputed
        if stored_key != json.loads(json.dumps(self.key_parts, default=str)):
            return None
        return info

    def _write(self, path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
        meta = {"kind": self.kind, "version": str(self.version),
                "key_parts": json.dumps(self.key_parts, sort_keys=True, default=str),
                "info": json.dumps(info, default=str)}
        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        with atomic_path(path) as tmp:
            save_tensors(data, tmp, metadata=meta)

    def load(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        return self._read(self.path)

    def save(self, tensors: dict[str, torch.Tensor], info: dict | None = None) -> None:
        self._write(self.path, tensors, info or {})
        self.partial_path.unlink(missing_ok=True)

    def load_partial(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        return self._read(self.partial_path)

    def save_partial(self, tensors: dict[str, torch.Tensor], info: dict | None = None) -> None:
        self._write(self.partial_path, tensors, info or {})

    def exists(self) -> bool:
        return self.load() is not None

    def read_partial_info(self) -> dict | None:
        """The partial's JSON info from its header alone (no tensors read), or None."""
        from safetensors import SafetensorError, safe_open

        try:
            with readable_name(self.partial_path) as name, \
                    safe_open(name, framework="pt") as f:
                info = self._info_if_ours(f.metadata() or {})
        except (SafetensorError, OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    @property
    def lock_path(self) -> Path:
        return self.dir / f"{self.key}.lock"

    @contextlib.contextmanager
    def lock(self, what: str = "computation") -> Iterator[bool]:
        """Hold this entry's advisory lock (fcntl.flock) while the block runs; a second
        holder, in this process or another, gets EntryBusy at once ("another `what` of
        this pack is running (pid N)"). Yields whether the lock is held: False where the
        system has no such locks or the lock file cannot be made (a read-only cache), and
        the block then runs unguarded, as before locks."""
        fd = self._acquire(what) if fcntl is not None else None
        try:
            yield fd is not None
        finally:
            if fd is not None:
                # unlinked while still held: a process that opened the old file and locks
                # it after this sees that the name is gone and takes a new one
                with contextlib.suppress(OSError):
                    self.lock_path.unlink()
                os.close(fd)  # releases the lock

    def _acquire(self, what: str) -> int | None:
        for _ in range(20):  # a new file after another holder's unlink: try again
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise EntryBusy(f"another {what} of this pack is running"
                                + (f" (pid {pid})" if pid else "")
                                + "; wait for it to finish, or stop it first", pid) from None
            except OSError:  # a file system without locks
                os.close(fd)
                return None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except OSError:
                same = False
            if not same:
                os.close(fd)
                continue
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            return fd
        return None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def stored_keys(kind: str, version: int, root: Path | None = None) -> list[dict]:
    """The key parts of every finished entry of `kind` (this format version) under `root`,
    newest first, read from the files' headers alone: what was computed, with which
    settings. Damaged or foreign files are left out."""
    from safetensors import SafetensorError, safe_open

    folder = (root or cache_dir() / "packs") / kind
    found = []
    for path in folder.glob("*.safetensors"):
        if path.name.endswith(".partial.safetensors"):
            continue
        try:
            with readable_name(path) as name, safe_open(name, framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("kind") != kind or meta.get("version") != str(version):
                continue
            key_parts = json.loads(meta.get("key_parts", "null"))
            mtime = path.stat().st_mtime
        except (SafetensorError, OSError, ValueError):
            continue
        # an entry renamed or copied under another's name is not what its header says
        if isinstance(key_parts, dict) and path.stem == cache_key(kind, version, key_parts):
            found.append((mtime, key_parts))
    return [k for _, k in sorted(found, key=lambda f: f[0], reverse=True)]
