"""`atelier import-styleclip`: the official StyleCLIP's precomputed channel relevance
(`fs3.npy`, optionally its `S_mean_std`) as the model pack of a generator and a CLIP, so
that text edits need no precompute (hours to a day on a GPU for FFHQ 1024).

The file is checked before it is kept: a few channels are measured again on these models
and compared (editor.methods.styleclip_files). Errors are one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editor.core.arg_types import DEVICE_HELP, THREADS_HELP, int_at_least, thread_count
from editor.core.errors import AtelierError
from editor.core.paths import unwritable_reason

from . import command_help
from .failures import failure_line
from .model_options import GENERATOR_HELP, generator_path
from .precompute import (
    MAX_STATS_SAMPLES,
    add_clip_args,
    load_models,
    models_line,
    show_progress,
)

PROG = "atelier import-styleclip"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-styleclip", help=command_help("import-styleclip"),
        description="Import the channel relevance the official StyleCLIP code computed "
        "(npy/ffhq/fs3.npy, made with CLIP ViT-B/32) for a generator, so that its text "
        "edits need no precompute. A few channels are measured again and compared first: "
        "a file made for another generator or CLIP is refused.")
    p.add_argument("fs3", metavar="FS3.npy", help="StyleCLIP's fs3.npy")
    p.add_argument("--generator", required=True, type=generator_path, metavar="PATH",
                   help=f"the one the file was made for: {GENERATOR_HELP}")
    add_clip_args(p)
    p.add_argument("--stats", metavar="S_mean_std",
                   help="StyleCLIP's S_mean_std pickle (read without running anything); "
                   "default: the S_mean_std beside FS3.npy, where GetCode.py writes it, "
                   "else the style statistics are computed here")
    p.add_argument("--stats-samples", type=int_at_least(2, MAX_STATS_SAMPLES), default=10_000,
                   metavar="N", help="samples for computed style statistics (default 10000)")
    p.add_argument("--force", action="store_true",
                   help="keep the file even if it does not match these models")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help=THREADS_HELP)
    p.add_argument("--into", metavar="DIR", default=None,
                   help="write the pack into this folder instead of the user cache")
    p.set_defaults(func=cmd_import_styleclip)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def cmd_import_styleclip(args: argparse.Namespace) -> int:
    from editor.engine.packs import computed_pack, default_relevance_config
    from editor.methods import precompute as pc
    from editor.methods import styleclip_files as sf

    for given in (args.fs3, args.stats):
        if given is not None and not Path(given).is_file():  # a folder is not "no such file"
            return _error(f"{given}: "
                          f"{'a folder, not a file' if Path(given).is_dir() else 'no such file'}")
    try:
        sf.open_fs3(args.fs3)  # not a .npy, say: said before seconds of loading models
        device, loaded, clip, sample_w, sampler = load_models(args, PROG)
    except AtelierError as e:
        return _error(str(e))
    root = Path(args.into) if args.into else None
    entry = pc.imported_pack_cache(loaded.content_hash, clip.content_hash, root)
    if problem := unwritable_reason(entry.dir):
        return _error(f"cannot write the pack into {entry.dir}: {problem} (--into picks "
                      f"another folder)")
    print(f"{models_line(args, loaded, clip)}, device {device}", file=sys.stderr)
    if computed_pack(args.generator, loaded.content_hash, clip.content_hash, sampler):
        print(f"{PROG}: note: these models have a pack computed here, which text edits use "
              f"instead of an imported one; the import is kept for when it is not there",
              file=sys.stderr)
    earlier = pc.load_imported_pack(loaded.content_hash, clip.content_hash, root)
    stats = args.stats or sf.companion_stats(args.fs3)
    try:
        data = show_progress(sf.import_styleclip_pack(
            loaded.generator, clip, loaded.content_hash, clip.content_hash, args.fs3, stats,
            clip_dims=clip.embed_dim, stats_samples=args.stats_samples,
            psi=default_relevance_config(args.generator).psi, sample_w=sample_w,
            sampler=sampler, root=root, force=args.force))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was imported", file=sys.stderr)
        return 130
    except sf.MismatchError as e:
        return _error(f"{e} (--force keeps it anyway)")
    except (AtelierError, ValueError, OSError, MemoryError, RuntimeError) as e:
        return _error(failure_line(e))
    assert data is not None
    if data.save_error:
        return _error(f"the file was read but not kept, so nothing was imported: "
                      f"{data.save_error}")
    rel = data.relevance
    agreement = data.info.get("agreement")
    check = sf.Agreement.from_dict(agreement).describe() if agreement else "not checked"
    # what did not fit in words; the check's numbers are on the line already
    said = {"statistics": "its statistics do not describe the generator ({})",
            "channels": f"its channels do not agree with them (median cosine under "
                        f"{sf.MIN_AGREEMENT})"}
    misfits = [said[kind].format(numbers) for kind, _, numbers in
               (f.partition(": ") for f in data.info.get("forced") or [])]
    forced = (f" (kept because of --force although it does not fit these models: "
              f"{'; '.join(misfits)})" if misfits else "")
    if earlier is not None and earlier.key != data.key:  # one import per models: said
        print(f"{PROG}: note: this replaces the directions imported before from "
              f"{earlier.imported_from}; pictures made with those say so when replayed",
              file=sys.stderr)
    print(f"imported: {len(rel.channels)} channels x {rel.vectors.shape[1]} dims, "
          f"statistics {data.info['stats_from']}; check: {check}{forced}\n{entry.path}")
    return 0
