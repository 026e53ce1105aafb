"""Heavy modules imported when first used, one first import at a time.

open_clip brings torchvision, timm and (through torchvision's ops) torch._dynamo: about
2 s on the development CPU, which the window spent before it showed, for a CLIP its render
worker loads after. torchvision's modules import each other: two threads starting on it at
once (the render worker's first CLIP, an inversion's VGG loss) deadlock in it, and Python
then gives one of them a half-imported torchvision.ops (ImportError: StochasticDepth). So
every first import of these goes through one lock."""
from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

_import_lock = threading.Lock()


def import_heavy(name: str) -> ModuleType:
    """importlib.import_module(name), one such first import at a time."""
    with _import_lock:
        return importlib.import_module(name)


class ImportedOnUse:
    """A module imported (by import_heavy) when one of its names is first used."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = import_heavy(self._name)
        return getattr(self._module, attr)
