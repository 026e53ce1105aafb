"""`atelier discover`: find, label and transfer edit directions without prompts
(CLIP2StyleGAN) for a generator and a CLIP model; prints the directions with their labels
and confidences and can export them as JSON.

The result is cached per model pack and settings; one made before the pack's global
directions were computed is made again with them, and --recompute ignores the cache.
Progress goes to stderr. Ctrl-C stops the run with nothing written (exit status 130);
errors are one line on stderr (status 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from editor.core.arg_types import (
    DEVICE_HELP,
    THREADS_HELP,
    int_at_least,
    non_empty,
    prompt_text,
    thread_count,
)
from editor.core.errors import AtelierError, is_out_of_memory
from editor.engine.session import MAX_SEED

from . import command_help
from .failures import failure_line
from .model_options import add_model_options, clip_source
from .outputs import warnings_prefixed
from .precompute import ProgressLine, out_of_memory_advice

PROG = "atelier discover"
# editor.methods.discovery.METHODS, repeated to keep --help light
METHODS = ("w", "style", "focused")
MAX_EXTRA_WORDS = 20_000  # 40,000 took 34 s and 1.4 GB to label; 300,000 ran out of memory
MIN_SAMPLES_PER_COMPONENT = 10
# Every sample's latent and CLIP embedding is held (and cached) for the PCA, and each is a
# render: 1,000 took 3 h on a 2-core CPU at 1024 px; 100,000,000 asked for about 68 GB.
# 100 times the default is days of rendering at 1024 px, and a few hundred MB.
MAX_SAMPLES = 100_000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "discover", help=command_help("discover"),
        description="Sample images, PCA of their CLIP embeddings, label each direction with "
        "words (zero-shot and a sparse token mixture), split mixed ones, and transfer them "
        "to the generator as style deltas. Default: the bundled demo pack.")
    add_model_options(p)
    p.add_argument("--n-samples", type=int_at_least(2, MAX_SAMPLES), default=None,
                   metavar="N", help=f"images sampled for the PCA (default 1000; at most "
                   f"{MAX_SAMPLES:,})")
    p.add_argument("--k", type=int_at_least(1), default=None, metavar="K",
                   help="principal components kept (default 10)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=0,
                   help="seed of the sampled images")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="transfer whose deltas the table summarises (all are exported; "
                   "default: focused, or w where the pack has no global directions)")
    p.add_argument("--vocab", type=non_empty, metavar="FILE",
                   help="extra label words or phrases, one a line ('#' comments)")
    p.add_argument("--words", type=prompt_text, metavar="LIST",
                   help="extra label words, comma-separated")
    p.add_argument("--no-mixture", action="store_true",
                   help="zero-shot labels only (skip the token-mixture optimisation)")
    p.add_argument("--json", type=non_empty, metavar="OUT",
                   help="write the directions (labels, confidences, CLIP directions, style "
                   "deltas) to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--recompute", action="store_true",
                   help="discover again, ignoring a cached result (one made before the "
                   "pack's global directions is redone without it)")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, metavar="N",
                   help="images rendered per generator call (memory and speed only; default: "
                   "what the generator's resolution allows)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help=THREADS_HELP)
    p.set_defaults(func=cmd_discover)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _extra_words(args: argparse.Namespace) -> list[str]:
    from editor.methods.discovery import read_vocab_file

    words = [w.strip() for w in (args.words or "").split(",") if w.strip()]
    if args.vocab:
        try:
            words += read_vocab_file(args.vocab)
        except OSError as e:
            raise AtelierError(f"could not read the vocabulary file {args.vocab} ({e})") from e
        except UnicodeDecodeError as e:
            raise AtelierError(f"the vocabulary file {args.vocab} is not UTF-8 text") from e
    if len(words) > MAX_EXTRA_WORDS:
        raise AtelierError(f"{len(words)} extra label words; at most {MAX_EXTRA_WORDS} (each "
                           "is encoded by CLIP and scored against every direction)")
    return words


def _warn_unknown_words(pack, words: list[str]) -> None:
    """Say which extra label words the pack's CLIP never learned (the demo CLIP knows only
    its captions' words), as the prompt panel does: their labels would mean nothing, so
    label_setup leaves them out."""
    from editor.engine.discovered import unlearned_label_words

    if unknown := unlearned_label_words(pack, words):
        print(f"{PROG}: warning: words this CLIP never learned: "
              f"{', '.join(f'“{w}”' for w in unknown)}; it cannot label anything with them, "
              "so labels with them are left out", file=sys.stderr)


def _failure(e: BaseException, pack, config) -> int:
    """The error line; out of memory, with what was kept and a smaller batch to try."""
    from editor.engine.discovered import samples_kept
    from editor.methods.global_directions import suggested_batch_size

    line = failure_line(e)  # (another RuntimeError is a bug: it goes on as a traceback)
    if is_out_of_memory(e):
        batch = config.batch_size or suggested_batch_size(pack.model.generator)
        kept = "the images sampled so far are kept" if samples_kept(pack, config) else ""
        line += out_of_memory_advice(e, batch, kept)
    return _error(line)


def _check_counts(n_samples: int, k: int, clip_width: int | None) -> None:
    """Enough samples for k components to mean something: a correlation over a handful
    of images is always near +/-1, and PCA gives at most n - 1 components, and no more
    than CLIP's embedding has dimensions (said first: a --k past them was told to sample
    more images, then refused for the width, or asked for more than MAX_SAMPLES)."""
    if clip_width is not None and k > clip_width:
        raise AtelierError(f"--k {k} is more components than this CLIP model's {clip_width} "
                           f"dimensions; use --k {clip_width} or less")
    if n_samples < MIN_SAMPLES_PER_COMPONENT * k:
        raise AtelierError(f"--k {k} needs at least {MIN_SAMPLES_PER_COMPONENT * k} samples "
                           f"(--n-samples), got {n_samples}")


def _open(args: argparse.Namespace):
    from editor.core.devices import pick_device
    from editor.engine.models import default_generator_path
    from editor.engine.packs import open_pack

    generator = args.generator or default_generator_path()
    if generator is None:
        raise AtelierError("no generator given and the demo generator is not installed")
    return open_pack(generator, clip_source(args, generator), str(pick_device(args.device)))


def format_table(discovery, method: str) -> str:
    lines = [f"{'#':>2}  {'direction (- ↔ +)':36s} {'conf':>5} {'var':>6}  "
             f"{'top labels':48s} mixture tokens"]
    lines.append("-" * (len(lines[0]) + 10))
    for i, d in enumerate(discovery.directions, 1):
        labels = ", ".join(f"{x.text} {x.confidence:.2f}" for x in d.labels[:3])
        mix = " ".join(f"{x.text}:{x.confidence:.2f}" for x in d.mixture[:3])
        miss = "" if method in d.deltas else f"  [no {method} delta: {d.notes.get(method, '')}]"
        lines.append(f"{i:>2}  {d.title[:36]:36s} {d.confidence:5.2f} {d.variance:6.3f}  "
                     f"{labels[:48]:48s} {mix}{miss}")
    return "\n".join(lines)


def _finish(job, result_type: type):
    """Run a job showing its progress on stderr; its last item of `result_type`."""
    line = ProgressLine()
    result = None
    try:
        for item in job:
            if isinstance(item, result_type):
                result = item
            else:
                line.show(item)
    finally:
        line.close()
    return result


@warnings_prefixed(PROG)
def cmd_discover(args: argparse.Namespace) -> int:
    import torch

    from editor.core.paths import atomic_write_text
    from editor.engine import discovered as dd
    from editor.methods import discovery as dc

    from .outputs import check_outputs

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        pack = _open(args)
        words = _extra_words(args)
    except (AtelierError, OSError, ValueError) as e:
        return _error(str(e))
    _warn_unknown_words(pack, words)
    config = dd.default_config(pack)
    changes = {"seed": args.seed, "mixture": not args.no_mixture,
               "batch_size": args.batch_size}  # None: what the generator allows
    if args.n_samples is not None:
        changes["n_samples"] = args.n_samples
    if args.k is not None:
        changes["k"] = args.k
    config = dataclasses.replace(config, **changes)
    try:
        _check_counts(config.n_samples, config.k, pack.clip.embed_dim if pack.clip else None)
        if args.json:  # checked before the sampling, not after it
            check_outputs([Path(args.json)], args.overwrite)
    except (AtelierError, ValueError) as e:
        return _error(str(e))
    settings = pack.settings_note()
    print(f"generator {pack.name} ({pack.model.resolution} px), CLIP "
          f"{pack.clip.name if pack.clip else '-'}; {config.n_samples} images, {config.k} "
          f"components" + ("" if pack.data else "; no global-direction relevance for this "
                           "pack, so only the w transfer (run `atelier precompute` for all three)")
          + (f"; {settings}" if settings else ""), file=sys.stderr)
    try:
        result = _finish(dd.discovery_job(pack, extra_words=words, config=config,
                                          recompute=args.recompute), dc.Discovery)
    except KeyboardInterrupt:
        kept = (" (the images sampled so far are kept: the next run goes on from them)"
                if dd.samples_kept(pack, config) else "")
        print(f"{PROG}: interrupted; no directions were written{kept}.", file=sys.stderr)
        return 130
    # (an AtelierError: EntryBusy, another window or command samples these images)
    except (AtelierError, ValueError, MemoryError, RuntimeError) as e:
        return _failure(e, pack, config)
    assert result is not None
    how = ("from the cache" if result.from_cache
           else f"in {result.info.get('seconds', 0):.0f} s")
    if args.json:  # before the table: a stdout that cannot be written loses only that
        out = result.to_json()
        out["models"] = {"generator": str(pack.model.path), "clip": pack.clip.name
                         if pack.clip else None}
        try:
            atomic_write_text(Path(args.json), json.dumps(out, indent=1))
        except OSError as e:
            return _error(f"could not write {args.json} ({e.strerror or e})")
    print(f"{len(result.directions)} directions ({how}); confidence = correlation of the "
          f"label's zero-shot score with the direction over the sampled images")
    print(format_table(result, args.method or dd.available_method(result) or dc.DEFAULT_METHOD))
    if args.json:
        print(f"wrote {args.json}")
    return 0
