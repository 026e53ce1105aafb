"""The demo world's attribute + style classifier: an independent small CNN used only to
*measure* what images show (did an edit add sunglasses? did it leave the hair alone?).
It is never used inside an edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from editor.core.paths import DEMO_MODELS_DIR, atomic_path
from editor.toyfaces.attributes import ATTRIBUTES, STYLES

HEADS: dict[str, tuple[str, ...]] = {**ATTRIBUTES, "style": STYLES}
DEFAULT_PATH = DEMO_MODELS_DIR / "evaluator.safetensors"


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class AttributeClassifier(nn.Module):
    """64 px RGB in [-1, 1] -> one logit vector per head (every attribute, and the style).
    A strided stem and few convolutions at high resolution keep it cheap on a CPU: the
    features it reads are drawn to be legible at 32 px."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv(3, w, stride=2),  # 64 -> 32
            *_conv(w, 2 * w), nn.MaxPool2d(2),  # -> 16
            *_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w), nn.MaxPool2d(2),  # -> 8
            *_conv(4 * w, 4 * w), nn.MaxPool2d(2),  # -> 4
        )
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(w * 4 * 16, 256),
                                  nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.heads = nn.ModuleDict({name: nn.Linear(256, len(v)) for name, v in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[-1] != 64:
            x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False,
                              antialias=True)
        h = self.neck(self.features(x))
        return {name: head(h) for name, head in self.heads.items()}


@dataclass
class Prediction:
    """Per head: the most likely value and its probability, for each image."""

    values: dict[str, list[str]]
    confidence: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]


class Evaluator:
    def __init__(self, model: AttributeClassifier, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.device = device

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, device: str = "cpu") -> Evaluator:
        from safetensors.torch import load_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"the demo-world evaluator is not trained yet ({path}); run "
                f"`python -m editor.toyfaces.train evaluator`")
        state = load_file(str(path))
        meta = json.loads((path.with_suffix(".json")).read_text()) if path.with_suffix(
            ".json").exists() else {}
        model = AttributeClassifier(width=int(meta.get("width", 32)))
        model.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(model, device)

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))
        return path

    @torch.no_grad()
    def predict_tensor(self, images: torch.Tensor, batch: int = 256) -> Prediction:
        """images: (N, 3, H, W) in [-1, 1]."""
        logits: dict[str, list[torch.Tensor]] = {k: [] for k in HEADS}
        for i in range(0, len(images), batch):
            out = self.model(images[i:i + batch].to(self.device).float())
            for k, v in out.items():
                logits[k].append(v.float().cpu())
        probs = {k: torch.cat(v).softmax(-1).numpy() for k, v in logits.items()}
        values = {k: [HEADS[k][j] for j in p.argmax(-1)] for k, p in probs.items()}
        conf = {k: p.max(-1) for k, p in probs.items()}
        return Prediction(values, conf, probs)

    def predict(self, images: np.ndarray, batch: int = 256) -> Prediction:
        """images: (N, H, W, 3) uint8."""
        return self.predict_tensor(uint8_to_tensor(images), batch)


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
