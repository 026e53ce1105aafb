"""`atelier invert` at work: the pictures read and cropped, inverted in batches, and the
reconstructions, latents and quality readout written. Its options and help are in
`invert_args`, which `atelier invert --help` reads without loading torch."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from editor.core.devices import pick_device
from editor.core.errors import AtelierError, InversionDivergedError, is_out_of_memory
from editor.core.image_io import (
    Box,
    ImageLoadError,
    check_export_path,
    load_image,
    resize,
    save_image,
)
from editor.core.paths import atomic_path, atomic_write_text
from editor.engine.compose import decode_wplus
from editor.engine.inverting import InvertedImage, invert_images, square_crop
from editor.engine.models import DEMO_GENERATOR
from editor.engine.packs import open_pack
from editor.engine.session import Session
from editor.methods.global_directions import Progress
from editor.methods.inversion import (
    local_vgg16_weights,
    suggested_pictures_per_batch,
)

from .invert_args import settings_from_args
from .model_options import clip_source
from .outputs import StatusLine, check_outputs, format_eta, refuse_existing, shown

# Crops are kept at most this big until they are inverted (at the generator's resolution,
# 1024 px for FFHQ): a folder of phone photos at full size would fill the memory.
CROP_KEEP_SIDE = 1024


def _parse_box(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        left, top, right, bottom = (int(v) for v in text.split(","))
    except ValueError as e:
        raise AtelierError(f"--crop takes LEFT,TOP,RIGHT,BOTTOM in pixels, got {text!r}") from e
    return left, top, right, bottom


def _outputs(args: argparse.Namespace) -> list[Path]:
    if args.output:
        if len(args.images) != 1:
            raise AtelierError("-o names one output; use --out-dir for several pictures")
        return [Path(args.output)]
    folder = Path(args.out_dir)
    if folder.exists() and not folder.is_dir():
        raise AtelierError(f"--out-dir {folder} is a file, not a folder")
    paths = [folder / f"{Path(im).stem}.png" for im in args.images]
    seen: dict[Path, str] = {}
    for image, path in zip(args.images, paths, strict=True):
        if path in seen:
            raise AtelierError(f"{shown(seen[path])} and {shown(image)} would both be "
                               f"written as {shown(path.name)}; invert them separately")
        seen[path] = image
    return paths


def _check_pictures(paths: list[str], box: tuple[int, int, int, int] | None) -> None:
    """Refuse a picture that cannot be read (or a --crop box that does not fit it) before
    any work, and say what was done to each (downscaled, alpha flattened, ...), with a
    progress line: a thousand photos take a while to read. Their pixels are dropped
    again: each batch reads its own pictures just before it is inverted, so that many
    pictures do not fill the memory."""
    line = StatusLine()
    try:
        for i, path in enumerate(paths):
            if len(paths) > 1:
                line.progress(f"checking pictures: {i + 1} of {len(paths)} "
                              f"{shown(Path(path).name)[:40]}", i / len(paths))
            _read(path, box, say=line.note)
    finally:
        line.close()


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _crop_of(path: str, box: tuple[int, int, int, int] | None,
             say: Callable[[str], None] | None = _say) -> np.ndarray:
    """The picture's square crop, the box in the file's own pixels (a big picture is read
    downscaled, so the box is scaled with it), reduced to at most CROP_KEEP_SIDE: only
    the generator's resolution is used. `say`: where to tell what was done to the picture
    (None once `_check_pictures` has)."""
    rgb, box = _read(path, box, say)
    rgb = square_crop(rgb, box)
    return resize(rgb, CROP_KEEP_SIDE) if rgb.shape[0] > CROP_KEEP_SIDE else rgb


def _read(path: str, box: tuple[int, int, int, int] | None,
          say: Callable[[str], None] | None) -> tuple[np.ndarray, Box | None]:
    """The picture's pixels, and the square box moved to them (None: centre crop)."""
    loaded = load_image(path)
    if say is not None:
        for note in loaded.notes:  # downscaled, first frame, alpha flattened, ...
            say(f"{shown(Path(path).name)}: {note}")
    if box is not None:
        width, height = loaded.original_size
        left, top, right, bottom = box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise AtelierError(f"--crop {left},{top},{right},{bottom} is not inside "
                               f"{Path(path).name} ({width}x{height})")
        if right - left != bottom - top:
            raise AtelierError(f"--crop must be square, got {right - left}x{bottom - top}")
        box = _scaled_square(box, (width, height), loaded.rgb.shape[1::-1])
    return loaded.rgb, box


def _say_enlarged(name: str, crop: np.ndarray, resolution: int) -> None:
    """A crop smaller than the generator is enlarged to its size (the crop dialog says so
    too): the reconstruction cannot be sharper than the crop."""
    side = crop.shape[0]
    if side < resolution:
        print(f"{shown(name)}: enlarged from {side}x{side} to {resolution}x{resolution} "
              f"for the generator ({resolution / side:.1f}x)", file=sys.stderr)


def _scaled_square(box: Box, size: tuple[int, int], scaled_size: tuple[int, int]) -> Box:
    """A square box in a picture of `size` moved to the same picture at `scaled_size`.
    Each axis has its own factor (the sides are rounded apart); one side serves both, and
    the box is shifted back inside where rounding pushed it past an edge."""
    (width, height), (new_width, new_height) = size, scaled_size
    left, top, right, bottom = box
    sx, sy = new_width / width, new_height / height
    side = max(1, min(round((right - left) * sx), round((bottom - top) * sy),
                      new_width, new_height))
    x = min(round(left * sx), new_width - side)
    y = min(round(top * sy), new_height - side)
    return x, y, x + side, y + side


def _print_progress(line: StatusLine, item: Progress, batch: str) -> None:
    eta = f" {format_eta(item.eta_s)}" if item.eta_s is not None else ""
    line.progress(f"inverting {batch}: {100 * item.fraction:5.1f}% {item.message[:40]:40s}{eta}",
                  item.fraction)


def run(args: argparse.Namespace) -> int:
    n = 0  # pictures inverted together, once known
    try:
        outputs = _outputs(args)
        box = _parse_box(args.crop)
        if box is not None and len(args.images) != 1:
            raise AtelierError("--crop applies to one picture")
        latents = [o.with_suffix(".npy") for o in outputs] if args.latents else []
        for output in outputs:
            check_export_path(output, overwrite=True)  # its extension; existence: below
        json_path = [Path(args.json_path)] if args.json_path else []
        check_outputs(outputs + latents + json_path, args.overwrite, args.images)
        _check_pictures(args.images, box)  # every picture refused or noted up front ...
        generator = args.generator or str(DEMO_GENERATOR)
        named_clip = bool(args.clip_file or args.clip_arch) or args.perceptual == "clip"
        # without a CLIP named, inversion goes on without one (pixel and VGG losses) when
        # the generator's usual CLIP is not available here
        pack = open_pack(generator, clip_source(args, generator),
                         device=str(pick_device(args.device)),
                         require_clip=named_clip)
        if pack.clip is None:
            print(f"note: no CLIP model ({pack.clip_error}); inverting without CLIP "
                  "features", file=sys.stderr)
        settings = settings_from_args(args, seed=args.seed)
        gen_id, clip_id, _ = pack.identities()
        resolution = pack.model.generator.img_resolution
        rows = []
        total = len(args.images)
        n = min(total, args.batch or suggested_pictures_per_batch(pack.model.generator,
                                                                  settings.starts))
        for first in range(0, total, n):
            paths = args.images[first:first + n]
            names = [Path(p).name for p in paths]
            label = (f"{first + 1}" if len(names) == 1 else
                     f"{first + 1}-{first + len(names)}") + f" of {total}"
            # ... and read again, a batch at a time, just before it is inverted
            crops = [_crop_of(path, box, say=None) for path in paths]
            for name, crop in zip(names, crops, strict=True):
                _say_enlarged(name, crop, resolution)
            results: list[InvertedImage] = []
            line = StatusLine()
            try:
                for item in invert_images(pack, crops, names, settings):
                    if isinstance(item, Progress):
                        _print_progress(line, item, label)
                    else:
                        results = item
            finally:
                line.close()
            del crops  # not held while the next batch is read
            for i, inv in enumerate(results):
                k = first + i
                session = Session(source=inv.source, generator=gen_id, clip=clip_id)
                save_image(outputs[k], inv.reconstruction, recipe=session.to_json(),
                           overwrite=args.overwrite)
                if latents:
                    _save_npy(latents[k], inv, pack.model.generator, args.overwrite)
                rows.append(_row(args.images[k], outputs[k], inv))
            for row in rows[first:]:  # once the batch is written: a print cannot cost a file
                _print_row(row)
        if args.json_path:
            atomic_write_text(args.json_path, json.dumps(
                {"settings": settings.to_dict(), "images": rows}, indent=2))
    except InversionDivergedError as e:
        print(f"atelier invert: {e}; try a lower --lr than {args.lr:g}", file=sys.stderr)
        return 1
    except (AtelierError, ImageLoadError, ValueError, OSError) as e:
        print(f"atelier invert: {e}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as e:
        if not is_out_of_memory(e):
            raise
        print(f"atelier invert: out of memory; {_memory_advice(n, args.perceptual)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; pictures already written are complete", file=sys.stderr)
        return 130
    return 0


def _memory_advice(batch: int, perceptual: str) -> str:
    if batch > 1:
        return f"invert fewer pictures at once (--batch {batch // 2})"
    if batch == 1:
        return ("even one picture at a time does not fit: try fewer --starts or --candidates"
                + _vgg_advice(perceptual))
    return "the pictures or the models do not fit in this machine's memory"


def _vgg_advice(perceptual: str) -> str:
    """Where the VGG loss is used ("auto" picks it when its weights are here), its feature
    maps double what an optimisation step holds at 1024 px (two starts: 10.6 GiB, 5.3
    without); CLIP looks at 224 px. With the CLIP loss or none already: nothing to add."""
    if perceptual in ("auto", "vgg") and local_vgg16_weights() is not None:
        return ", or --perceptual clip (the VGG16 loss doubles what a step needs)"
    return ""


def _save_npy(path: Path, inv: InvertedImage, gen, overwrite: bool) -> None:
    assert inv.source.wplus_data is not None
    w = decode_wplus(inv.source.wplus_data, gen.n_latent, gen.w_dim)[0].numpy()
    refuse_existing(path, overwrite)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, w)


def _row(image: str, output: Path, inv: InvertedImage) -> dict:
    q = inv.quality
    return {"image": str(image), "output": str(output), "psnr_db": round(q.psnr_db, 2),
            "ssim": round(q.ssim, 4),
            "clip_similarity": None if q.clip_similarity is None else round(q.clip_similarity, 4),
            "perceptual": inv.perceptual, "seconds": round(inv.seconds, 1)}


def _print_row(row: dict) -> None:
    clip = "" if row["clip_similarity"] is None else f", CLIP {row['clip_similarity']:.3f}"
    print(f"{shown(row['output'])}: PSNR {row['psnr_db']:.1f} dB, SSIM {row['ssim']:.3f}{clip} "
          f"({row['perceptual']} loss, {row['seconds']:.0f} s for its batch)")


