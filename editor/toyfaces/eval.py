"""Gates of the demo pack: `python -m editor.toyfaces.eval [--n-eval 2000 --n-gen 1000]`.

Measures the trained demo models on fresh renders (seeds no recipe trains on) and prints one
table row per gate with the measured number, the goal and PASS/FAIL:

- evaluator: accuracy on renders of every style, per attribute (where visible) and style;
- CLIP: zero-shot accuracy with plain prompts on normal-style renders per attribute (where
  visible), and on the style over renders of every style; averaged prompt sets as a note;
- generator: on seeds 0.. (as the app samples them), how often the evaluator is confident,
  how far each attribute's read-back value frequencies are from the prior, and how often it
  reads back the requested value;
- times: loading the pack, one synthesis, one CLIP image encode, one text encode.

It also writes a sample grid (render | generated pairs of the same requested face, then a
few faces in every style) to the user cache dir or `--grid`. The computations are plain
functions returning dicts, for tests and the edit-meaning scripts.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from editor.core.clip_model import ClipModel
from editor.core.devices import pick_device
from editor.core.errors import AtelierError
from editor.core.generator import Generator
from editor.core.image_io import save_image
from editor.core.paths import cache_dir
from editor.toyfaces import captions, conditioning
from editor.toyfaces.arguments import (
    DEVICES,
    check_output_file,
    int_at_least,
    non_empty,
)
from editor.toyfaces.attributes import ATTRIBUTES, PRIOR, STYLES, Attributes, visibility
from editor.toyfaces.evaluator import Evaluator, uint8_to_tensor
from editor.toyfaces.pack import timed_load
from editor.toyfaces.render import render, render_batch

# Evaluation renders use seeds from here on; the recipes render from seeds below 10**5.
EVAL_SEED_BASE = 10**6
GEN_SEED_STRIDE = 10**5
CONFIDENT = 0.9  # an evaluator reading counts as confident at this top probability

GOALS = {
    "evaluator_accuracy": 0.97,
    "clip_attribute": 0.90,
    "clip_style": 0.85,
    "generator_confident": 0.80,
    "generator_frequency_pts": 10.0,
    "generator_readback": 0.90,
    "load_seconds": 3.0,
}


def _eval_seed(purpose: int, seed: int) -> int:
    """A render_batch seed per (purpose, user seed), all in the evaluation range."""
    return EVAL_SEED_BASE + 16 * int(seed) + purpose


def _ratio(hits: np.ndarray, mask: np.ndarray) -> float:
    """Mean of hits where mask; NaN when nothing is counted (tiny runs)."""
    return float(hits[mask].mean()) if mask.any() else math.nan


def _truth(attrs: Sequence[Attributes], styles: Sequence[str]
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per head (attributes + style): the true value and whether the image shows it."""
    values: dict[str, list[str]] = {k: [] for k in (*ATTRIBUTES, "style")}
    shown: dict[str, list[bool]] = {k: [] for k in values}
    for a, s in zip(attrs, styles, strict=True):
        vis = visibility(a, s)
        for name in ATTRIBUTES:
            values[name].append(getattr(a, name))
            shown[name].append(vis[name])
        values["style"].append(s)
        shown["style"].append(True)
    return ({k: np.array(v) for k, v in values.items()},
            {k: np.array(v, bool) for k, v in shown.items()})


# ---------------------------------------------------------------------------- evaluator


def evaluator_accuracy(evaluator: Evaluator, n: int = 2000, seed: int = 0) -> dict:
    """Accuracy per head on n fresh renders of every style, scored where visible.
    Returns {"n", "accuracy": {head: fraction}, "counted": {head: images}, "seconds"}."""
    t0 = time.perf_counter()
    batch = render_batch(n, _eval_seed(0, seed), styles=STYLES)
    pred = evaluator.predict(batch.images)
    truth, shown = _truth(batch.attrs, batch.styles)
    accuracy, counted = {}, {}
    for head in truth:
        hits = np.array(pred.values[head]) == truth[head]
        accuracy[head] = _ratio(hits, shown[head])
        counted[head] = int(shown[head].sum())
    return {"n": n, "accuracy": accuracy, "counted": counted,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- CLIP


@torch.no_grad()
def image_embeddings(clip: ClipModel, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """(N, D) unit embeddings of (N, H, W, 3) uint8 images."""
    out = [clip.encode_images(uint8_to_tensor(images[i:i + batch])).float().cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out)


@torch.no_grad()
def class_embeddings(clip: ClipModel, prompts: dict[str, list[str]]) -> torch.Tensor:
    """(values, D): per value the normalised mean of its prompts' unit embeddings."""
    rows = []
    for texts in prompts.values():
        mean = clip.encode_text(texts).float().cpu().mean(0)
        rows.append(mean / mean.norm())
    return torch.stack(rows)


def _zero_shot(img: torch.Tensor, prompts: dict[str, list[str]], clip: ClipModel,
               truth: np.ndarray, shown: np.ndarray) -> float:
    values = list(prompts)
    pred = (img @ class_embeddings(clip, prompts).t()).argmax(1).numpy()
    return _ratio(np.array(values)[pred] == truth, shown)


def clip_zero_shot(clip: ClipModel, n: int = 2000, seed: int = 0) -> dict:
    """Zero-shot accuracy: every attribute over n normal-style renders (where visible) and
    the style over n renders of every style, with one plain prompt per value ("plain") and
    with every phrasing's embedding averaged ("ensemble").
    Returns {"n", "plain": {head: fraction}, "ensemble": {...}, "counted": {...}, "seconds"}."""
    t0 = time.perf_counter()
    plain, ensemble, counted = {}, {}, {}
    normal = render_batch(n, _eval_seed(1, seed), styles=("normal",))
    img = image_embeddings(clip, normal.images)
    truth, shown = _truth(normal.attrs, normal.styles)
    for name in ATTRIBUTES:
        sets = captions.prompt_sets(name, "normal")
        singles = {v: [p] for v, p in captions.plain_prompts(name, "normal").items()}
        plain[name] = _zero_shot(img, singles, clip, truth[name], shown[name])
        ensemble[name] = _zero_shot(img, sets, clip, truth[name], shown[name])
        counted[name] = int(shown[name].sum())
    styled = render_batch(n, _eval_seed(2, seed), styles=STYLES)
    img = image_embeddings(clip, styled.images)
    truth_s = np.array(styled.styles)
    every = np.ones(len(truth_s), bool)
    singles = {v: [p] for v, p in captions.plain_prompts("style").items()}
    plain["style"] = _zero_shot(img, singles, clip, truth_s, every)
    ensemble["style"] = _zero_shot(img, captions.prompt_sets("style"), clip, truth_s, every)
    counted["style"] = n
    return {"n": n, "plain": plain, "ensemble": ensemble, "counted": counted,
            "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------- generator


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def generate(gen: Generator, seeds: Sequence[int], batch: int = 64) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] for the seeds, as the app samples them: z_for_seed, psi=1,
    constant noise."""
    device = _device_of(gen)
    out = []
    for i in range(0, len(seeds), batch):
        z = conditioning.z_for_seeds(seeds[i:i + batch]).to(device)
        out.append(gen.generate(z, psi=1.0, noise_mode="const").clamp(-1, 1).float().cpu())
    return torch.cat(out)


def requested_faces(seeds: Sequence[int]) -> list[tuple[Attributes, int]]:
    """(attributes, jitter seed) each seed asks the generator for."""
    return [conditioning.sample_for_seed(int(s)) for s in seeds]


def generator_seeds(n: int, seed: int = 0) -> list[int]:
    """seed 0 gives seeds 0..n-1, the faces the app shows first; seed s starts at s * 10**5,
    so a smaller n (the grid) takes the first of the same faces."""
    start = int(seed) * GEN_SEED_STRIDE
    return list(range(start, start + n))


def generator_readback(gen: Generator, evaluator: Evaluator, n: int = 1000,
                       seed: int = 0) -> dict:
    """The evaluator reads n generated samples; attributes are scored where the requested
    face shows them. Returns {"n", "confident" (fraction of samples confident on every
    visible attribute), "confident_per_attribute", "readback" {attr: fraction reading the
    requested value}, "frequency" {attr: {value: fraction read}}, "frequency_gap_pts"
    {attr: largest |read - prior| in points}, "style_normal", "l1_to_render", "counted",
    "seconds"}."""
    t0 = time.perf_counter()
    seeds = generator_seeds(n, seed)
    faces = requested_faces(seeds)
    images = generate(gen, seeds)
    pred = evaluator.predict_tensor(images)
    truth, shown = _truth([a for a, _ in faces], ["normal"] * n)
    all_confident = np.ones(n, bool)
    result: dict = {"n": n, "confident_per_attribute": {}, "readback": {}, "frequency": {},
                    "frequency_gap_pts": {}, "counted": {}}
    for name, values in ATTRIBUTES.items():
        vis = shown[name]
        sure = pred.confidence[name] >= CONFIDENT
        all_confident &= sure | ~vis
        read = np.array(pred.values[name])
        result["confident_per_attribute"][name] = _ratio(sure, vis)
        result["readback"][name] = _ratio(read == truth[name], vis)
        freq = {v: _ratio(read == v, vis) for v in values}
        result["frequency"][name] = freq
        result["frequency_gap_pts"][name] = max(
            (abs(freq[v] - p) * 100 for v, p in zip(values, PRIOR[name], strict=True)),
            default=math.nan)
        result["counted"][name] = int(vis.sum())
    targets = np.stack([render(a, "normal", images.shape[-1], j) for a, j in faces])
    result["confident"] = float(all_confident.mean()) if n else math.nan
    result["style_normal"] = float(np.mean(np.array(pred.values["style"]) == "normal"))
    result["l1_to_render"] = float((images - uint8_to_tensor(targets)).abs().mean() / 2)
    result["seconds"] = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------- times


def _median_seconds(fn: Callable[[], object], repeats: int, device: torch.device,
                    warmup: int = 2) -> float:
    # CUDA runs asynchronously: wait for the work, or only the launch would be timed
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def timings(gen: Generator, clip: ClipModel, repeats: int = 20) -> dict:
    """Median seconds of one synthesis (z -> image, batch 1), one CLIP image encode and one
    text encode (uncached)."""
    device = _device_of(gen)
    z = conditioning.z_for_seed(0).to(device)
    image = gen.generate(z)
    prompt = captions.plain_prompts("glasses")["sunglasses"]
    return {
        "synthesis": _median_seconds(lambda: gen.generate(z, psi=1.0), repeats, device),
        "clip_image": _median_seconds(lambda: clip.encode_images(image), repeats,
                                      clip.device),
        "clip_text": _median_seconds(lambda: clip.encode_text([prompt]), repeats, clip.device),
    }


# ---------------------------------------------------------------------------- grid


def _pad(img: np.ndarray, right: int, bottom: int, value: int = 128) -> np.ndarray:
    return np.pad(img, ((0, bottom), (0, right), (0, 0)), constant_values=value)


def _rows(tiles: list[np.ndarray], per_row: int, gap: int) -> np.ndarray:
    """Tiles of one size laid out in rows, `gap` grey pixels apart; short rows are filled."""
    blank = np.full_like(tiles[0], 128)
    tiles = tiles + [blank] * (-len(tiles) % per_row)
    rows = [np.concatenate([_pad(t, gap, 0) for t in tiles[i:i + per_row]], axis=1)
            for i in range(0, len(tiles), per_row)]
    return np.concatenate([_pad(r, 0, gap) for r in rows], axis=0)


def sample_grid(gen: Generator, n_pairs: int = 24, per_row: int = 6, style_faces: int = 3,
                seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: pairs [render | generated] of the same requested face (seeds as
    `generator_readback`), then `style_faces` rows of one face in every style."""
    seeds = generator_seeds(n_pairs, seed)
    faces = requested_faces(seeds)
    size = gen.img_resolution
    fake = ((generate(gen, seeds) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    fake_np = fake.permute(0, 2, 3, 1).numpy()
    pairs = [np.concatenate([render(a, "normal", size, j), fake_np[i]], axis=1)
             for i, (a, j) in enumerate(faces)]
    block = _rows(pairs, per_row, gap=6)
    styled = [render(a, s, size, j) for a, j in faces[:style_faces] for s in STYLES]
    style_block = _rows(styled, len(STYLES), gap=2)
    width = max(block.shape[1], style_block.shape[1])
    parts = [_pad(p, width - p.shape[1], 0) for p in (block, style_block)]
    return np.concatenate(parts, axis=0)


def default_grid_path() -> Path:
    return cache_dir() / "toyfaces" / "eval_grid.png"


# ---------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class Gate:
    """One row of the table. goal None: reported only. Fractions are shown as percent."""

    section: str
    name: str
    measured: float
    goal: float | None = None
    higher_is_better: bool = True
    unit: str = "%"  # "%", "pts", "s"
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.goal is None:
            return None
        if math.isnan(self.measured):
            return False
        if self.higher_is_better:
            return self.measured >= self.goal
        # times are strict ("< 3 s"), point gaps inclusive ("within 10 points")
        return self.measured < self.goal if self.unit == "s" else self.measured <= self.goal

    @property
    def result(self) -> str:
        return {None: "info", True: "PASS", False: "FAIL"}[self.passed]


def _fmt(x: float, unit: str) -> str:
    if math.isnan(x):
        return "n/a"
    if unit == "%":
        return f"{100 * x:.1f}%"
    if unit == "pts":
        return f"{x:.1f} pts"
    if unit == "":
        return f"{x:.3f}"
    return f"{x:.2f} s" if x >= 1 else f"{1000 * x:.1f} ms"


def _fmt_goal(g: Gate) -> str:
    if g.goal is None:
        return "-"
    goal = f"{100 * g.goal:g}%" if g.unit == "%" else f"{g.goal:g} {g.unit}"
    if g.higher_is_better:
        return ">= " + goal
    return ("< " if g.unit == "s" else "<= ") + goal


def evaluator_gates(r: dict) -> list[Gate]:
    return [Gate("evaluator", f"{head} accuracy", acc, GOALS["evaluator_accuracy"],
                 note=f"n={r['counted'][head]}") for head, acc in r["accuracy"].items()]


def clip_gates(r: dict) -> list[Gate]:
    gates = []
    for head, acc in r["plain"].items():
        goal = GOALS["clip_style"] if head == "style" else GOALS["clip_attribute"]
        note = f"prompt sets {_fmt(r['ensemble'][head], '%')}, n={r['counted'][head]}"
        gates.append(Gate("clip", f"{head} zero-shot", acc, goal, note=note))
    return gates


def generator_gates(r: dict) -> list[Gate]:
    gates = [Gate("generator", "confident on every visible attribute", r["confident"],
                  GOALS["generator_confident"], note=f"top prob >= {CONFIDENT}, n={r['n']}")]
    for name in ATTRIBUTES:
        freq = " ".join(f"{v} {_fmt(f, '%')}" for v, f in r["frequency"][name].items())
        gates.append(Gate("generator", f"{name} frequency vs prior",
                          r["frequency_gap_pts"][name], GOALS["generator_frequency_pts"],
                          higher_is_better=False, unit="pts", note=freq))
    for name in ATTRIBUTES:
        gates.append(Gate("generator", f"{name} read back", r["readback"][name],
                          GOALS["generator_readback"], note=f"n={r['counted'][name]}"))
    gates.append(Gate("generator", "style read as normal", r["style_normal"]))
    gates.append(Gate("generator", "mean |generated - render|", r["l1_to_render"], unit="",
                      note="0..1 scale"))
    return gates


def time_gates(load_seconds: float, t: dict) -> list[Gate]:
    return [
        Gate("times", "load pack", load_seconds, GOALS["load_seconds"], False, "s"),
        Gate("times", "synthesis (batch 1, median)", t["synthesis"], unit="s"),
        Gate("times", "CLIP image encode (1 image, median)", t["clip_image"], unit="s"),
        Gate("times", "CLIP text encode (1 prompt, median)", t["clip_text"], unit="s"),
    ]


def format_table(gates: Sequence[Gate]) -> str:
    header = ("section", "check", "measured", "goal", "result", "note")
    rows = [header] + [(g.section, g.name, _fmt(g.measured, g.unit), _fmt_goal(g), g.result,
                        g.note) for g in gates]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for i, row in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(lines)


def summary(gates: Sequence[Gate]) -> str:
    judged = [g for g in gates if g.passed is not None]
    failed: dict[str, list[str]] = {}
    for g in judged:
        if not g.passed:
            failed.setdefault(g.section, []).append(g.name)
    text = f"{len(judged) - sum(map(len, failed.values()))}/{len(judged)} gates pass"
    if not failed:
        return text
    return text + "; FAIL: " + "; ".join(f"{s}: {', '.join(names)}"
                                         for s, names in failed.items())


# ---------------------------------------------------------------------------- CLI


def run(args: argparse.Namespace) -> list[Gate]:
    # what can be wrong with the command line fails now, not after the measurements
    device = pick_device(args.device)
    grid = Path(args.grid) if args.grid else default_grid_path()
    check_output_file(grid)
    pack, load_seconds = timed_load(str(device), args.models)
    print(f"loaded the demo pack from {pack.folder} in {load_seconds:.2f} s", flush=True)
    gates: list[Gate] = []
    r = evaluator_accuracy(pack.evaluator, args.n_eval, args.seed)
    print(f"evaluator: {r['seconds']:.0f} s", flush=True)
    gates += evaluator_gates(r)
    r = clip_zero_shot(pack.clip, args.n_eval, args.seed)
    print(f"CLIP zero-shot: {r['seconds']:.0f} s", flush=True)
    gates += clip_gates(r)
    r = generator_readback(pack.generator, pack.evaluator, args.n_gen, args.seed)
    print(f"generator read-back: {r['seconds']:.0f} s", flush=True)
    gates += generator_gates(r)
    gates += time_gates(load_seconds, timings(pack.generator, pack.clip, args.repeats))
    save_image(grid, sample_grid(pack.generator, seed=args.seed), scale=2,
               upscale_filter="nearest", overwrite=True)
    print(f"sample grid (render | generated, then every style): {grid}\n")
    return gates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-eval", type=int_at_least(1), default=2000,
                   help="fresh renders for the evaluator and CLIP gates")
    p.add_argument("--n-gen", type=int_at_least(1), default=1000, help="generated samples")
    # (an empty name, an unset shell variable, read as the default or as ".")
    p.add_argument("--grid", type=non_empty, default=None,
                   help="sample grid PNG (default: user cache dir)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--models", type=non_empty, default=None,
                   help="folder with the pack (default: editor/resources/models/toyfaces)")
    p.add_argument("--device", default="cpu",
                   help=f"{DEVICES}; default cpu")
    p.add_argument("--threads", type=int_at_least(1), default=None, help="torch CPU threads")
    p.add_argument("--repeats", type=int_at_least(1), default=20, help="repeats per timing")


def main(argv: list[str] | None = None) -> int:
    """0 when every gate passes, 1 when one fails, 2 when the pack cannot be loaded, 130 on
    Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m editor.toyfaces.eval",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        gates = run(args)
    except AtelierError as e:  # a bad device or grid path, a missing or damaged pack file
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line and the usual status, as the recipes
        print("interrupted", file=sys.stderr)
        return 130
    print(format_table(gates))
    print("\n" + summary(gates))
    return 0 if all(g.passed is not False for g in gates) else 1


if __name__ == "__main__":
    sys.exit(main())
