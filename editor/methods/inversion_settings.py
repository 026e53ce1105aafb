"""The inversion's settings, plain data without torch: `atelier invert --help` shows their
defaults without loading the models' libraries (seconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PERCEPTUAL_KINDS = ("auto", "vgg", "clip", "none")


@dataclass(frozen=True)
class InversionSettings:
    # Defaults tuned on 16 fresh demo renders (benchmarks.inversion): 300 -> 500 steps,
    # lr 0.08 -> 0.16, perceptual 0.2 -> 0.02 and no W+ spread pull took the median PSNR
    # from 22.2 to 24.6 dB with the same attribute agreement and edits.
    steps: int = 500
    lr: float = 0.16               # in units of the sampled w's standard deviation
    candidates: int = 64           # random latents scored before optimising
    starts: int = 2                # how many of the best candidates are optimised per image
    candidate_psi: float = 0.8     # truncation of the candidate latents
    pixel_scales: tuple[int, ...] = (1, 2, 4)
    perceptual: str = "auto"       # "auto" | "vgg" | "clip" | "none"
    perceptual_weight: float = 0.02
    wplus_spread_weight: float = 0.0  # optional pull of the W+ rows toward their mean
    initial_noise: float = 0.1     # latent noise at step 0, in w standard deviations
    noise_ramp: float = 0.6        # fraction of the steps over which the noise decays
    ramp_up: float = 0.05
    ramp_down: float = 0.3
    preview_every: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.candidates < 0 or self.starts < 1:
            raise ValueError("steps and candidates must be >= 0 and starts >= 1")
        if self.perceptual not in PERCEPTUAL_KINDS:
            raise ValueError(f"perceptual must be one of {PERCEPTUAL_KINDS}, got "
                             f"{self.perceptual!r}")
        if not self.pixel_scales or min(self.pixel_scales) < 1:
            raise ValueError("pixel scales are downsampling factors >= 1")

    def to_dict(self) -> dict:
        return asdict(self)
