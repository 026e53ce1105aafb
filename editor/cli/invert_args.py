"""`atelier invert`: find the latent that draws your picture, headless.

    atelier invert photo.jpg -o photo-inverted.png
    atelier edit --recipe photo-inverted.png -o again.png          # the same picture
    atelier invert a.png b.png c.png --out-dir inverted/ --latents  # several at once

Each picture is centre-cropped to a square (or cut with --crop LEFT,TOP,RIGHT,BOTTOM),
resized to the generator's resolution and inverted into W+. The output PNG shows the
reconstruction and carries a recipe whose source is the latent itself, so `atelier edit
--recipe` and the editor reproduce and edit it. --latents also writes each W+ as .npy
(for `atelier edit --wplus`). Pictures are inverted together in batches (faster per
picture on a CPU). The default pack is the bundled demo world.
"""

from __future__ import annotations

import argparse

from editor.core.arg_types import DEVICE_HELP, int_at_least, positive_float
from editor.engine.session import MAX_SEED
from editor.methods.inversion_settings import PERCEPTUAL_KINDS, InversionSettings

from . import command_help
from .model_options import add_model_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("invert", help=command_help("invert"),
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", help="pictures (any format Pillow reads)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output",
                     help="the reconstruction (.png, .jpg or .webp; one picture), its latent "
                          "in its recipe; missing folders are made")
    out.add_argument("--out-dir", help="a folder for the reconstructions (several pictures)")
    p.add_argument("--crop", help="LEFT,TOP,RIGHT,BOTTOM square box in pixels (one picture)")
    p.add_argument("--latents", action="store_true", help="also write each W+ as .npy")
    p.add_argument("--json", dest="json_path", help="write the quality readout as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    opt = p.add_argument_group("optimisation")
    add_optimisation_arguments(opt)
    opt.add_argument("--batch", type=int_at_least(1),
                     help="pictures inverted together (default: 16, fewer for a big "
                          "generator, so that one step needs about 8 GB at most)")
    opt.add_argument("--seed", type=int_at_least(0, MAX_SEED), default=InversionSettings().seed,
                     help="seed of the random starts (default: %(default)s)")
    add_model_options(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .invert import run  # the models' libraries load only for a command to run

    return run(args)


def add_optimisation_arguments(group) -> None:
    """The optimiser's options, defaulting to InversionSettings (the benchmark shares them)."""
    d = InversionSettings()
    group.add_argument("--steps", type=int_at_least(0), default=d.steps,
                       help="optimisation steps (0: the best starting point, not "
                            "optimised; default: %(default)s)")
    group.add_argument("--lr", type=positive_float, default=d.lr,
                       help="learning rate (default: %(default)s)")
    group.add_argument("--starts", type=int_at_least(1), default=d.starts,
                       help="best random starting points optimised per picture "
                            "(default: %(default)s)")
    group.add_argument("--candidates", type=int_at_least(1), default=d.candidates,
                       help="random latents scored to choose the starts (default: %(default)s)")
    group.add_argument("--perceptual", choices=PERCEPTUAL_KINDS, default=d.perceptual,
                       help="auto: VGG16 if its weights are here, else CLIP, else none "
                            "(default: %(default)s)")


def settings_from_args(args: argparse.Namespace, **more) -> InversionSettings:
    """InversionSettings from `add_optimisation_arguments` options (plus `more` fields)."""
    return InversionSettings(steps=args.steps, lr=args.lr, starts=args.starts,
                             candidates=args.candidates, perceptual=args.perceptual, **more)
