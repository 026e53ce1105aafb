"""The demo world in one import: attribute table and prior, visibility, jitter, rendering
styles, the renderer, and feature masks.

    from editor.toyfaces import world
    batch = world.render_batch(256, seed=0, styles=world.STYLES, masks=True)
"""

from editor.toyfaces.attributes import (
    ATTRIBUTES,
    N_COMBINATIONS,
    PRIOR,
    STYLE_HIDES,
    STYLES,
    Attributes,
    Jitter,
    sample_attributes,
    visibility,
)
from editor.toyfaces.render import (
    LAYOUTS,
    Batch,
    FaceLayout,
    feature_mask,
    palette,
    render,
    render_batch,
)

__all__ = [
    "ATTRIBUTES", "N_COMBINATIONS", "PRIOR", "STYLE_HIDES", "STYLES", "Attributes", "Jitter",
    "sample_attributes", "visibility", "LAYOUTS", "Batch", "FaceLayout", "feature_mask",
    "palette", "render", "render_batch",
]
