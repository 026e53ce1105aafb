"""Channel relevance (StyleCLIP global directions): the official loop shape against ours.

    .venv/bin/python benchmarks/relevance.py [--threads 2] [--n-images 10] [--repeats 3]
    .venv/bin/python benchmarks/relevance.py --generator G.safetensors --clip-config C.json
    .venv/bin/python benchmarks/relevance.py --ffhq        # 1024 config-f + ViT-B-32
    .venv/bin/python benchmarks/relevance.py --ffhq --device cuda --batch-size 16

Both paths compute the same vectors for the same sampled channels on the same models:
- official: `relevance_single_channel`, one channel, one image, batch 1, full synthesis;
- ours: `relevance_for_layer`, the channels of a layer x images x signs in batches, from
  the synthesis state before the layer (its computation is included in the timing).
It prints channels/s for both at --n-images images per channel, their ratio, the agreement
(cosine per channel), and the time the whole pack would take at 100 images per channel
(both paths scale linearly with the images, so this is a plain extrapolation; each layer is
weighted by its real channel count). The default models are the demo pack's architecture
with random weights; speed does not depend on the weights. The machine's load average is
printed before and after: other work on the machine slows both paths, and batch-1 work
with several threads suffers most from sharing the cores (compare --threads 1).

It then splits the speed-up into its two sources, each timed per render + encode: batching
(batch 1 against our batch, whole synthesis) and starting at the perturbed layer (our
batch, the synthesis from each editable layer on against the whole, weighted by the
layers' channel counts). Their product is what an exact computation gains from batching
and reuse on this machine; more than that needs approximations.

--approximations also times two approximations the precompute does not use, on the same
channels, and prints the agreement each keeps with the official loop (per-channel cosine):
- bf16: our batched path under bfloat16 autocast (fast where the CPU or GPU has bf16 units);
- linearized: the derivative of the CLIP embedding with respect to every style channel at
  each base image's own code (reverse mode, one backward row per embedding dimension), in
  place of the +/-k sigma difference; it yields all channels at once, so its time per
  channel is its whole time over the editable channels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from editor.core.arg_types import (
    device_name,
    existing_file,
    int_at_least,
    positive_float,
    thread_count,
)
from editor.core.clip_model import ClipModel
from editor.core.errors import AtelierError
from editor.core.generator import Generator, GeneratorConfig
from editor.core.style_code import StyleCode, flat_offsets
from editor.methods import global_directions as gd

DEMO_GENERATOR = GeneratorConfig(resolution=64, style_dim=128, n_mlp=4,
                                 channels=(128, 128, 128, 64, 32))
DEMO_CLIP = {"embed_dim": 128,
             "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 32},
             "text_cfg": {"context_length": 32, "width": 128, "heads": 4, "layers": 4}}
PACK_IMAGES = 100  # the paper's images per channel, for the full-pack estimate


def random_generator(config: GeneratorConfig) -> Generator:
    torch.manual_seed(0)
    gen = Generator(config).eval()
    with torch.no_grad():
        gen.w_avg.copy_(gen.mean_latent(512))
    return gen


def load_models(args: argparse.Namespace
                ) -> tuple[Generator, ClipModel, str, gd.WSampler | None]:
    """Generator, CLIP, their description, and the latent sampler (None: Gaussian z)."""
    if args.demo_pack:
        # imported under another name: a local DEMO_GENERATOR would shadow the
        # architecture below for every other branch of this function
        from editor.engine.models import DEMO_GENERATOR as DEMO_FILE
        from editor.engine.packs import demo_clip_source, open_pack

        pack = open_pack(str(DEMO_FILE), demo_clip_source())
        return (pack.model.generator.eval(), pack.clip,
                "the bundled demo pack (trained weights)", pack.sample_w())
    if args.ffhq:
        import open_clip

        cfg = open_clip.get_model_config("ViT-B-32")
        cfg["quick_gelu"] = True  # as OpenAI's weights
        torch.manual_seed(0)
        return (random_generator(GeneratorConfig.rosinality(1024)),
                ClipModel.from_config(cfg, name="ViT-B-32 (random)"),
                "FFHQ 1024 config-f + ViT-B-32, random weights", None)
    if args.generator:
        from editor.core.checkpoints import load_generator

        gen = load_generator(args.generator).generator.eval()
        gname = Path(args.generator).name
    else:
        gen, gname = random_generator(DEMO_GENERATOR), "demo architecture (random)"
    if args.clip_config:
        text = args.clip_config
        cfg = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())
        torch.manual_seed(0)
        clip = ClipModel.from_config(cfg, name=Path(text).stem if "{" not in text else "clip")
    elif args.clip_checkpoint:
        clip = ClipModel.from_checkpoint(args.clip_arch, args.clip_checkpoint)
    else:
        torch.manual_seed(0)
        clip = ClipModel.from_config(DEMO_CLIP, name="demo CLIP architecture (random)")
    return gen, clip, f"{gname} + {clip.name}", None


def sample_channels(gen: Generator, per_layer: int, every: int, seed: int = 0
                    ) -> dict[int, list[int]]:
    """Layer -> a few channel indices, from every `every`-th editable layer."""
    g = torch.Generator().manual_seed(seed)
    layers = gd.selected_layers(gen.style_specs, None)[::every]
    return {i: sorted(torch.randperm(gen.style_specs[i].channels, generator=g)[:per_layer]
                      .tolist()) for i in layers}


def _finished(gen: Generator) -> float:
    """perf_counter() once the generator's device has finished the work queued so far."""
    if gen.w_avg.is_cuda:
        torch.cuda.synchronize(gen.w_avg.device)
    return time.perf_counter()


def time_single(gen, clip, codes, stats, sample, k) -> tuple[dict[int, float], dict]:
    """Seconds per channel, per layer; and the vectors (flat index -> vector)."""
    offsets = flat_offsets(gen.style_specs)
    per_layer, vectors = {}, {}
    for layer, chans in sample.items():
        t0 = _finished(gen)
        for c in chans:
            vectors[offsets[layer] + c] = gd.relevance_single_channel(
                gen, clip, codes, stats, offsets[layer] + c, k)
        per_layer[layer] = (_finished(gen) - t0) / len(chans)
    return per_layer, vectors


def time_batched(gen, clip, codes, stats, sample, k, batch) -> tuple[dict[int, float], dict]:
    offsets = flat_offsets(gen.style_specs)
    per_layer, vectors = {}, {}
    for layer, chans in sample.items():
        t0 = _finished(gen)
        before = gd.state_before(gen, codes, layer)
        out = gd.relevance_for_layer(gen, clip, codes, stats, layer, chans, k, before, batch)
        per_layer[layer] = (_finished(gen) - t0) / len(chans)
        for c, v in zip(chans, out, strict=True):
            vectors[offsets[layer] + c] = v
    return per_layer, vectors


@torch.no_grad()
def render_seconds(gen, clip, codes: StyleCode, start: int, batch: int, repeats: int) -> float:
    """Median seconds per image to run the style layers from `start` on and CLIP-encode the
    result, in batches of `batch` (the state before `start` is computed once, untimed)."""
    idx = torch.arange(batch) % codes.batch_size
    sub = StyleCode(codes.specs, [t[idx] for t in codes.tensors])
    before = gd.state_before(gen, sub, start)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        t0 = _finished(gen)
        img = gen.run_layers(sub, before, start).skip
        clip.encode_images(img, normalize=True)
        times.append((_finished(gen) - t0) / batch)
    return statistics.median(times[1:])


def speedup_sources(gen, clip, codes: StyleCode, batch: int, repeats: int
                    ) -> tuple[float, float, float, float]:
    """(s per image at batch 1, s per image at `batch`, batching gain, reuse gain)."""
    single = render_seconds(gen, clip, codes, 0, 1, max(repeats, 5) * 4)
    full = render_seconds(gen, clip, codes, 0, batch, repeats)
    layers = gd.selected_layers(gen.style_specs, None)
    weights = [gen.style_specs[i].channels for i in layers]
    suffix = [full if i == 0 else render_seconds(gen, clip, codes, i, batch, repeats)
              for i in layers]
    reuse = sum(weights) * full / sum(w * t for w, t in zip(weights, suffix, strict=True))
    return single, full, single / full, reuse


def time_bf16(gen, clip, codes, stats, sample, k, batch) -> tuple[dict[int, float], dict]:
    """time_batched under bfloat16 autocast; vectors back in float32."""
    with torch.autocast(gen.w_avg.device.type, dtype=torch.bfloat16):
        per_layer, vectors = time_batched(gen, clip, codes, stats, sample, k, batch)
    return per_layer, {f: v.float() for f, v in vectors.items()}


def linearized_relevance(gen, clip, codes: StyleCode, rows: int) -> torch.Tensor:
    """(channels, D): sum over the images of the unit derivative of the normalised CLIP
    embedding with respect to each style channel, at each image's own code; `rows`
    embedding dimensions are differentiated per generator call. Normalise rows to compare
    with relevance vectors (central differences tend to the derivative as k -> 0)."""
    flat = codes.flat().detach()
    dim = clip.embed_dim
    eye = torch.eye(dim, device=flat.device)
    total = torch.zeros(flat.shape[1], dim)
    for i in range(flat.shape[0]):
        jac = torch.empty(dim, flat.shape[1])
        for a in range(0, dim, rows):
            b = min(dim, a + rows)
            x = flat[i:i + 1].expand(b - a, -1).clone().requires_grad_(True)
            emb = clip.encode_images(gen.synthesize(StyleCode.from_flat(codes.specs, x)))
            (grad,) = torch.autograd.grad(emb.float(), x, eye[a:b])
            jac[a:b] = grad.cpu()
        total += F.normalize(jac.t(), dim=-1)
    return total


def time_linearized(gen, clip, codes, sample, rows) -> tuple[dict[int, float], dict]:
    offsets = flat_offsets(gen.style_specs)
    frozen = [p for p in (*gen.parameters(), *clip.model.parameters()) if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)  # only the style code needs gradients
    try:
        t0 = _finished(gen)
        total = linearized_relevance(gen, clip, codes, rows)
        seconds = _finished(gen) - t0
    finally:
        for p in frozen:
            p.requires_grad_(True)
    editable = sum(gen.style_specs[i].channels for i in gd.selected_layers(gen.style_specs,
                                                                            None))
    vectors = {offsets[i] + c: F.normalize(total[offsets[i] + c], dim=0)
               for i, chans in sample.items() for c in chans}
    return {i: seconds / editable for i in sample}, vectors


def print_approximations(gen, clip, codes, stats, sample, args, batch, single, v_single
                         ) -> None:
    """Speed and agreement of the approximations (see the module docstring)."""
    n_sampled = sum(len(c) for c in sample.values())
    rate_single = n_sampled / sum(single[i] * len(c) for i, c in sample.items())
    print("\napproximations (not used by the precompute), against the official loop:")
    print(f"  {'':11s} {'channels/s':>10s} {'speed-up':>8s} {'cos min':>8s} "
          f"{'median':>7s} {'>= 0.99':>7s}")
    tries = {"bf16": lambda: time_bf16(gen, clip, codes, stats, sample, args.k_sigma, batch),
             "linearized": lambda: time_linearized(gen, clip, codes, sample, batch)}
    for name, run in tries.items():
        run_times = [run() for _ in range(args.repeats or 1)]
        per_layer, vectors = median_per_layer(run_times), run_times[0][1]
        rate = n_sampled / sum(per_layer[i] * len(c) for i, c in sample.items())
        cos = torch.tensor([float(v_single[f] @ vectors[f]) for f in v_single])
        print(f"  {name:11s} {rate:10.3f} {rate / rate_single:7.1f}x {float(cos.min()):8.4f} "
              f"{float(cos.median()):7.4f} {float((cos >= 0.99).float().mean()):7.0%}")


def median_per_layer(runs: list[tuple[dict, dict]]) -> dict[int, float]:
    return {i: statistics.median(r[0][i] for r in runs) for i in runs[0][0]}


def pack_seconds(gen: Generator, per_layer: dict[int, float], n_images: int) -> float:
    """Whole pack at PACK_IMAGES images: each editable layer's channels at the measured
    time per channel of the nearest sampled layer at or before it."""
    measured = sorted(per_layer)
    total = 0.0
    for i in gd.selected_layers(gen.style_specs, None):
        ref = max((m for m in measured if m <= i), default=measured[0])
        total += gen.style_specs[i].channels * per_layer[ref]
    return total * PACK_IMAGES / n_images


def _hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.1f} min"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", type=existing_file,
                    help="a generator checkpoint instead of the demo arch")
    ap.add_argument("--clip-config", help="an open_clip config (.json or inline), random "
                    "weights (speed does not depend on them)")
    ap.add_argument("--clip-checkpoint", type=existing_file,
                    help="a CLIP weights file (with --clip-arch)")
    ap.add_argument("--clip-arch")
    ap.add_argument("--ffhq", action="store_true",
                    help="FFHQ 1024 config-f + ViT-B-32 architectures (random weights)")
    ap.add_argument("--demo-pack", action="store_true",
                    help="the bundled demo pack's trained generator and CLIP, on faces of its "
                    "own sampler (agreement depends on the weights, speed does not)")
    ap.add_argument("--threads", type=thread_count, default=2)
    ap.add_argument("--device", type=device_name, default="auto",
                    help="auto (cuda if present), cpu, cuda or cuda:N")
    ap.add_argument("--n-images", type=int_at_least(1), default=None,
                    help="images per channel (default 10; 2 with --ffhq)")
    ap.add_argument("--per-layer", type=int_at_least(1), default=None,
                    help="channels sampled per layer (default 3; 1 with --ffhq)")
    ap.add_argument("--every", type=int_at_least(1), default=None,
                    help="sample every n-th editable layer (default 1; 4 with --ffhq)")
    ap.add_argument("--batch-size", type=int_at_least(1), default=None,
                    help="our renders per call (default: the precompute's choice)")
    ap.add_argument("--repeats", type=int_at_least(1), default=None,
                    help="default 3; 1 with --ffhq")
    ap.add_argument("--k-sigma", type=positive_float, default=5.0)
    ap.add_argument("--approximations", action="store_true",
                    help="also time bf16 autocast and the linearized relevance, with the "
                    "agreement each keeps")
    args = ap.parse_args(argv)
    ffhq = args.ffhq
    n_images = args.n_images or (2 if ffhq else 10)
    per_layer = args.per_layer or (1 if ffhq else 3)
    every = args.every or (4 if ffhq else 1)
    repeats = args.repeats or (1 if ffhq else 3)
    torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    try:
        gen, clip, what, sample_w = load_models(args)
    except (AtelierError, OSError, ValueError) as e:  # a file that is not a model
        ap.exit(2, f"error: {e}\n")
    gen = gen.to(device)
    clip.to(device)
    batch = args.batch_size or gd.suggested_batch_size(gen)
    # statistics and base images at one truncation, as the precompute (and official) take them
    stats = gd.compute_style_stats(gen, 2000 if not ffhq else 500, batch=250,
                                   psi=gd.OFFICIAL_PSI, sample_w=sample_w)
    codes = gd.base_codes(gen, n_images, seed=0, psi=gd.OFFICIAL_PSI, sample_w=sample_w)
    codes = StyleCode(codes.specs, [t.detach() for t in codes.tensors])
    sample = sample_channels(gen, per_layer, every)
    n_sampled = sum(len(c) for c in sample.values())
    load0 = os.getloadavg()
    print(f"models: {what}")
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{args.threads} threads, {os.cpu_count()} CPUs")
    print(f"torch {torch.__version__}, {where}; "
          f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"{n_sampled} channels from {len(sample)} layers, {n_images} images per channel, "
          f"our batch {batch}, median of {repeats}")

    # Warm-up both paths once (allocator, oneDNN kernels), then interleave the repeats so
    # that a change in machine load hits both alike.
    first = {next(iter(sample)): sample[next(iter(sample))][:1]}
    time_single(gen, clip, StyleCode(codes.specs, [t[:1] for t in codes.tensors]), stats,
                first, args.k_sigma)
    time_batched(gen, clip, codes, stats, first, args.k_sigma, batch)
    runs_single, runs_ours = [], []
    for _ in range(repeats):
        runs_single.append(time_single(gen, clip, codes, stats, sample, args.k_sigma))
        runs_ours.append(time_batched(gen, clip, codes, stats, sample, args.k_sigma, batch))
    single, v_single = median_per_layer(runs_single), runs_single[0][1]
    ours, v_ours = median_per_layer(runs_ours), runs_ours[0][1]
    load1 = os.getloadavg()

    cos = torch.tensor([float(v_single[f] @ v_ours[f]) for f in v_single])
    rate_single = n_sampled / sum(single[i] * len(c) for i, c in sample.items())
    rate_ours = n_sampled / sum(ours[i] * len(c) for i, c in sample.items())
    names = {i: gen.style_specs[i].name for i in sample}
    print(f"\n{'layer':10s} {'official s/ch':>14s} {'ours s/ch':>10s} {'ratio':>7s}")
    for i in sample:
        print(f"{names[i]:10s} {single[i]:14.3f} {ours[i]:10.3f} {single[i] / ours[i]:7.1f}")
    print(f"\nofficial loop: {rate_single:8.3f} channels/s  ({n_images} images per channel)")
    print(f"ours, batched: {rate_ours:8.3f} channels/s")
    print(f"speed-up:      {rate_ours / rate_single:8.1f}x")
    print(f"agreement:     cosine min {float(cos.min()):.6f}, median {float(cos.median()):.6f}")
    n_channels = sum(gen.style_specs[i].channels for i in gd.selected_layers(gen.style_specs,
                                                                              None))
    print(f"full pack ({n_channels} channels x {PACK_IMAGES} images), estimated: official "
          f"{_hours(pack_seconds(gen, single, n_images))}, ours "
          f"{_hours(pack_seconds(gen, ours, n_images))}")
    single_s, batch_s, batching, reuse = speedup_sources(gen, clip, codes, batch,
                                                         max(repeats, 3))
    print("\nwhere the speed-up comes from (per render + CLIP encode):")
    print(f"  batching:  batch 1 {1e3 * single_s:.1f} ms, batch {batch} {1e3 * batch_s:.1f} ms"
          f" per image: {batching:.2f}x")
    print(f"  reuse:     starting at the perturbed layer instead of the input, weighted by "
          f"channels: {reuse:.2f}x")
    print(f"  together:  {batching * reuse:.2f}x, what batching and reuse give an exact "
          f"computation on this machine (measured above: {rate_ours / rate_single:.1f}x)")
    if args.approximations:
        print_approximations(gen, clip, codes, stats, sample, args, batch, single, v_single)
    load2 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (timings), "
          f"{load2[0]:.2f} (sources)")


if __name__ == "__main__":
    main()
