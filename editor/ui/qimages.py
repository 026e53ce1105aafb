"""numpy images to Qt: the one place an (H, W, 3) uint8 array becomes a QImage."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def qimage_from_array(rgb: np.ndarray) -> QImage:
    """Wrap an (H, W, 3) uint8 array; the copy detaches the QImage from numpy's memory."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(f"expected a non-empty (H, W, 3) uint8 array, got {rgb.shape} "
                         f"{rgb.dtype}")
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
