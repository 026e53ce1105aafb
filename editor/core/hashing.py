"""Content hashes of models, so caches are keyed by what a model computes, not its file name."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch


def state_dict_hash(state: Mapping[str, torch.Tensor], extra: str = "") -> str:
    """sha256 over sorted names, shapes and fp32 bytes: the same weights give the same hash
    whether they came from a rosinality .pt, an NVIDIA pickle or our safetensors (fp16
    storage included, since values are compared after the cast)."""
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


def file_sha256(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
