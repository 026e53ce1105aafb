"""The demo world's renderer: speed per style and how bold each attribute is.

    .venv/bin/python -m benchmarks.toyfaces_world [--n 300] [--legibility-n 12]
                          [--style normal] [--grid /tmp/toyfaces_grid.png]

Speed: median ms per 64 px image (wall and CPU time; one process), per style, and masks.
Legibility: for every value pair of every attribute, faces that differ only there, box-
downsampled to 32 px: the mean number of changed pixels (of 1024) and the mean abs
difference over them (0..1). The grid PNG shows 8x8 samples, a row per style, a row
varying each attribute in turn, and a 32 px version of the same beside it (`*_32.png`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from editor.core.arg_types import int_at_least
from editor.core.paths import atomic_path
from editor.toyfaces.attributes import ATTRIBUTES, STYLES, Attributes, sample_attributes
from editor.toyfaces.legibility import legibility_table
from editor.toyfaces.render import feature_mask, render


def _median_ms(fn, n: int) -> tuple[float, float]:
    """(wall, CPU) median ms per call; CPU time is the steadier number on a shared machine."""
    wall, cpu = [], []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def time_style(style: str, n: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    faces = [sample_attributes(rng) for _ in range(n)]
    return _median_ms(lambda i: render(faces[i], style, jitter_seed=i), n)


def time_masks(n: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    faces = [sample_attributes(rng) for _ in range(n)]
    return _median_ms(lambda i: feature_mask(faces[i], jitter_seed=i), n)


def _sheet(rows: list[list[np.ndarray]], scale: int) -> Image.Image:
    h = rows[0][0].shape[0]
    ncol = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + 2), ncol * (h + 2), 3), 40, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            out[i * (h + 2):i * (h + 2) + h, j * (h + 2):j * (h + 2) + h] = im
    img = Image.fromarray(out)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def write_grid(path: Path, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    faces = [sample_attributes(rng) for _ in range(64)]
    rows = [[render(a, jitter_seed=8 * i + j) for j, a in enumerate(faces[8 * i:8 * i + 8])]
            for i in range(8)]
    rows += [[render(a, s, jitter_seed=j) for j, a in enumerate(faces[:8])] for s in STYLES[1:]]
    base = Attributes(skin="tan", hair_colour="brown", hair_length="short", background="teal")
    rows += [[render(base.replace(**{name: v})) for v in values]
             for name, values in ATTRIBUTES.items()]
    small = [[np.asarray(Image.fromarray(x).reduce(2)) for x in row] for row in rows]
    for sheet, where in ((_sheet(rows, 3), path),
                         (_sheet(small, 6), path.with_name(path.stem + "_32.png"))):
        with atomic_path(where) as tmp:  # no half-written picture where one is asked for
            sheet.save(tmp, format="PNG")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int_at_least(1), default=300, help="images timed per style")
    ap.add_argument("--legibility-n", type=int_at_least(1), default=12,
                    help="base faces per value pair")
    ap.add_argument("--style", default="normal", choices=STYLES, help="style for legibility")
    ap.add_argument("--grid", type=Path, default=None, help="also write a grid PNG here")
    args = ap.parse_args()
    if args.grid is not None and not args.grid.parent.is_dir():  # not after the whole run
        ap.error(f"--grid: {args.grid.parent} is not a folder")
    if args.grid is not None and args.grid.is_dir():
        ap.error(f"--grid: {args.grid} is a folder; give the PNG's file name")

    print("render speed, 64 px, median ms/image (wall, CPU):")
    for style in STYLES:
        print("  {:10s} {:6.2f} {:6.2f}".format(style, *time_style(style, args.n)))
    print("  {:10s} {:6.2f} {:6.2f}".format("mask", *time_masks(args.n)))

    print(f"\nlegibility at 32 px, {args.style} style"
          " (pixels changed of 1024, mean |diff| over them):")
    for row in legibility_table(args.legibility_n, style=args.style):
        print(f"  {row.attribute:12s} {row.a:>10s} vs {row.b:<10s}"
              f" {row.changed_px:6.1f} px  {row.mean_diff:.2f}")
    if args.grid:
        write_grid(args.grid)
        print(f"\ngrid: {args.grid}")


if __name__ == "__main__":
    main()
