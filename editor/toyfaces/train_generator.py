"""Recipe: the demo world's 64 px StyleGAN2 generator, trained by regression on renders.

The generator is our StyleGAN2 class, conditioned through its mapping input (see
`conditioning`): z = [one-hot attributes, jitter]. Each step renders a fresh batch from the
prior and regresses every resolution's skip-RGB output onto the downsampled render, with
extra weight on the pixels of the small features (eyes, brows, mouth, glasses) that the
renderer marks, and an edge (gradient) term that keeps them crisp. No discriminator: the
target is a deterministic function of z, so plain regression converges far faster on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from editor.core.checkpoints import LoadedGenerator, load_generator, save_generator
from editor.core.generator import Generator, GeneratorConfig
from editor.core.hashing import file_sha256
from editor.toyfaces import conditioning, style_groups
from editor.toyfaces.arguments import RecipeError, float_within, non_empty
from editor.toyfaces.direction_training import (
    DirectionPushes,
    Face,
    encode_faces,
    random_faces,
)
from editor.toyfaces.render import feature_mask, render
from editor.toyfaces.training import (
    TrainState,
    add_common_arguments,
    checkpoint_path,
    option_flag,
    prepare,
    recipe_command,
    run_facts,
    run_loop,
    try_resume,
    weight_options,
    write_model_card,
)

ARCH = GeneratorConfig(
    resolution=64, style_dim=128, n_mlp=4, channels=(128, 128, 128, 64, 32),
    lr_mlp=1.0,  # conditioned regression: the mapping must learn as fast as the rest
    z_dim=conditioning.Z_DIM,
)
LEVEL_WEIGHTS = {4: 0.25, 8: 0.5, 16: 1.0, 32: 1.0, 64: 1.0}
FEATURE_WEIGHT = 6.0  # extra weight of small-feature pixels
EDGE_WEIGHT = 0.5
# what shapes the weights: a checkpoint made with other values is not resumed
OPTIONS = ("batch", "lr", "seed", "grouped_styles", "direction_pushes", "warm_start",
           "continue_from")
FILES = ("generator.safetensors", "generator.json")


def batch_faces(step: int, batch: int, seed: int) -> list[Face]:
    """The faces of a training step, deterministic in (seed, step)."""
    return random_faces(np.random.default_rng([seed, step]), batch)


def targets(faces: list[Face]) -> tuple[torch.Tensor, torch.Tensor]:
    """(the world's drawings of faces in [-1, 1], their small-feature masks)."""
    img = torch.from_numpy(np.stack([render(a, "normal", 64, j) for a, j in faces]))
    mask = torch.from_numpy(np.stack([feature_mask(a, 64, j) for a, j in faces]))[:, None]
    return img.permute(0, 3, 1, 2).float() / 127.5 - 1, mask


def _edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def regression_loss(skips: list[torch.Tensor], target: torch.Tensor, mask: torch.Tensor
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    total = target.new_zeros(())
    metrics = {}
    for skip in skips:
        res = skip.shape[-1]
        factor = target.shape[-1] // res
        t = F.avg_pool2d(target, factor) if factor > 1 else target
        m = F.avg_pool2d(mask, factor) if factor > 1 else mask
        weight = 1 + FEATURE_WEIGHT * m
        err = (skip - t).abs()
        level = (err * weight).mean()
        total = total + LEVEL_WEIGHTS.get(res, 1.0) * level
        if res == target.shape[-1]:
            gy, gx = _edges(skip)
            ty, tx = _edges(t)
            edge = (gy - ty).abs().mean() + (gx - tx).abs().mean()
            total = total + EDGE_WEIGHT * edge
            metrics["l1"] = float(err.detach().mean())
            metrics["l1_features"] = float((err.detach() * m).sum() / m.sum().clamp_min(1) / 3)
            metrics["edge"] = float(edge.detach())
    metrics["loss"] = float(total.detach())
    return total, metrics


def build(seed: int) -> Generator:
    torch.manual_seed(seed)
    return Generator(ARCH)


def load_demo_generator(gen: Generator, path: str) -> LoadedGenerator:
    """An earlier demo generator (fp32), refused unless it has gen's architecture."""
    loaded = load_generator(path)
    loaded.generator.float().eval()
    if loaded.generator.config.to_dict() != gen.config.to_dict():
        raise RecipeError(f"{path} is not a toyfaces-64 generator")
    return loaded


@torch.no_grad()
def warm_start(gen: Generator, path: str) -> str:
    """Start the synthesis network from an earlier demo generator's weights.

    Its convolutions already know how to draw the world; only the mapping network and the
    affine (style) layers are new, because they are where the channels get their meaning.
    Each affine bias starts at the old generator's mean style, so the first images are the
    old network's average face rather than noise. Returns the old file's content hash."""
    loaded = load_demo_generator(gen, path)
    old = loaded.generator
    z = conditioning.z_for_seeds(range(20_000_000, 20_002_048))
    mean_styles = old.styles(old.map_z(z)[:, None].expand(-1, old.n_latent, -1)).tensors
    own = gen.state_dict()  # parameters and the fixed noise maps, sharing gen's storage
    for name, value in old.state_dict().items():
        if not (name.startswith("style.") or ".modulation." in name):
            own[name].copy_(value)
    for spec, styles in zip(gen.style_specs, mean_styles, strict=True):
        modulation = gen.style_layer(spec.name).conv.modulation
        modulation.bias.copy_(styles.mean(0) / modulation.lr_mul)
    return loaded.content_hash


@torch.no_grad()
def continue_from(gen: Generator, path: str) -> str:
    """Start from every weight of an earlier demo generator (to train it further). Returns
    the file's content hash."""
    loaded = load_demo_generator(gen, path)
    gen.load_state_dict(loaded.generator.state_dict())
    return loaded.content_hash


def initial_generator(args: argparse.Namespace, device: torch.device
                      ) -> tuple[Generator, dict[str, str]]:
    """The generator before its first step (seeded, then --warm-start, --grouped-styles,
    --continue-from) on device, and the content hash of each file it started from."""
    gen = build(args.seed).to(device).train()
    inputs = {}
    if args.warm_start:
        inputs["warm_start"] = warm_start(gen, args.warm_start)
        print(f"warm start from {args.warm_start} ({inputs['warm_start']})")
    if args.grouped_styles:
        style_groups.constrain(gen)  # after the warm start: it zeroes what must stay zero
    if args.continue_from:  # after constrain, whose rescaling is for fresh layers only
        inputs["continue_from"] = continue_from(gen, args.continue_from)
        print(f"continuing {args.continue_from} ({inputs['continue_from']})")
        require_groups_kept(gen, args, f"{args.continue_from} was not trained with "
                                       "--grouped-styles")
    return gen, inputs


def require_groups_kept(gen: Generator, args: argparse.Namespace, problem: str) -> None:
    """With --grouped-styles, refuse weights that join the style groups (see style_groups)."""
    if args.grouped_styles and style_groups.leak(gen) != 0.0:
        raise RecipeError(problem)


def train(args: argparse.Namespace) -> Path:
    out_dir, device = prepare(args, FILES)
    gen, inputs = initial_generator(args, device)
    opt = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.9, 0.99))
    pushes = DirectionPushes(args.seed) if args.direction_pushes > 0 else None
    # the pushes' measured changes are saved with the weights: a resumed run pushes alike
    state = TrainState({"generator": gen, **({"pushes": pushes} if pushes else {})},
                       {"adam": opt}, options={**weight_options(args, OPTIONS), **inputs})
    ckpt = checkpoint_path("generator", args.tag)
    if not args.restart and try_resume(state, ckpt, args.steps, print):
        require_groups_kept(gen, args, f"{ckpt} was not trained with --grouped-styles; pass "
                                       "--restart to start over")
    max_seconds = args.minutes * 60 if args.minutes else None

    def step(i: int) -> dict[str, float]:
        # cosine decay over the planned steps keeps late updates small and images sharp
        progress = min(1.0, i / max(1, args.steps))
        for group in opt.param_groups:
            group["lr"] = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        faces = batch_faces(i, args.batch, args.seed)
        code = gen.styles(gen.map_z(encode_faces(faces).to(device)))
        if pushes is not None:
            code, faces = pushes.apply(gen, i, code, faces, args.direction_pushes)
        target, mask = (t.to(device) for t in targets(faces))
        skips: list[torch.Tensor] = []
        gen.synthesize(code, noise_mode="const", skips=skips)
        loss, metrics = regression_loss(skips, target, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return metrics

    run_loop(state, step, args.steps, ckpt, max_seconds=max_seconds, log_every=args.log_every)
    if args.grouped_styles and style_groups.leak(gen) != 0.0:
        raise RuntimeError("a weight outside the style groups became non-zero")
    return export(gen.cpu().eval(), state, args, out_dir, inputs, device)


@torch.no_grad()
def export(gen: Generator, state: TrainState, args: argparse.Namespace, out_dir: Path,
           inputs: dict[str, str], device: torch.device) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    z = conditioning.z_for_seeds(range(10_000_000, 10_004_096))
    gen.w_avg.copy_(gen.map_z(z).mean(0))
    path = out_dir / "generator.safetensors"
    save_generator(gen, path, half=not args.fp32, metadata={
        "name": "toyfaces-64", "sampler": conditioning.SAMPLER_NAME,
        **({"style_groups": ",".join(style_groups.GROUPS)} if args.grouped_styles else {})})
    card = {
        "name": "toyfaces-64 generator",
        "file": path.name,
        "sha256": file_sha256(path),
        "architecture": ARCH.to_dict(),
        "sampler": conditioning.SAMPLER_NAME,
        "recipe": recipe_command("generator", args, OPTIONS),
        "inputs": {option_flag(k): {"file": getattr(args, k), "content_hash": h}
                   for k, h in inputs.items()},
        **({"style_groups": {
            "groups": list(style_groups.GROUPS),
            "rule": "unit i of every mapping layer, w and every conv style layer belongs to "
                    "group i mod len(groups); weights across groups and toRGB affine "
                    "weights are zero"}} if args.grouped_styles else {}),
        **run_facts(state, args.threads, device),
        "storage": "fp32" if args.fp32 else "fp16",
    }
    write_model_card(out_dir / "generator.json", card)
    print(json.dumps(card["training"], indent=2))
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, steps=3000, batch=32, lr=2e-3, seed=0, log_every=25)
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
    p.add_argument("--grouped-styles", action="store_true",
                   help="give every attribute its own style channels (see style_groups)")
    p.add_argument("--direction-pushes", type=float_within(0, 1), default=0.0,
                   metavar="FRACTION",
                   help="train this fraction of each batch on faces pushed along averaged "
                        "attribute directions (see direction_training; default 0)")
    start = p.add_mutually_exclusive_group()
    # (an empty name, an unset shell variable, trained a new generator instead)
    start.add_argument("--continue-from", type=non_empty, default=None, metavar="GENERATOR",
                       help="start from every weight of an earlier demo generator (train it "
                            "on)")
    start.add_argument("--warm-start", type=non_empty, default=None, metavar="GENERATOR",
                       help="copy the synthesis weights of an earlier demo generator")
