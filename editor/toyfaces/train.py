"""Demo-world recipes: `python -m editor.toyfaces.train {generator,clip,evaluator}`.

Each recipe is deterministic in its seed, resumes from its last checkpoint in the user cache
dir after an interruption (run the same command again with the same options), prints
progress with an ETA, and writes its weights and a JSON model card into
editor/resources/models/toyfaces/ (or --out; existing model files only with --force).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from editor.core.errors import AtelierError
from editor.toyfaces.training import Terminated

RESUMES = ("An interrupted run (Ctrl-C, SIGTERM or SIGHUP) saves a checkpoint in the cache; "
           "the same command resumes it.")

RECIPES = {
    "generator": "editor.toyfaces.train_generator",
    "clip": "editor.toyfaces.train_clip",
    "evaluator": "editor.toyfaces.train_evaluator",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editor.toyfaces.train",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="recipe", required=True)
    modules = {}
    for name, module_name in RECIPES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        modules[name] = module
        summary = (module.__doc__ or "").splitlines()[0]
        module.add_arguments(sub.add_parser(
            name, help=summary, description=f"{summary} {RESUMES}"))
    args = parser.parse_args(argv)
    try:
        path = modules[args.recipe].train(args)
    except Terminated as e:  # checkpoint saved (or kept): exit as the signal would have
        return 128 + e.signum
    except KeyboardInterrupt:
        return 130
    except AtelierError as e:  # a bad file, device or output, or a checkpoint's options
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path} and its card {path.with_suffix('.json').name}")  # where it went
    return 0


if __name__ == "__main__":
    sys.exit(main())
