"""Demo-world recipes: `python -m editor.toyfaces.train {generator,clip,evaluator}`.

Each recipe is deterministic in its seed, resumes from its last checkpoint in the user cache
dir after an interruption (run the same command again), prints progress with an ETA, and
writes its weights and a JSON model card into editor/resources/models/toyfaces/.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        modules[args.recipe].train(args)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
