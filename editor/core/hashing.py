"""Content hashes of models, so caches are keyed by what a model computes, not its file name."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on use: the zoo hashes downloads without it
    import torch


def state_dict_hash(state: Mapping[str, torch.Tensor], extra: str = "") -> str:
    """sha256 over sorted names, shapes and fp32 bytes: the same weights give the same hash
    whether they came from a rosinality .pt, an NVIDIA pickle or our safetensors (fp16
    storage included, since values are compared after the cast)."""
    import torch

    h = hashlib.sha256()
    h.update(extra.encode())
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def file_sha256(path) -> str:
    """Lowercase hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
