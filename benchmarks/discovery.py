"""Discovered directions on the demo world: do they name and move a real attribute?

    .venv/bin/python -m benchmarks.discovery [--seeds 200] [--strength S] [--top 10]
                     [--samples 1000] [--no-sweep] [--threads 1] [--json out.json]

Three ways of finding directions without prompts, labelled the same way and measured
the same way:

- CLIP2StyleGAN (ours, editor.methods.discovery): PCA of the CLIP embeddings of sampled
  images, concept splitting, transferred through w ("w"), through the global-direction
  channel relevance ("style"), or as the w delta on the channels the style transfer picks
  ("focused", the editor's default);
- GANSpace: PCA of the sampled w; unit = one standard deviation along the component;
- SeFa: eigenvectors of A'A, A the stacked affine weights of every style layer (columns
  normalised, as SeFa does); unit = one standard deviation of the sampled w along it.
The baselines' directions live in W; to label them, their CLIP image-space direction is
measured (the mean normalised embedding change of --probes sampled images moved by +/-2
units), then labelled exactly as ours (same vocabulary, token mixture, correlation with
the sampled images' zero-shot scores) and turned toward their top label.

For the top --top directions of each: the top labels; whether the top label names an
attribute value of the world (e.g. "sunglasses" -> glasses=sunglasses, "ginger" ->
hair_colour=red); then the N seeds' style codes are moved along the direction (toward the
top label) at its transfer's default strength (dc.DEFAULT_STRENGTHS; the baselines, whose
unit is w's, at w's), or at --strength for all, and the evaluator reads source and edit:
- changed: of the seeds that show the attribute and do not already have the label's value,
  how many read a different value of that attribute afterwards;
- reached: of those, how many read the label's value;
- others: of all seeds, how many read every other attribute (that both images show) the
  same (for a direction without a true label: every attribute).
Goals: >= 6 of the top 10 carry a true attribute label, and for those, changed >= 70% and
others >= 85%. A direction passes when it has a true label and meets both.

Seeds, rendering and reading are benchmarks.meaning's (seeds from 2,000,000, as shown in
the editor: clamped, 8-bit).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import meaning as mb
from benchmarks.arguments import output_file
from editor.core.arg_types import (
    existing_file,
    finite_float,
    int_at_least,
    thread_count,
)
from editor.core.generator import Generator
from editor.core.paths import atomic_write_text
from editor.engine import discovered as dd
from editor.engine.models import DEMO_GENERATOR
from editor.engine.packs import demo_clip_source, open_pack
from editor.methods import discovery as dc
from editor.toyfaces.attributes import ATTRIBUTES, visibility
from editor.toyfaces.evaluator import DEFAULT_PATH as DEFAULT_EVALUATOR
from editor.toyfaces.evaluator import Evaluator

GOAL_TRUE_LABELS = 6
GOAL_CHANGED = 0.70
GOAL_OTHERS = 0.85
SWEEP_FACTORS = (0.5, 0.75, 1.25, 1.5)  # times each transfer's default strength


@dataclass
class Candidate:
    """A direction to measure: its labels and its flat style delta per unit strength."""

    method: str
    title: str
    labels: list[dc.Label]
    delta: torch.Tensor
    transfer: str = "w"  # whose unit the delta has (the default strength follows it)

    @property
    def meaning(self) -> tuple[str, str] | None:
        return dd.demo_meaning(self.labels[0].text) if self.labels else None


def _rate(count: int, total: int) -> float:
    return count / total if total else math.nan


@dataclass
class Row:
    method: str
    rank: int
    title: str
    labels: list[tuple[str, float]]
    meaning: str | None  # "attribute=value" the top label names
    strength: float
    n: int
    lacking: int = 0
    changed: int = 0
    reached: int = 0
    others_same: int = 0
    most_changed: str = ""

    # rates over nothing are NaN (printed n/a)
    changed_rate = property(lambda self: _rate(self.changed, self.lacking))
    reached_rate = property(lambda self: _rate(self.reached, self.lacking))
    others_rate = property(lambda self: _rate(self.others_same, self.n))

    @property
    def passed(self) -> bool:
        return (self.meaning is not None and self.changed_rate >= GOAL_CHANGED
                and self.others_rate >= GOAL_OTHERS)


# --------------------------------------------------------------------------- baselines


def ganspace(w: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Top k principal directions of the sampled w, each scaled to one std."""
    wc = w.double() - w.double().mean(0)
    _, s, vh = torch.linalg.svd(wc, full_matrices=False)
    sd = s / math.sqrt(max(len(w) - 1, 1))
    return [(vh[i] * sd[i]).float() for i in range(k)]


def sefa(gen: Generator, w: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Top k eigenvectors of A'A (A: every style layer's affine weight, stacked, columns
    normalised), each scaled to one std of the sampled w along it."""
    mats = []
    for spec in gen.style_specs:
        mod = gen.style_layer(spec.name).conv.modulation
        mats.append((mod.weight * mod.scale).detach().double().cpu())
    a = torch.cat(mats)
    a = a / a.norm(dim=0, keepdim=True)
    vals, vecs = torch.linalg.eigh(a.T @ a)
    order = vals.argsort(descending=True)[:k]
    wc = w.double() - w.double().mean(0)
    return [(vecs[:, i] * (wc @ vecs[:, i]).std()).float() for i in order]


@torch.no_grad()
def clip_response(gen: Generator, clip, w: torch.Tensor, dw: torch.Tensor, units: float = 2.0
                  ) -> torch.Tensor:
    """The unit CLIP image-space direction a W move makes: mean over the probes of the
    normalised embedding change from w - units*dw to w + units*dw."""
    device = gen.w_avg.device
    w = w.to(device)
    pair = torch.cat([w + units * dw.to(device), w - units * dw.to(device)])
    emb = clip.encode_images(gen.synthesize(gen.styles(pair)), normalize=True).float().cpu()
    half = len(w)
    return F.normalize(F.normalize(emb[:half] - emb[half:], dim=-1).mean(0), dim=0)


def baseline_candidates(method: str, dws: Sequence[torch.Tensor], gen: Generator, clip,
                        setup: dc.LabelSetup, cov: torch.Tensor, w: torch.Tensor,
                        config: dc.DiscoveryConfig, probes: int) -> list[Candidate]:
    vectors = torch.stack([clip_response(gen, clip, w[:probes], dw) for dw in dws])
    labelled = None
    for got in dc.label_directions(clip, setup, cov, vectors, config):
        if not isinstance(got, dc.Progress):
            labelled = got
    assert labelled is not None
    w_ref = w.mean(0)
    out = []
    for dw, vec, lab in zip(dws, vectors, labelled, strict=True):
        sign = 1.0 if float(lab.vector @ vec) > 0 else -1.0  # turned toward its top label
        title = (f"{lab.negative[0].text} ↔ {lab.labels[0].text}" if lab.negative and lab.labels
                 else lab.labels[0].text if lab.labels else "?")
        out.append(Candidate(method, title, lab.labels,
                             dc.affine_delta(gen, sign * dw, w_ref), "w"))
    return out


def group_strengths(groups: dict[str, list[Candidate]], override: float | None
                    ) -> dict[str, float]:
    """The strength each group is measured at: `override`, or its transfer's default (the
    baselines' unit is w's)."""
    return {name: override if override is not None
            else dc.DEFAULT_STRENGTHS[cands[0].transfer if cands else "w"]
            for name, cands in groups.items()}


def ours(discovery: dc.Discovery, method: str) -> list[Candidate]:
    return [Candidate(f"clip2stylegan ({method})", d.title, d.labels, d.deltas[method], method)
            for d in discovery.directions if method in d.deltas]


# --------------------------------------------------------------------------- measuring


def measure(gen: Generator, evaluator: Evaluator, sources: mb.Sources, cand: Candidate,
            rank: int, strength: float, batch: int = 64) -> Row:
    meaning = cand.meaning
    codes = mb.edited_codes(sources.codes, cand.delta, strength)
    after = mb.read(evaluator, mb.as_shown(mb.render_codes(gen, codes, batch)))
    before = sources.readings
    row = Row(cand.method, rank, cand.title, [(x.text, x.confidence) for x in cand.labels[:3]],
              f"{meaning[0]}={meaning[1]}" if meaning else None, strength, len(sources.seeds))
    others = [b for b in ATTRIBUTES if meaning is None or b != meaning[0]]
    changed_other = dict.fromkeys(others, 0)
    for i, face in enumerate(sources.attrs):
        shown = visibility(face)
        shown_after = visibility(face.replace(**{meaning[0]: meaning[1]})) if meaning else shown
        same = True
        for b in others:
            if shown[b] and shown_after[b] and before[b][i] != after[b][i]:
                changed_other[b] += 1
                same = False
        row.others_same += same
        if meaning is not None:
            a, v = meaning
            if shown[a] and shown_after[a] and before[a][i] != v:
                row.lacking += 1
                row.changed += bool(after[a][i] != before[a][i])
                row.reached += bool(after[a][i] == v)
    worst = max(changed_other, key=changed_other.__getitem__) if changed_other else None
    if worst is not None and changed_other[worst]:
        row.most_changed = f"{worst} {100 * changed_other[worst] / row.n:.0f}%"
    return row


def _pct(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{100 * x:4.0f}%"


def format_table(rows: Sequence[Row]) -> str:
    head = (f"{'#':>2}  {'direction (- ↔ +)':34s} {'top labels (confidence)':46s} "
            f"{'true label':22s} {'lack':>4} {'changed':>7} {'reached':>7} {'others':>6}  "
            f"pass  most changed other")
    lines = [head, "-" * len(head)]
    for r in rows:
        labels = ", ".join(f"{t} {abs(c):.2f}" for t, c in r.labels)
        lines.append(f"{r.rank:>2}  {r.title[:34]:34s} {labels[:46]:46s} "
                     f"{(r.meaning or '-')[:22]:22s} {r.lacking:>4} {_pct(r.changed_rate):>7} "
                     f"{_pct(r.reached_rate):>7} {_pct(r.others_rate):>6}  "
                     f"{'yes ' if r.passed else 'no  '}  {r.most_changed}")
    return "\n".join(lines)


def summary(rows: Sequence[Row]) -> dict:
    true = [r for r in rows if r.meaning is not None]

    def mean(xs: list[float]) -> float:
        xs = [x for x in xs if not math.isnan(x)]
        return float(np.mean(xs)) if xs else math.nan

    return {"true_labels": len(true), "passed": sum(r.passed for r in rows),
            "changed_mean": mean([r.changed_rate for r in true]),
            "others_mean": mean([r.others_rate for r in true]),
            "changed_ok": sum(r.changed_rate >= GOAL_CHANGED for r in true),
            "others_ok": sum(r.others_rate >= GOAL_OTHERS for r in true)}


def summary_line(method: str, s: dict, n: int, strength: float) -> str:
    return (f"{method:24s} strength {strength:g}: {s['true_labels']}/{n} true labels "
            f"(goal >= {GOAL_TRUE_LABELS}); of those, changed >= 70% in {s['changed_ok']}, "
            f"others >= 85% in {s['others_ok']}, both in {s['passed']}; mean changed "
            f"{_pct(s['changed_mean']).strip()}, mean others {_pct(s['others_mean']).strip()}")


# --------------------------------------------------------------------------- main


def _progress(label: str) -> Callable[[dc.Progress], None]:
    last = [0.0]

    def show(p: dc.Progress) -> None:
        now = time.monotonic()
        if now - last[0] >= 5 or p.done == p.total:
            last[0] = now
            print(f"  {label}: {100 * p.fraction:5.1f}% {p.message}", file=sys.stderr,
                  flush=True)

    return show


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.discovery",
                                description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int_at_least(1), default=200)
    p.add_argument("--strength", type=finite_float, default=None,
                   help="one strength for every method (default: each transfer's own, "
                   + ", ".join(f"{k} {v:g}" for k, v in dc.DEFAULT_STRENGTHS.items()) + ")")
    p.add_argument("--top", type=int_at_least(1), default=10, help="directions measured per method")
    p.add_argument("--samples", type=int_at_least(2), default=dc.DiscoveryConfig().n_samples,
                   help="sampled images of the discovery (and the baselines' W samples)")
    p.add_argument("--probes", type=int_at_least(1), default=32,
                   help="images a baseline's CLIP direction is measured on")
    p.add_argument("--no-sweep", action="store_true",
                   help="skip ours at " + ", ".join(f"{s:g}" for s in SWEEP_FACTORS)
                   + " times the strength")
    p.add_argument("--evaluator", type=existing_file, default=str(DEFAULT_EVALUATOR))
    p.add_argument("--threads", type=thread_count, default=None)
    p.add_argument("--json", type=output_file, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    times: dict[str, float] = {}
    t_all = time.perf_counter()
    pack = open_pack(DEMO_GENERATOR, demo_clip_source())
    assert pack.clip is not None and pack.model.z_for_seed is not None
    gen, clip = pack.model.generator, pack.clip
    evaluator = Evaluator.load(args.evaluator)
    config = dc.DiscoveryConfig(**{**dd.DEMO_DISCOVERY, "n_samples": args.samples,
                                   "k": max(args.top, dc.DiscoveryConfig().k)})
    setup = dd.label_setup(pack)

    t0 = time.perf_counter()
    discovery = None
    show = _progress("discovery")
    for item in dd.discovery_job(pack, config=config):
        if isinstance(item, dc.Discovery):
            discovery = item
        else:
            show(item)
    assert discovery is not None
    times["discovery"] = time.perf_counter() - t0
    how = ("from the cache (it took " f"{discovery.info.get('seconds', 0):.0f} s)"
           if discovery.from_cache else f"in {times['discovery']:.1f} s")
    print(f"discovery: {len(discovery.directions)} directions from {config.k} components of "
          f"{config.n_samples} images, {how}")

    t0 = time.perf_counter()
    samples = None
    for item in dc.iter_samples(gen, clip, config, pack.sample_w()):
        if isinstance(item, dc.Samples):
            samples = item
    assert samples is not None
    cov = dc.pca(samples.embeddings, config.k).cov
    baselines = {
        "ganspace": baseline_candidates("ganspace", ganspace(samples.w, args.top), gen, clip,
                                        setup, cov, samples.w, config, args.probes),
        "sefa": baseline_candidates("sefa", sefa(gen, samples.w, args.top), gen, clip, setup,
                                    cov, samples.w, config, args.probes)}
    times["baselines"] = time.perf_counter() - t0
    print(f"baselines: sampled again and labelled in {times['baselines']:.1f} s")

    t0 = time.perf_counter()
    sources = mb.prepare_sources(gen, pack.model.z_for_seed, evaluator,
                                 mb.meaning_seeds(args.seeds))
    times["sources"] = time.perf_counter() - t0
    mine = {f"clip2stylegan ({m})": ours(discovery, m) for m in ("focused", "style", "w")}
    groups = {**mine, "ganspace": baselines["ganspace"], "sefa": baselines["sefa"]}
    strengths = group_strengths(groups, args.strength)
    t0 = time.perf_counter()
    results: dict[str, list[Row]] = {}
    for name, cands in groups.items():
        results[name] = [measure(gen, evaluator, sources, c, i + 1, strengths[name])
                         for i, c in enumerate(cands[:args.top])]
    times["measure"] = time.perf_counter() - t0
    sweep: dict[str, dict[float, dict]] = {}
    if not args.no_sweep:
        t0 = time.perf_counter()
        for name in mine:
            sweep[name] = {}
            for factor in SWEEP_FACTORS:
                s = factor * strengths[name]
                rows = [measure(gen, evaluator, sources, c, i + 1, s)
                        for i, c in enumerate(groups[name][:args.top])]
                sweep[name][s] = summary(rows)
        times["sweep"] = time.perf_counter() - t0

    for name, rows in results.items():
        print(f"\n{name}, strength {strengths[name]:g}, {args.seeds} seeds")
        print(format_table(rows))
    print()
    for name, rows in results.items():
        print(summary_line(name, summary(rows), len(rows), strengths[name]))
    for name, cells in sweep.items():
        for s, summ in cells.items():
            print(summary_line(name, summ, args.top, s))
    times["total"] = time.perf_counter() - t_all
    print("\nwall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
          + f" ({torch.get_num_threads()} threads)")
    if args.json:
        out = {"settings": vars(args), "strengths": strengths, "times": times,
               "discovery_info": discovery.info,
               "rows": {k: [{**asdict(r), "changed_rate": r.changed_rate,
                             "reached_rate": r.reached_rate, "others_rate": r.others_rate,
                             "passed": r.passed} for r in v] for k, v in results.items()},
               "summary": {k: summary(v) for k, v in results.items()},
               "sweep": {k: {str(s): v for s, v in cells.items()} for k, cells in sweep.items()}}
        atomic_write_text(args.json, json.dumps(mb._finite(out), indent=2, default=str))
        print(f"wrote {args.json}")
    best = max(summary(rows)["passed"] for rows in results.values())
    return 0 if best >= GOAL_TRUE_LABELS else 1


if __name__ == "__main__":
    sys.exit(main())
