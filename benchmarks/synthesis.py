"""Synthesis speed of the FFHQ 1024 config-f architecture (random weights), batch 1.

    .venv/bin/python benchmarks/synthesis.py [--repeats 7] [--device cpu|cuda]

Prints the median and spread of full-resolution and max_res=256 preview synthesis (from a
ready style code, i.e. what a slider drag costs), plus mapping + style computation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from editor.core.arg_types import device_name, int_at_least, power_of_two
from editor.core.generator import Generator, GeneratorConfig


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    fn()  # warm-up (allocations, cudnn autotune)
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int_at_least(1), default=7,
                    help="timed runs per case, after one warm-up (default 7)")
    ap.add_argument("--device", type=device_name, default="auto",
                    help="auto (CUDA if present), cpu, cuda or cuda:N")
    ap.add_argument("--resolution", type=power_of_two, default=1024,
                    help="a power of two (default 1024)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig.rosinality(args.resolution)).eval().to(device)
    with torch.no_grad():
        code = gen.styles(gen.mapping(torch.randn(1, gen.z_dim, device=device), psi=0.7))
        preview = args.resolution > 256  # a smaller generator has no 256 px preview
        cases = {
            f"full {args.resolution}px": lambda: gen.synthesize(code),
            **({"preview max_res=256": lambda: gen.synthesize(code, max_res=256)}
               if preview else {}),
            "mapping + styles": lambda: gen.styles(gen.mapping(torch.randn(1, gen.z_dim,
                                                                             device=device))),
        }
        if device.type == "cuda":
            cases[f"full {args.resolution}px fp16"] = lambda: gen.synthesize(code, fp16=True)
            if preview:
                cases["preview 256 fp16"] = lambda: gen.synthesize(code, max_res=256, fp16=True)
        name = torch.cuda.get_device_name() if device.type == "cuda" else (
            f"CPU, {torch.get_num_threads()} threads")
        print(f"device: {name}; torch {torch.__version__}; batch 1; {args.repeats} repeats")
        print(f"{'case':28s} {'median ms':>10s} {'min':>8s} {'max':>8s}")
        for label, fn in cases.items():
            t = _time(fn, args.repeats, device)
            print(f"{label:28s} {statistics.median(t):10.1f} {min(t):8.1f} {max(t):8.1f}")


if __name__ == "__main__":
    main()
