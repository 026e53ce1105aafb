"""`atelier edit`: render a seed with text edits, or replay a recipe, headless.

    atelier edit --seed 7 --neutral "face" --target "face with sunglasses" \\
        --alpha 4 --beta 0.15 -o out.png        # words for real faces (an FFHQ pack)
    atelier edit --seed 7 --target "a cartoon face with sunglasses" -o out.png   # the demo's
    atelier edit --recipe out.png -o again.png

Several edits: repeat the group (--neutral/--target/--alpha/--beta/--auto-beta/--gate). An
edit's --neutral goes before its --target; a --neutral after a target, or any option given
twice, starts the next edit. The PNG carries the recipe; replaying it on the same device
gives the same pixels. The default pack is the bundled demo world.
"""

from __future__ import annotations

import argparse

from editor.core.arg_types import (
    DEVICE_HELP,
    float_within,
    int_at_least,
    non_negative_float,
    prompt_text,
)
from editor.engine.export_formats import DEFAULT_QUALITY, MAX_SCALE, UPSCALE_FILTERS
from editor.engine.session import MAX_SEED, PSI_RANGE, STRENGTH_RANGE

from . import command_help
from .model_options import add_model_options
from .precompute import MAX_IMAGES, MAX_STATS_SAMPLES

SOURCE_OPTIONS = ("seed", "psi", "wplus", "wplus_index")


class _EditAction(argparse.Action):
    """Collect per-edit options in order. Each option fills the edit being built; giving
    an option that edit already has starts the next edit, and so does a --neutral once
    the edit has its target (a neutral belongs to the target after it). So
    `--neutral face --target "face with glasses" --alpha 4 --neutral face --target ...`
    and `--target "smiling face" --alpha 3 --target ...` read naturally."""

    def __call__(self, parser, namespace, value, option_string=None):
        edits = getattr(namespace, "edits", None) or []
        if not edits or self.dest in edits[-1] or (self.dest == "neutral"
                                                   and "target" in edits[-1]):
            edits.append({})
        edits[-1][self.dest] = True if value == [] else value
        namespace.edits = edits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help=command_help("edit"),
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("source")
    src.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=None,
                     help="default 0")
    src.add_argument("--psi", type=float_within(*PSI_RANGE), default=None,
                     help="truncation (default 0.7; 1.0 for the demo pack)")
    src.add_argument("--wplus", help="start from a saved W+ (.npy/.pt/.safetensors), or a "
                     "picture whose recipe carries one (atelier invert's output)")
    src.add_argument("--wplus-index", type=int_at_least(0), default=None, metavar="K",
                     help="with --wplus: the file's latent number K, for a file of several "
                          "(as e4e's latents.pt, one per test image)")
    src.add_argument("--recipe", help="replay a recipe: a .json recipe or session, or an "
                     "exported PNG, JPEG or WebP that carries one")
    ed = p.add_argument_group("edits (repeat for several; --neutral goes before its "
                              "--target)")
    ed.add_argument("--target", action=_EditAction, type=prompt_text,
                    help="what the image should become")
    ed.add_argument("--neutral", action=_EditAction, type=prompt_text,
                    help="what it is now (default: the pack's own, 'face' for real "
                         "generators, 'a cartoon face' for the demo); given before its --target, "
                         "after a target it starts the next edit")
    ed.add_argument("--alpha", action=_EditAction, type=float_within(*STRENGTH_RANGE),
                    help="strength (default: the model pack's; 3 for the demo pack)")
    ed.add_argument("--beta", action=_EditAction, type=non_negative_float,
                    help="disentanglement threshold (default: the model pack's; 0.15 for "
                         "real packs)")
    ed.add_argument("--auto-beta", action=_EditAction, nargs=0, dest="auto_beta",
                    help="pick the largest beta that keeps the pack's minimum of channels "
                         "(10 for real packs)")
    ed.add_argument("--gate", action=_EditAction, nargs=0, dest="gate",
                    help="keep only channels that also vary with the text across the "
                         "generator's samples (measured once per pack, then cached)")
    ed.add_argument("--no-gate", action=_EditAction, nargs=0, dest="no_gate",
                    help="plain StyleCLIP channel relevance even where the pack gates")
    add_model_options(p)
    p.add_argument("-o", "--output", required=True,
                   help="output image (.png, .jpg, .webp); missing folders are made")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--scale", type=int_at_least(1, MAX_SCALE), default=None,
                   help=f"integer upscale of the output, 1-{MAX_SCALE} (default: what a "
                        "replayed recipe records, else 1); recorded in the output's recipe")
    p.add_argument("--upscale-filter", choices=UPSCALE_FILTERS, default=None,
                   help="how --scale enlarges: lanczos (smooth) or nearest (sharp pixels); "
                        "default: what a replayed recipe records, else lanczos")
    p.add_argument("--quality", type=int_at_least(1, 100), default=None,
                   help=f"JPEG/WebP quality, 1-100 (default: what a replayed recipe records, "
                        f"else {DEFAULT_QUALITY}); recorded in the output's recipe")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precompute-images", type=int_at_least(1, MAX_IMAGES), default=None,
                   help="base images for a first precompute (default: the paper's 100)")
    p.add_argument("--stats-samples", type=int_at_least(2, MAX_STATS_SAMPLES), default=None,
                   help="samples for the style statistics of a first precompute "
                        "(default 10000)")
    p.set_defaults(func=run, edits=None)


def run(args: argparse.Namespace) -> int:
    from .edit import run  # the models' libraries load only for a command to run

    return run(args)
