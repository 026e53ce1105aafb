"""`atelier precompute`: the global-directions model pack (style statistics + channel
relevance) for a generator and a CLIP model, cached on disk for the editor.

Progress (percent and ETA) goes to stderr. Ctrl-C keeps what is finished in a partial
cache entry; the same command resumes it. Errors are one line on stderr and exit status 1;
an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from editor.core import zoo
from editor.core.arg_types import (
    DEVICE_HELP,
    THREADS_HELP,
    float_within,
    int_at_least,
    non_empty,
    positive_float,
    thread_count,
)
from editor.core.errors import AtelierError, is_out_of_memory
from editor.core.paths import unwritable_reason
from editor.engine.session import PSI_RANGE

from . import command_help
from .failures import failure_line
from .model_options import CLIP_FILE_HELP, GENERATOR_HELP, clip_file_path, generator_path
from .outputs import (
    StatusLine,
    check_outputs,
    format_eta,
    shown,
    warnings_prefixed,
    with_folder_source,
)

if TYPE_CHECKING:  # torch and the methods load when the command runs, not for --help
    import torch

    from editor.core.checkpoints import LoadedGenerator
    from editor.core.clip_model import ClipModel
    from editor.methods import global_directions as gd

PROG = "atelier precompute"
# The paper's settings (RelevanceConfig's defaults), repeated here to keep --help light.
N_IMAGES, K_SIGMA, SEED, PSI = 100, 5.0, 0, 0.7
MAX_SEED = 2**62  # seeds are offset (base images from 7,000,000 on) within int64
# Every base image's W+ and style code is held for the whole run (72 KB each at 1024 px):
# 100 times the paper's count is 0.7 GB and days of work per 100 on FFHQ; a billion ran
# the machine out of memory before the first progress line.
MAX_IMAGES = 10_000
# The statistics are a running mean and variance, but an unbounded count ran for ever at
# "0.0 % ETA --" (a typo's extra zeros), and a stop keeps none of them: 100 times the
# paper's 10,000, far past where a channel's mean and std stop moving.
MAX_STATS_SAMPLES = 1_000_000
# A first estimate of the time left above this gets the ways to make the job shorter.
LONG_JOB_S = 24 * 3600
# A job shorter than this gets no estimate line: its progress line says enough.
ESTIMATE_FROM_S = 60


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `precompute` command to a parser."""
    p = subparsers.add_parser(
        "precompute", help=command_help("precompute"),
        description="Compute the style statistics and the per-channel CLIP relevance that "
        "text edits (StyleCLIP global directions) need, for one generator and one CLIP "
        "model. The result is cached; interrupted runs resume.")
    p.add_argument("--generator", required=True, type=generator_path, metavar="PATH",
                   help=GENERATOR_HELP)
    add_clip_args(p)
    p.add_argument("--n-images", type=int_at_least(1, MAX_IMAGES), default=N_IMAGES,
                   metavar="N", help=f"base images per channel (default {N_IMAGES}, as the "
                   f"paper; at most {MAX_IMAGES:,})")
    p.add_argument("--k-sigma", type=positive_float, default=K_SIGMA, metavar="K",
                   help=f"perturbation in standard deviations (default {K_SIGMA:g})")
    p.add_argument("--layers", nargs="+", metavar="NAME",
                   help="style layers (e.g. conv1 convs.0); default: every non-toRGB layer")
    p.add_argument("--stats-samples", type=int_at_least(2, MAX_STATS_SAMPLES), default=10_000,
                   metavar="N", help="samples for the style statistics (default 10000)")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, metavar="N",
                   help="renders per generator call (default: from the resolution and, on a "
                        "GPU, its free memory)")
    p.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=SEED,
                   help="seed of the base images")
    p.add_argument("--psi", type=float_within(*PSI_RANGE), default=None,
                   help=f"truncation of the base images and of the style statistics, "
                        f"{PSI_RANGE[0]:g} to {PSI_RANGE[1]:g} as in the window (default "
                        f"{PSI}, as the paper; the demo pack's: 1.0, as the window opens it)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help=THREADS_HELP)
    p.add_argument("--into", type=non_empty, metavar="DIR", default=None,
                   help="write the pack into this folder instead of the user cache (how the "
                   "demo pack's directions are made for "
                   "editor/resources/models/toyfaces/directions; the pack that ships there "
                   "is otherwise not computed again)")
    p.add_argument("--json", type=non_empty, metavar="OUT",
                   help="also write a summary (the pack's file, the models, the settings, "
                   "seconds, channels) to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=cmd_precompute)


def add_clip_args(p: argparse.ArgumentParser) -> None:
    """The CLIP model options (read by load_clip), shared with `atelier import-styleclip`."""
    clip = p.add_mutually_exclusive_group(required=True)
    clip.add_argument("--clip-pretrained", type=non_empty, metavar="TAG",
                      help="open_clip pretrained tag (with --clip-arch), e.g. openai")
    clip.add_argument("--clip-checkpoint", "--clip-file", dest="clip_checkpoint",
                      type=clip_file_path, metavar="PATH",
                      help=CLIP_FILE_HELP)
    clip.add_argument("--clip-config", type=non_empty, metavar="JSON",
                      help="open_clip model config: a .json file or inline JSON (random "
                      "weights unless --clip-weights is given)")
    p.add_argument("--clip-arch", type=non_empty, metavar="ARCH",
                   help="open_clip architecture, e.g. ViT-B-32")
    p.add_argument("--clip-weights", type=non_empty, metavar="PATH",
                   help="weights for --clip-config")
    p.add_argument("--download", action="store_true",
                   help="allow downloading the pretrained CLIP weights if not cached")


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def out_of_memory_advice(e: BaseException, batch: int, kept: str = "") -> str:
    """What follows an error line when the run ran out of memory: what was kept (`kept`,
    e.g. "progress saved"), and that fewer renders per call may fit."""
    if not is_out_of_memory(e) or batch <= 1:  # one render a call: no smaller batch
        return ""
    saved = f"{kept}: " if kept else ""
    return f"; {saved}run again with a smaller --batch-size (this run: {batch})"


class ProgressLine:
    """One updating line on a terminal; on a pipe or log, a line every `every_s` and at
    each new phase of the work."""

    def __init__(self, out: TextIO | None = None, every_s: float = 10.0):
        self.line = StatusLine(out, log_every_s=every_s)

    def show(self, p: gd.Progress) -> None:
        self.line.show(f"{100 * p.fraction:5.1f}%  {format_eta(p.eta_s)}  {p.message}",
                       step=p.message.split(":")[0], final=p.done == p.total)

    def note(self, text: str) -> None:
        """A line of its own between the progress lines (a terminal's line is ended)."""
        self.line.note(text)

    def close(self) -> None:
        self.line.close()


def show_progress(job: Iterator, estimate: Callable[[gd.Progress], str | None] | None = None
                  ) -> object:
    """Run a job, its Progress shown on one stderr line (closed whatever happens); its
    last item (the PackData) is returned. `estimate(progress)` is asked once, at the
    first progress with a time left (the first timed step), for a line to show."""
    from editor.methods.global_directions import Progress

    line, result = ProgressLine(), None
    try:
        for item in job:
            if isinstance(item, Progress):
                if (estimate is not None and item.eta_s is not None
                        and item.done < item.total):
                    text, estimate = estimate(item), None
                    if text:
                        line.note(text)
                line.show(item)
            else:
                result = item
    finally:
        line.close()
    return result


def estimate_line(eta_s: float, config: gd.RelevanceConfig, device: torch.device
                  ) -> str | None:
    """What the first measured rate says of the whole precompute, and for a long one, how
    to make it shorter (None for a job of a minute or less)."""
    import torch

    from editor.core.durations import rough_duration

    if eta_s < ESTIMATE_FROM_S:
        return None
    text = (f"{PROG}: estimate: about {rough_duration(eta_s)} left at the speed of the "
            f"first steps (a rough estimate; the progress line keeps it up to date)")
    if eta_s > LONG_JOB_S:
        ways = []
        if device.type == "cpu" and torch.cuda.is_available():
            ways.append("--device cuda (a CUDA GPU is available)")
        ways.append("--layers with fewer style layers" + (
            "" if config.layers else " (now all of them)"))
        if config.n_images > 1:
            ways.append(f"a smaller --n-images (now {config.n_images})")
        said = " or ".join(filter(None, (", ".join(ways[:-1]), ways[-1])))
        text += (f"; to make it shorter: {said} (Ctrl-C keeps the progress; the same "
                 f"command resumes)")
    return text


def work_text(gen, config: gd.RelevanceConfig, stats_samples: int) -> str:
    """The amount of work of a precompute, said before it starts."""
    from editor.methods import global_directions as gd
    from editor.methods import precompute as pc

    layers = gd.selected_layers(gen.style_specs, config.layers)
    pairs = gd.relevance_work(gen, config)
    channels = pairs // config.n_images
    renders = int(pairs * pc.RELEVANCE_RENDERS)
    return (f"{pairs:,} (channel, image) pairs to compute ({channels:,} style channels of "
            f"{len(layers)} layer{'s' if len(layers) != 1 else ''} x {config.n_images} "
            f"images, {renders:,} renders with CLIP encodes), after style statistics of "
            f"{stats_samples:,} samples")


def _read_config(text: str) -> dict:
    try:
        if text.lstrip().startswith("{"):
            return json.loads(text)
        return json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise AtelierError(f"could not read the CLIP config {text!r} ({e})") from e


def load_clip(args: argparse.Namespace, device: torch.device, prog: str = PROG):
    from editor.core.clip_model import ClipModel, describes_itself, read_weights

    if args.clip_pretrained:
        if not args.clip_arch:
            raise AtelierError("--clip-pretrained needs --clip-arch (e.g. ViT-B-32)")
        return ClipModel.from_pretrained(args.clip_arch, args.clip_pretrained, device=device,
                                         download=args.download)
    if args.clip_checkpoint:
        # an installed file's architecture is known: found when it was imported
        arch = args.clip_arch or (None if describes_itself(args.clip_checkpoint)
                                  else zoo.installed_clip_arch(args.clip_checkpoint))
        return ClipModel.from_checkpoint(arch, args.clip_checkpoint, device=device)
    config = _read_config(args.clip_config)
    weights = read_weights(args.clip_weights) if args.clip_weights else None
    if weights is None:
        import torch

        # Seeded, so that runs (and their cache entries) agree; useful for smoke tests only.
        print(f"{prog}: note: no --clip-weights, the CLIP model has random weights (seed 0)",
              file=sys.stderr)
        torch.manual_seed(0)
    return ClipModel.from_config(config, weights, device=device, name="cli-config")


def load_models(args: argparse.Namespace, prog: str = PROG) -> tuple[
        torch.device, LoadedGenerator, ClipModel, gd.WSampler | None, str | None]:
    """The device, generator (in eval mode), CLIP and latent sampler (demo_sampler) the
    shared options name, with --threads applied first. Raises AtelierError."""
    import torch

    from editor.core.checkpoints import load_generator
    from editor.core.devices import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    loaded = load_generator(args.generator, device=device)
    clip = load_clip(args, device, prog)
    loaded.generator.eval()
    return device, loaded, clip, *demo_sampler(loaded, device)


def models_line(args: argparse.Namespace, loaded: LoadedGenerator, clip: ClipModel) -> str:
    """Which models a command works on, for its first line."""
    return (f"generator {Path(args.generator).name} ({loaded.generator.config.resolution} "
            f"px, hash {loaded.content_hash[:12]}), CLIP {clip.name} (hash "
            f"{clip.content_hash[:12]})")


def demo_sampler(loaded, device: torch.device) -> tuple[gd.WSampler | None, str | None]:
    """The demo world's generator reads attribute codes, not Gaussian z: sample its own."""

    from editor.toyfaces import conditioning

    if loaded.metadata.get("sampler") != conditioning.SAMPLER_NAME:
        return None, None
    gen = loaded.generator

    def sample_w(seeds: torch.Tensor) -> torch.Tensor:
        return gen.mapping(conditioning.z_for_seeds(seeds.tolist()).to(device))

    return sample_w, conditioning.SAMPLER_NAME


def _bundled_pack(args: argparse.Namespace, gen_hash: str, clip_hash: str,
                  config: gd.RelevanceConfig, sampler: str):
    """(PackData, file) of the pack that ships with the program for these models and
    settings (the demo pack's), which the editor reads before the user cache; else None.
    With --into the folder named is the one looked in (and written)."""
    from editor.engine.packs import DEMO_DIRECTIONS, is_demo_generator
    from editor.methods import precompute as pc

    if args.into or not is_demo_generator(args.generator):
        return None
    data = pc.load_pack_data(gen_hash, clip_hash, args.stats_samples, config, sampler,
                             DEMO_DIRECTIONS)
    if data is None:
        return None
    return data, pc.pack_cache(gen_hash, clip_hash, args.stats_samples, config, sampler,
                               DEMO_DIRECTIONS).path


def _write_summary(args: argparse.Namespace, loaded, clip, config: gd.RelevanceConfig,
                   data, path: Path, how: str) -> str | None:
    """--json: what a script needs of the pack; an error message, or None."""
    from editor.core.paths import atomic_write_text

    rel = data.relevance
    summary = {"pack": str(path), "how": how,
               "generator": {"path": str(args.generator), "hash": loaded.content_hash},
               "clip": {"name": clip.name, "hash": clip.content_hash},
               "settings": {**config.to_dict(), "stats_samples": args.stats_samples},
               "seconds": data.info.get("seconds"),
               "channels": len(rel.channels), "dims": int(rel.vectors.shape[1])}
    try:
        atomic_write_text(Path(args.json), json.dumps(summary, indent=1))
    except OSError as e:
        return f"could not write {shown(args.json)} ({e.strerror or e})"
    print(f"wrote {shown(args.json)}", file=sys.stderr)  # stdout's last line: the pack
    return None


@warnings_prefixed(PROG)
def cmd_precompute(args: argparse.Namespace) -> int:
    from editor.engine.packs import default_relevance_config
    from editor.methods import global_directions as gd
    from editor.methods import precompute as pc

    if args.psi == 0:  # hours of work gave a pack of zero directions, every prompt refused
        return _error("--psi 0 makes every base image the average face: the style "
                      "statistics have no spread, and every direction would come out "
                      f"zero (use another truncation; default {PSI})")
    try:
        if args.json:  # before minutes (or days) of work, not after them
            check_outputs([Path(args.json)], args.overwrite)
        device, loaded, clip, sample_w, sampler = load_models(args)
    except AtelierError as e:
        return _error(str(e))
    except (MemoryError, RuntimeError) as e:  # the models do not fit: one line, not a trace
        return _error(failure_line(e))
    gen = loaded.generator
    batch = args.batch_size or gd.suggested_batch_size(gen)
    config = gd.RelevanceConfig(n_images=args.n_images, k_sigma=args.k_sigma,
                                layers=tuple(args.layers) if args.layers else None,
                                batch_size=batch, seed=args.seed,
                                psi=args.psi if args.psi is not None
                                else default_relevance_config(args.generator).psi)
    try:
        chosen = gd.selected_layers(gen.style_specs, config.layers)
    except ValueError as e:
        names = ", ".join(s.name for s in gen.style_specs if not s.is_torgb)
        return _error(f"{e} (this generator's layers: {names})")
    if sorted(chosen) == gd.selected_layers(gen.style_specs, None):
        # every layer spelled out is the default's pack (its cache entry, not a second one)
        config = dataclasses.replace(config, layers=None)
    sampler = pc.sampler_name(sample_w, sampler)
    if bundled := _bundled_pack(args, loaded.content_hash, clip.content_hash, config, sampler):
        # the demo pack's directions ship with the program, and the editor reads them
        # first: computing them again (an hour and more on a CPU) would never be used
        data, path = bundled
        print(f"{PROG}: already computed: the pack with these settings ships with the "
              f"program, and the editor uses it; nothing to do (--into DIR computes it "
              f"again into DIR)", file=sys.stderr)
        if args.json and (problem := _write_summary(args, loaded, clip, config, data, path,
                                                    "bundled")):
            return _error(problem)
        rel = data.relevance
        print(f"pack ready (already computed, bundled with the program): "
              f"{len(rel.channels)} channels x {rel.vectors.shape[1]} dims\n{shown(path)}")
        return 0
    root = Path(args.into) if args.into else None
    entry = pc.pack_cache(loaded.content_hash, clip.content_hash, args.stats_samples, config,
                          sampler, root)
    # before the work: a pack that cannot be kept is lost when the command ends (a finished
    # one in a read-only place is only read)
    # (a damaged file there is computed again: checked as a pack, not as a name)
    finished = pc.finished_pack(entry, warn=False) is not None
    if not finished and (problem := unwritable_reason(entry.dir)):
        return _error(with_folder_source(f"cannot write the pack into {entry.dir}: {problem} "
                                         f"(it could not be kept; --into picks another "
                                         f"folder)"))
    first = (f"{models_line(args, loaded, clip)}, {config.n_images} images/channel, batch "
             f"{batch}, device {device}")
    if not finished:  # (a finished one is only read)
        first += f"; {work_text(gen, config, args.stats_samples)}"
    print(first, file=sys.stderr)
    try:
        data = show_progress(pc.precompute_pack(
            gen, clip, loaded.content_hash, clip.content_hash, args.stats_samples, config,
            sample_w, sampler=sampler, root=root),
            estimate=lambda p: estimate_line(p.eta_s, config, device))
    except KeyboardInterrupt:
        saved = pc.partial_summary(gen, loaded.content_hash, clip.content_hash,
                                   args.stats_samples, config, sampler, root)
        kept = (f"progress saved ({100 * saved[0] / saved[1]:.1f}% of the relevance done)"
                if saved else "nothing was finished yet")
        print(f"{PROG}: interrupted; {kept}. Run the same command again to resume.",
              file=sys.stderr)
        return 130
    except (AtelierError, ValueError, OSError, MemoryError, RuntimeError) as e:
        return _error(failure_line(e) + out_of_memory_advice(e, batch, "progress saved"))
    assert data is not None
    if data.save_error:
        return _error(with_folder_source(f"the pack was computed but not kept: "
                                         f"{data.save_error}"))
    if args.json and (problem := _write_summary(
            args, loaded, clip, config, data, entry.path,
            "from the cache" if data.from_cache else "computed")):
        return _error(problem)
    rel = data.relevance
    how = "from the cache" if data.from_cache else f"in {data.info.get('seconds', 0):.0f} s"
    print(f"pack ready ({how}): {len(rel.channels)} channels x {rel.vectors.shape[1]} dims"
          f"\n{entry.path}")
    return 0
