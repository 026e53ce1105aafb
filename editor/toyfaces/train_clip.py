"""Recipe: the demo world's small CLIP (open_clip `CLIP` from a custom config).

Contrastive training on (render, caption) pairs of every rendering style. Half of the
captions name every visible attribute (in random order, with synonyms); the other half name
only one to three of them, with or without the face shape, because the prompts users and
our gates type ("a cartoon face with sunglasses") are exactly such partial captions.
Images are rendered once into memory; captions are drawn fresh every step.

A second, supervised term teaches what the editor asks of CLIP: for the normal-style images
in a batch, each visible attribute is classified among its values' prompts (a random
phrasing of each value, e.g. "a cartoon face with a grin" vs "... with a frown"), and every
image's style among the style prompts. Contrastive batches alone rarely contrast two faces
that differ only in the mouth, so small features were learnt slowly without it.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from editor.core.clip_model import ClipModel
from editor.core.hashing import file_sha256
from editor.toyfaces import captions
from editor.toyfaces.arguments import int_at_least
from editor.toyfaces.attributes import ATTRIBUTES, STYLES, visibility
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

CLIP_CONFIG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 32},
    "text_cfg": {"context_length": captions.CONTEXT_LENGTH, "vocab_size": 49408,
                 "width": 128, "heads": 4, "layers": 4},
}


def partial_caption(attrs, style: str, rng: np.random.Generator) -> str:
    """One to three of the visible attributes, e.g. "a cartoon face with sunglasses"."""
    heads, slots = captions.caption_slots(attrs, style)
    k = int(rng.integers(1, 4))
    chosen = rng.choice(len(slots), size=min(k, len(slots)), replace=False)
    items = [slots[i][int(rng.integers(len(slots[i])))] for i in chosen]
    head = (captions.style_prompt(style) if rng.random() < 0.6
            else heads[int(rng.integers(len(heads)))])
    body = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"{head} with {body}"


ATTRIBUTE_LOSS_WEIGHT = 1.0
# what shapes the weights: a checkpoint made with other values is not resumed
OPTIONS = ("batch", "dataset", "lr", "seed")
FILES = ("clip.safetensors", "clip.json")


def _value_prompts(attribute: str, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(values, one randomly chosen phrasing per value) for the normal style."""
    sets = captions.prompt_sets(attribute, "normal")
    values = list(sets)
    return values, [sets[v][int(rng.integers(len(sets[v])))] for v in values]


def attribute_prompt_loss(model, clip: ClipModel, img_emb: torch.Tensor, attrs, styles,
                          scale: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mean cross-entropy of classifying attributes (normal images, where visible) and the
    style (every image) by their prompts' text embeddings."""
    heads = [(name, [i for i, (a, s) in enumerate(zip(attrs, styles, strict=True))
                     if s == "normal" and visibility(a, s)[name]]) for name in ATTRIBUTES]
    heads.append(("style", list(range(len(attrs)))))
    chosen = [(name, rows, *(_style_prompts(rng) if name == "style"
                             else _value_prompts(name, rng)))
              for name, rows in heads if rows]
    texts = [t for _, _, _, prompts in chosen for t in prompts]
    txt = F.normalize(model.encode_text(clip.tokenize(texts)), dim=-1)
    losses, pos = [], 0
    for name, rows, values, prompts in chosen:
        block = txt[pos:pos + len(prompts)]
        pos += len(prompts)
        truth = torch.tensor([values.index(styles[i] if name == "style"
                                           else getattr(attrs[i], name)) for i in rows],
                             device=img_emb.device)
        logits = scale * img_emb[rows] @ block.t()
        losses.append(F.cross_entropy(logits, truth))
    return torch.stack(losses).mean()


def _style_prompts(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    sets = captions.prompt_sets("style")
    values = list(sets)
    return values, [sets[v][int(rng.integers(len(sets[v])))] for v in values]


def make_captions(attrs, styles, rng: np.random.Generator) -> list[str]:
    return [captions.caption(a, s, rng) if rng.random() < 0.5 else partial_caption(a, s, rng)
            for a, s in zip(attrs, styles, strict=True)]


def make_dataset(n: int, seed: int, chunk: int = 2000):
    images, attrs, styles = [], [], []
    for start in range(0, n, chunk):
        b = render_batch(min(chunk, n - start), seed * 7919 + start // chunk, styles=STYLES)
        images.append(torch.from_numpy(b.images))
        attrs += b.attrs
        styles += b.styles
    return torch.cat(images), attrs, styles


def train(args: argparse.Namespace) -> Path:
    out_dir, device = prepare(args, FILES)
    torch.manual_seed(args.seed)
    clip = ClipModel.from_config(CLIP_CONFIG, name="toyfaces-clip").to(device)
    model = clip.model.train().requires_grad_(True)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and
                                                                "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    state = TrainState({"clip": model}, {"adamw": opt}, options=weight_options(args, OPTIONS))
    ckpt = checkpoint_path("clip", args.tag)
    if not args.restart:
        try_resume(state, ckpt, args.steps, print)
    # rendered after the resume check, which must not wait for it
    t0 = time.perf_counter()
    images, attrs, styles = make_dataset(args.dataset, args.seed)
    data_seconds = time.perf_counter() - t0
    print(f"rendered {len(images)} training images in {data_seconds:.0f}s")
    warmup = max(1, args.steps // 20)

    def step(i: int) -> dict[str, float]:
        lr = args.lr * min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(
            math.pi * min(1.0, i / args.steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([args.seed, i])
        idx = torch.randint(0, len(images), (args.batch,),
                            generator=step_generator(args.seed, i))
        x = images[idx].to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
        texts = make_captions([attrs[j] for j in idx.tolist()],
                              [styles[j] for j in idx.tolist()], rng)
        img_emb = F.normalize(model.encode_image(clip.preprocess_images(x)), dim=-1)
        txt_emb = F.normalize(model.encode_text(clip.tokenize(texts)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img_emb @ txt_emb.t()
        # identical captions in one batch are not negatives of each other
        same = torch.tensor([[a == b for b in texts] for a in texts], device=device)
        logits_t = logits.masked_fill(
            same & ~torch.eye(len(texts), dtype=torch.bool, device=device), -1e4)
        labels = torch.arange(len(texts), device=device)
        contrastive = (F.cross_entropy(logits_t, labels)
                       + F.cross_entropy(logits_t.t(), labels)) / 2
        batch_attrs = [attrs[j] for j in idx.tolist()]
        batch_styles = [styles[j] for j in idx.tolist()]
        attribute = attribute_prompt_loss(model, clip, img_emb, batch_attrs, batch_styles,
                                          scale, rng)
        loss = contrastive + ATTRIBUTE_LOSS_WEIGHT * attribute
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = float((logits.argmax(1) == labels).float().mean())
        return {"loss": float(loss.detach()), "contrastive": float(contrastive.detach()),
                "attribute": float(attribute.detach()), "acc": acc,
                "scale": float(scale.detach())}

    run_loop(state, step, args.steps, ckpt, log_every=args.log_every,
             max_seconds=args.minutes * 60 if args.minutes else None)
    model.eval().requires_grad_(False)
    clip.to("cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = clip.save(out_dir / "clip.safetensors", half=not args.fp32)
    write_model_card(out_dir / "clip.json", {
        "name": "toyfaces CLIP",
        "file": path.name,
        "sha256": file_sha256(path),
        "config": CLIP_CONFIG,
        "tokenizer": "open_clip default (ViT-B-32 BPE), context 32",
        "recipe": recipe_command("clip", args, OPTIONS),
        **run_facts(state, args.threads, device, data_seconds),
        "storage": "fp32" if args.fp32 else "fp16",
    })
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common_arguments(p, steps=1200, batch=256, lr=1e-3, seed=2, log_every=25)
    p.add_argument("--dataset", type=int_at_least(1), default=40_000,
                   help="rendered training images (default %(default)s)")
    p.add_argument("--fp32", action="store_true", help="store fp32 weights (default fp16)")
