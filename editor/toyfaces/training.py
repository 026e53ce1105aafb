"""Shared machinery of the demo-world recipes: a time/step budget, progress with ETA,
atomic checkpoints in the user cache dir and resuming from the last one.

A recipe supplies `step(state) -> dict of floats` and what to save; this loop does the rest,
so an interrupted run (Ctrl-C, a closed laptop, the session ending) picks up where it was.
"""

from __future__ import annotations

import io
import json
import pickle
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from editor.core.paths import atomic_write_bytes, cache_dir


def recipe_dir(name: str, base: Path | None = None) -> Path:
    path = (base or cache_dir() / "toyfaces-training") / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class TrainState:
    """Everything needed to resume: modules, optimizers, counters, RNG and timing."""

    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    step: int = 0
    seconds: float = 0.0  # training time spent so far, across resumes
    history: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # each invocation: command + start step

    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "runs": self.runs,
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


def try_resume(state: TrainState, path: Path, log: Callable[[str], None]) -> bool:
    if not path.exists():
        return False
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        state.load_state_dict(d)
    except (RuntimeError, KeyError, EOFError, OSError, pickle.UnpicklingError) as e:
        log(f"could not resume from {path} ({e}); starting over")
        return False
    log(f"resumed from {path} at step {state.step} ({state.seconds / 60:.1f} min done)")
    return True


def format_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


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
    periodic atomic checkpoints. Ctrl-C saves a checkpoint before leaving. Each call is
    recorded in state.runs, so a model card can list every command that shaped the weights."""
    state.runs.append({"command": invocation(), "from_step": state.step,
                       "from_seconds": round(state.seconds, 1)})
    last_ckpt = time.monotonic()
    window: list[float] = []
    try:
        while state.step < total_steps:
            if max_seconds is not None and state.seconds >= max_seconds:
                log(f"time budget of {max_seconds / 60:.1f} min reached at step {state.step}")
                break
            t0 = time.perf_counter()
            metrics = step_fn(state.step)
            dt = time.perf_counter() - t0
            state.step += 1
            state.seconds += dt
            window = (window + [dt])[-50:]
            if state.step % log_every == 0 or state.step == total_steps:
                per = sum(window) / len(window)
                remaining = (total_steps - state.step) * per
                if max_seconds is not None:
                    remaining = min(remaining, max_seconds - state.seconds)
                text = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
                log(f"step {state.step}/{total_steps} {per:.2f}s/it ETA {format_eta(remaining)}"
                    f" | {text}")
                state.history.append({"step": state.step, "seconds": round(state.seconds, 1),
                                      **{k: round(v, 5) for k, v in metrics.items()}})
                if on_log is not None:
                    on_log(state.step, metrics)
            if time.monotonic() - last_ckpt > checkpoint_every_s:
                save_checkpoint(state, checkpoint_path)
                last_ckpt = time.monotonic()
    except KeyboardInterrupt:
        save_checkpoint(state, checkpoint_path)
        log(f"interrupted: checkpoint saved at step {state.step}; run again to resume")
        raise
    save_checkpoint(state, checkpoint_path)
    return state


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
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--minutes", type=float, default=None,
                   help="stop after this much training time (resumes count what was done)")
    p.add_argument("--log-every", type=int, default=log_every)
    p.add_argument("--out", default=None,
                   help="output folder (default: editor/resources/models/toyfaces)")
    p.add_argument("--tag", default="", help="separate working dir for experiments")
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")


def run_facts(state: TrainState, threads: int, extra_seconds: float = 0.0) -> dict:
    """The model-card entries every recipe reports: steps, time (training plus data
    preparation), CPU-hours (wall time x threads), final metrics, hardware and date."""
    seconds = state.seconds + extra_seconds
    return {
        "training": {"steps": state.step, "seconds": round(seconds, 1),
                     "cpu_hours": round(seconds * threads / 3600, 3),
                     "final_metrics": state.history[-1] if state.history else {},
                     "runs": state.runs},
        "hardware": f"{platform.processor() or platform.machine()}, {threads} threads, "
                    f"torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
    }
