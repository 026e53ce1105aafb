"""Recipe: the demo world's attribute + style classifier (the measuring instrument).

Trained on renders of every style with the attributes' labels; an attribute the image does
not show (eyes behind sunglasses, the hair colour of a bald head) contributes no loss. Blur
and noise augmentation make it read soft generator output as well as crisp renders.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from editor.core.hashing import file_sha256
from editor.toyfaces.arguments import int_at_least
from editor.toyfaces.attributes import ATTRIBUTES, STYLES, visibility
from editor.toyfaces.evaluator import HEADS, AttributeClassifier, Evaluator
from editor.toyfaces.render import render_batch
from editor.toyfaces.training import (
    TrainState,
    add_common_arguments,
    checkpoint_path,
    prepare,
    recipe_command,
    run_facts,
    run_loop,
    step_generator,
    try_resume,
    weight_options,
    write_model_card,
)

# what shapes the weights: a checkpoint made with other values is not resumed
OPTIONS = ("batch", "dataset", "lr", "seed", "width")
FILES = ("evaluator.safetensors", "evaluator.json")


def labels_for(batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per head: target indices and a 0/1 mask of where the attribute is visible."""
    targets = {k: [] for k in HEADS}
    masks = {k: [] for k in HEADS}
    for attrs, style in zip(batch.attrs, batch.styles, strict=True):
        vis = visibility(attrs, style)
        for name, values in ATTRIBUTES.items():
            targets[name].append(values.index(getattr(attrs, name)))
            masks[name].append(1.0 if vis[name] else 0.0)
        targets["style"].append(STYLES.index(style))
        masks["style"].append(1.0)
    return ({k: torch.tensor(v) for k, v in targets.items()},
            {k: torch.tensor(v) for k, v in masks.items()})


def make_dataset(n: int, seed: int, chunk: int = 2000):
    images, targets, masks = [], {k: [] for k in HEADS}, {k: [] for k in HEADS}
    for start in range(0, n, chunk):
        b = render_batch(min(chunk, n - start), seed * 1000 + start // chunk, styles=STYLES)
        images.append(torch.from_numpy(b.images))
        t, m = labels_for(b)
        for k in HEADS:
            targets[k].append(t[k])
            masks[k].append(m[k])
    return (torch.cat(images), {k: torch.cat(v) for k, v in targets.items()},
            {k: torch.cat(v) for k, v in masks.items()})


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x in [-1, 1]. Random Gaussian blur (sigma up to 1.5 px) on half the batch, a
    one-pixel shift and a little noise: generator output is softer than renders."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=gen) * 1.5
    blur_mask = torch.rand(n, generator=gen) < 0.5
    out = x.clone()
    for s in (0.5, 1.0, 1.5):
        sel = blur_mask & (sigma <= s) & (sigma > s - 0.5)
        if sel.any():
            k = _gaussian_kernel(s).to(x)
            out[sel] = F.conv2d(F.pad(x[sel], (2, 2, 2, 2), mode="replicate"),
                                k.expand(3, 1, 5, 5), groups=3)
    shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
    out = torch.roll(out, shifts=shift, dims=(2, 3))
    return out + 0.03 * torch.randn(out.shape, generator=gen)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = torch.arange(-2, 3, dtype=torch.float32)
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return (k / k.sum())[None, None]


def train(args: argparse.Namespace) -> Path:
    out_dir, device = prepare(args, FILES)
    torch.manual_seed(args.seed)
    model = AttributeClassifier(args.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    state = TrainState({"model": model}, {"adamw": opt}, options=weight_options(args, OPTIONS))
    ckpt = checkpoint_path("evaluator", args.tag)
    if not args.restart:
        try_resume(state, ckpt, args.steps, print)
    # rendered after the resume check, which must not wait for it
    t0 = time.perf_counter()
    images, targets, masks = make_dataset(args.dataset, args.seed)
    data_seconds = time.perf_counter() - t0
    print(f"rendered {len(images)} training images in {data_seconds:.0f}s")

    def step(i: int) -> dict[str, float]:
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, i / args.steps)))
        gen = step_generator(args.seed, i)
        idx = torch.randint(0, len(images), (args.batch,), generator=gen)
        x = images[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        x = augment(x, gen).to(device)  # on the CPU, where gen draws
        model.train()
        out = model(x)
        loss = x.new_zeros(())
        correct, counted = 0.0, 0.0
        for k in HEADS:
            m, target = masks[k][idx].to(device), targets[k][idx].to(device)
            ce = F.cross_entropy(out[k], target, reduction="none")
            loss = loss + (ce * m).sum() / m.sum().clamp_min(1)
            correct += float(((out[k].argmax(-1) == target).float() * m).sum())
            counted += float(m.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), "acc": correct / max(counted, 1)}

    run_loop(state, step, args.steps, ckpt, log_every=args.log_every,
             max_seconds=args.minutes * 60 if args.minutes else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = Evaluator(model.cpu().eval()).save(out_dir / "evaluator.safetensors")
    write_model_card(out_dir / "evaluator.json", {
        "name": "toyfaces attribute + style classifier",
        "file": path.name,
        "sha256": file_sha256(path),
        "width": args.width,
        "heads": {k: list(v) for k, v in HEADS.items()},
        "recipe": recipe_command("evaluator", args, OPTIONS),
        **run_facts(state, args.threads, device, data_seconds),
    })
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, steps=1500, batch=64, lr=2e-3, seed=1, log_every=50)
    p.add_argument("--dataset", type=int_at_least(1), default=30_000,
                   help="rendered training images (default %(default)s)")
    p.add_argument("--width", type=int_at_least(1), default=32,
                   help="channels of the classifier's first layer (default %(default)s)")
