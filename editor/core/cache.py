"""On-disk cache of precomputed tensors (style statistics, relevance, discovered directions),
keyed by the content hashes of the models involved and the settings used.

Entries are safetensors files with JSON metadata, written atomically; an entry written by
another format version, for other key parts (a file put under another entry's name), or one
that fails to read, counts as absent (and is recomputed).
A `.partial` entry holds the progress of an interrupted computation for resuming.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .paths import atomic_path, cache_dir
from .tensor_files import save_tensors


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
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError):
            return None
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
        return tensors, info

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
            with safe_open(str(path), framework="pt") as f:
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
