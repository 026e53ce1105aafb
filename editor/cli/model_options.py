"""The model options of the commands that open a pack (edit, invert, discover): a generator
file and the CLIP to pair it with, each the bundled demo pack's when left out. One set of
names, help and checks, so the same words mean the same thing in every command."""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from editor.core import zoo
from editor.core.arg_types import non_empty
from editor.core.errors import AtelierError

if TYPE_CHECKING:
    from editor.engine.packs import ClipSource


GENERATOR_HELP = ("generator file (rosinality .pt, NVIDIA .pkl, .safetensors), or the name "
                  "of one installed by `atelier models`")
# An installed CLIP's architecture was found (or named) at its import: its file needs no
# --clip-arch (zoo.installed_clip_arch), as the README says.
CLIP_FILE_HELP = ("CLIP weights file (with --clip-arch unless saved by this program or "
                  "installed by `atelier models`), or the name of one installed")
KIND_NAMES = {"generator": "a generator", "clip": "a CLIP model"}


def generator_path(text: str) -> str:
    """A --generator: a file, or the name of a generator in the model cache (`atelier models
    download ffhq-1024-rosinality` puts it where no one types its path). A missing one is
    a usage error before any model loads, saying how to get a known model."""
    return _model_path(text, "generator")


def clip_file_path(text: str) -> str:
    """A --clip-file: a file, or the name of a CLIP in the model cache (as generator_path)."""
    return _model_path(text, "clip")


def _model_path(text: str, kind: str) -> str:
    if os.path.exists(non_empty(text)):
        return text  # the loader says what is wrong with a folder or a damaged file
    name = text.strip().lower()
    try:
        model = zoo.installed_model(name)
    except AtelierError:  # an unreadable model index: no installed name is looked up
        model = None
    entries, _ = zoo.registry_entries()  # the built-in ones where the user's is damaged
    kinds = {e.name: e.kind for e in entries}
    found = (model.kind or kinds.get(model.entry or "")) if model is not None \
        else kinds.get(name)
    if found is not None and found != kind:
        raise argparse.ArgumentTypeError(
            f"{text} is {KIND_NAMES.get(found, found)}, not {KIND_NAMES[kind]}")
    if model is not None:
        return str(model.path)
    if found == kind:
        raise argparse.ArgumentTypeError(
            f"{text} is not installed: `atelier models download {name}` gets it")
    if os.sep in text or "." in os.path.basename(text):  # a path
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    close = difflib.get_close_matches(name, [n for n, k in kinds.items() if k == kind],
                                      n=1, cutoff=0.3)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise argparse.ArgumentTypeError(f"{text} is neither a file nor an installed model"
                                     f"{hint} (`atelier models list`)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    models = p.add_argument_group("models (default: the bundled demo pack)")
    models.add_argument("--generator", type=generator_path, metavar="PATH",
                        help=GENERATOR_HELP)
    clip = models.add_mutually_exclusive_group()
    clip.add_argument("--clip-file", "--clip-checkpoint", dest="clip_file", type=clip_file_path,
                      metavar="PATH",
                      help=CLIP_FILE_HELP)
    clip.add_argument("--clip-pretrained", type=non_empty, metavar="TAG",
                      help="open_clip pretrained tag (with --clip-arch), e.g. openai")
    models.add_argument("--clip-arch", type=non_empty, metavar="ARCH",
                        help="open_clip architecture, e.g. ViT-B-32")


def clip_source(args: argparse.Namespace, generator: str | Path) -> ClipSource:
    """The CLIP the options name; without any, the generator's own: the demo CLIP for the
    demo generator, the reference ViT-B-32 (openai) for any other (the demo CLIP only
    knows 64 px cartoon faces)."""
    # imported here: editor.engine imports torch, which `atelier --help` need not wait for
    from editor.engine.packs import ClipSource, default_clip_source

    if args.clip_pretrained and not args.clip_arch:
        raise AtelierError("--clip-pretrained needs --clip-arch (e.g. --clip-arch ViT-B-32 "
                           "--clip-pretrained openai)")
    if args.clip_arch and not (args.clip_file or args.clip_pretrained):
        # the generator's own CLIP would be used instead, and nothing would say so
        raise AtelierError("--clip-arch needs --clip-pretrained TAG or --clip-checkpoint FILE "
                           "(leave all three out for the generator's own CLIP)")
    if args.clip_file or args.clip_arch:
        return ClipSource(path=args.clip_file, arch=args.clip_arch, tag=args.clip_pretrained)
    return default_clip_source(generator)
