"""Shared machinery of the demo-world recipes: a time/step budget, progress with ETA,
atomic checkpoints in the user cache dir and resuming from the last one.

A recipe supplies `step(state) -> dict of floats` and what to save; this loop does the rest,
so an interrupted run (Ctrl-C, SIGTERM or SIGHUP: a closed laptop, the session ending)
picks up where it was when run again with the options that made its checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pickle
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editor.core.devices import pick_device
from editor.core.durations import clock_duration
from editor.core.paths import DEMO_MODELS_DIR, atomic_write_bytes, cache_dir
from editor.toyfaces.arguments import (
    DEVICES,
    RecipeError,
    check_output_folder,
    int_at_least,
    non_empty,
    positive_float,
)


def recipe_dir(name: str, base: Path | None = None) -> Path:
    path = (base or cache_dir() / "toyfaces-training") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def checkpoint_path(recipe: str, tag: str) -> Path:
    return recipe_dir(recipe + (f"-{tag}" if tag else "")) / "checkpoint.pt"


def output_folder(args: argparse.Namespace) -> Path:
    return Path(args.out) if args.out else DEMO_MODELS_DIR


def prepare(args: argparse.Namespace, files: Iterable[str]) -> tuple[Path, torch.device]:
    """Everything a recipe checks before it spends time: threads, the device and an output
    folder that is writable and, without --force, holds none of `files`.
    Returns (output folder, device)."""
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out_dir = output_folder(args)
    check_output_folder(out_dir, files, args.force)
    return out_dir, device


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU torch RNG for one training step, deterministic in (seed, step): a resumed run
    draws what an uninterrupted one would. (A stream apart from numpy's [seed, step].)"""
    return torch.Generator().manual_seed(int(np.random.default_rng([seed, step, 1])
                                             .integers(2**62)))


@dataclass
class TrainState:
    """Everything needed to resume: modules, optimizers, counters, RNG and timing."""

    modules: dict[str, Any]  # torch modules, or anything with state_dict/load_state_dict
    optimizers: dict[str, torch.optim.Optimizer]
    step: int = 0
    seconds: float = 0.0  # training time spent so far, across resumes
    history: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # each invocation: command + start step
    options: dict = field(default_factory=dict)  # what shaped the weights; resume needs equal

    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "runs": self.runs,
            "options": self.options,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, d: dict) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(d["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(d["optimizers"][k])
        self.step, self.seconds = int(d["step"]), float(d["seconds"])
        self.history = list(d.get("history", []))
        self.runs = list(d.get("runs", []))
        torch.set_rng_state(d["torch_rng"])


def save_checkpoint(state: TrainState, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(state.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())


def try_resume(state: TrainState, path: Path, steps: int,
               log: Callable[[str], None]) -> bool:
    """Continue the checkpoint at path if there is one. RecipeError if it was made with other
    options than state.options (continuing it would silently train something else), or has
    trained more than `steps` (--steps; its card would name a command that did not make it)."""
    if not path.exists():
        return False
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        check_same_options(d.get("options"), state.options, path)
        if (done := int(d["step"])) > steps:
            raise RecipeError(f"{path} has trained {done} steps, more than --steps {steps}; "
                              f"pass --steps {done} or more to export it, --restart to start "
                              "over, or --tag NAME to keep both")
        state.load_state_dict(d)
    except (RuntimeError, KeyError, EOFError, OSError, pickle.UnpicklingError) as e:
        log(f"could not resume from {path} ({e}); starting over")
        return False
    log(f"resumed from {path} at step {state.step} ({state.seconds / 60:.1f} min done)")
    return True


def check_same_options(saved: dict | None, wanted: dict, path: Path) -> None:
    way_out = "pass --restart to start over, or --tag NAME to keep both"
    if saved is None:
        raise RecipeError(f"{path} does not record the options it was made with (an older "
                          f"version); {way_out}")
    changed = [f"{option_flag(k)} {saved.get(k)} (now {wanted.get(k)})"
               for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    if changed:
        raise RecipeError(f"{path} was made with {', '.join(changed)}; {way_out}")


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def run_loop(
    state: TrainState,
    step_fn: Callable[[int], dict[str, float]],
    total_steps: int,
    checkpoint_path: Path,
    checkpoint_every_s: float = 120.0,
    log_every: int = 25,
    max_seconds: float | None = None,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> TrainState:
    """Run step_fn until total_steps (or max_seconds of training time) with progress/ETA and
    periodic atomic checkpoints. Ctrl-C, SIGTERM and SIGHUP end the step under way, then save
    a checkpoint and leave; a second one leaves at once, the last checkpoint kept.
    Each call is recorded in state.runs, so a model card can list every command that shaped
    the weights."""
    state.runs.append({"command": invocation(), "from_step": state.step,
                       "from_seconds": round(state.seconds, 1)})
    last_ckpt = time.monotonic()
    saved_step = state.step if checkpoint_path.exists() else None  # the checkpoint there
    in_step = False  # the weights are between two steps' states
    window: list[float] = []
    try:
        with stop_signals_after_step() as stop_if_asked:
            while state.step < total_steps:
                if max_seconds is not None and state.seconds >= max_seconds:
                    log(f"time budget of {max_seconds / 60:.1f} min reached at step "
                        f"{state.step}")
                    break
                t0 = time.perf_counter()
                in_step = True
                metrics = step_fn(state.step)
                dt = time.perf_counter() - t0
                state.step += 1
                state.seconds += dt
                in_step = False
                window = (window + [dt])[-50:]
                if state.step % log_every == 0 or state.step == total_steps:
                    log_progress(state, metrics, window, total_steps, max_seconds, log)
                    if on_log is not None:
                        on_log(state.step, metrics)
                if time.monotonic() - last_ckpt > checkpoint_every_s:
                    save_checkpoint(state, checkpoint_path)
                    saved_step, last_ckpt = state.step, time.monotonic()
                stop_if_asked()
    except KeyboardInterrupt as e:
        if in_step and getattr(e, "mid_step", False):
            # a second signal cut the step: saved, its half-done update would pass for the
            # step before, and the resumed run would do that step again on top of it
            kept = (f"the checkpoint of step {saved_step} is kept" if saved_step is not None
                    else "no checkpoint was saved")
            log(f"stopped during step {state.step + 1}, whose work is not saved; {kept}")
            raise
        save_checkpoint(state, checkpoint_path)
        log(f"interrupted: checkpoint saved at step {state.step}; run again to resume")
        raise
    save_checkpoint(state, checkpoint_path)
    return state


def log_progress(state: TrainState, metrics: dict[str, float], window: list[float],
                 total_steps: int, max_seconds: float | None,
                 log: Callable[[str], None]) -> None:
    """One progress line with the ETA, and the metrics kept in state.history."""
    per = sum(window) / len(window)
    remaining = (total_steps - state.step) * per
    if max_seconds is not None:
        remaining = min(remaining, max_seconds - state.seconds)
    text = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
    log(f"step {state.step}/{total_steps} {per:.2f}s/it ETA {clock_duration(remaining)} | {text}")
    state.history.append({"step": state.step, "seconds": round(state.seconds, 1),
                          **{k: round(v, 5) for k, v in metrics.items()}})


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during training (a session ending, a closed terminal): handled as
    Ctrl-C is, so the work since the last checkpoint is saved."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals_after_step() -> Iterator[Callable[[], None]]:
    """Ctrl-C, SIGTERM and SIGHUP in the main thread while inside are held until the caller
    calls the function it yields, at the end of a step, which raises KeyboardInterrupt
    (Terminated for the others). A step cut anywhere (half-way through the optimizer's
    update) would be saved half done, and the resumed run would differ from an
    uninterrupted one. A second signal stops at once, its exception's `mid_step` set (the
    step under way is half done: not to be saved). A signal ignored before (SIGHUP under
    nohup, Ctrl-C for a background job) stays ignored: that run was meant to outlive its
    terminal. The previous handlers come back afterwards. (Only the main thread may set
    handlers.)"""
    pending: list[int] = []

    def stopping(signum: int) -> KeyboardInterrupt:
        return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

    def hold(signum, _frame):
        if pending:  # at once, wherever the step is: marked, so that its work is not saved
            stop = stopping(signum)
            stop.mid_step = True
            raise stop
        pending.append(signum)  # (no message: a print here fails if the signal cut one)

    def stop_if_asked() -> None:
        if pending:
            raise stopping(pending[0])

    if threading.current_thread() is not threading.main_thread():
        yield stop_if_asked
        return
    wanted = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {sig: signal.signal(sig, hold) for sig in wanted
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield stop_if_asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def invocation() -> str:
    """The command line that is running, as a user would type it."""
    args = " ".join(sys.argv[1:])
    if sys.argv and Path(sys.argv[0]).name in ("train.py", "__main__.py"):
        return f"python -m editor.toyfaces.train {args}"
    return f"{Path(sys.argv[0]).name if sys.argv else 'python'} {args}".strip()


def write_model_card(path: Path, card: dict) -> None:
    atomic_write_bytes(path, (json.dumps(card, indent=2, sort_keys=False) + "\n").encode())


def add_common_arguments(p, steps: int, batch: int, lr: float, seed: int,
                         log_every: int) -> None:
    """The options every recipe shares, with the recipe's own defaults."""
    p.add_argument("--steps", type=int_at_least(1), default=steps,
                   help=f"training steps in all, counting those of a resumed run "
                        f"(default {steps})")
    p.add_argument("--batch", type=int_at_least(1), default=batch,
                   help=f"images per step (default {batch})")
    p.add_argument("--lr", type=positive_float, default=lr,
                   help=f"Adam learning rate (default {lr:g})")
    p.add_argument("--seed", type=int_at_least(0), default=seed,
                   help=f"the run is deterministic in it (default {seed})")
    p.add_argument("--threads", type=int_at_least(1), default=2,
                   help="CPU threads for torch (default 2)")
    p.add_argument("--device", default="auto", help=f"{DEVICES}; default auto")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="stop after this much training time (resumes count what was done)")
    p.add_argument("--log-every", type=int_at_least(1), default=log_every,
                   help=f"a progress line every this many steps (default {log_every})")
    # (an empty --out, an unset shell variable, meant the default: the bundled models)
    p.add_argument("--out", type=non_empty, default=None,
                   help="output folder (default: editor/resources/models/toyfaces, the "
                        "bundled models)")
    p.add_argument("--force", action="store_true",
                   help="replace this recipe's model files in --out")
    p.add_argument("--tag", default="",
                   help="a checkpoint of its own (in the cache's toyfaces-training folder) "
                        "for an experiment beside the main run")
    p.add_argument("--restart", action="store_true",
                   help="start over, ignoring the checkpoint a run of the same recipe and "
                        "--tag left (it is resumed otherwise)")


def weight_options(args: argparse.Namespace, names: Iterable[str]) -> dict:
    """The options (by dest name) that shape the weights, as a checkpoint records them."""
    return {name: getattr(args, name) for name in names}


def recipe_command(recipe: str, args: argparse.Namespace, names: Iterable[str]) -> str:
    """The command that makes these weights: --steps, the weight options, --minutes and
    --fp32 where given (flags when true, nothing when unset)."""
    parts = [f"python -m editor.toyfaces.train {recipe}"]
    for name in ("steps", *names, "minutes", "fp32"):
        value = getattr(args, name, None)
        if value is True:
            parts.append(option_flag(name))
        elif value is not None and value is not False:
            parts.append(f"{option_flag(name)} {value}")
    return " ".join(parts)


def run_facts(state: TrainState, threads: int, device: torch.device,
              extra_seconds: float = 0.0) -> dict:
    """The model-card entries every recipe reports: steps, time (training plus data
    preparation), CPU-hours (wall time x threads), final metrics, hardware (the device that
    trained: a GPU's run read as one on the CPU threads alone) and date."""
    seconds = state.seconds + extra_seconds
    gpu = f"{torch.cuda.get_device_name(device)}, " if device.type == "cuda" else ""
    return {
        "training": {"steps": state.step, "seconds": round(seconds, 1),
                     "cpu_hours": round(seconds * threads / 3600, 3),
                     "final_metrics": state.history[-1] if state.history else {},
                     "runs": state.runs},
        "hardware": f"{platform.processor() or platform.machine()}, {threads} threads, "
                    f"{gpu}torch {torch.__version__}",
        "device": str(device),
        "date": time.strftime("%Y-%m-%d"),
    }
