"""Slider-to-image latency through the real engine: render worker, renderer, composition.

    .venv/bin/python -m benchmarks.latency [--demo] [--ffhq] [--device cuda] [--threads 2]
                     [--events 120] [--interval-ms 16] [--edit auto|delta|global]
                     [--with-job]

A scripted slider drag: --events alpha values from -8 to 8, posted to a RenderWorker every
--interval-ms (a hand moving a mouse), each as the interactive RenderRequest the editor
posts. Results come back through the worker's queued signal to the main thread, where the
arrival is timed, as the window receives them (minus wrapping the image in a QImage).

Per configuration:
- p50/p95: from posting a request to its first image (the preview when there is one), over
  the requests that got an image: what the hand sees during the drag;
- final: from the last event to the last image at full resolution (with a preview path
  this includes the worker's settle time, 0.12 s, before it renders the full image);
- frames / delivered / dropped: images, requests that got one, and stale requests the
  one-slot mailbox replaced before they were rendered;
- bare: one generator.synthesize at the drag's resolution from a ready style code, median
  of repeats in the same run, timed on a fresh thread with the cores to itself before the
  worker starts, and p95 / bare: what the engine adds. A request posted while
  the previous one is rendering waits for it, so when events come faster than renders the
  latency is up to two renders by design of a non-cancelling worker;
- render / compose: median ms the renderer spent per frame in all (compose, synthesis,
  8-bit conversion) and on turning the session into a style code; p50 - render is time a
  request waited in the mailbox or behind the render in flight.

--with-job adds two informational rows: the demo drag while a busy job (32-image batch
syntheses, one Progress step each) runs on a job thread, without and with the interaction
gate the window shares between its render worker and its jobs (jobs pause between steps
while a render is asked for or in flight), and the job's steps per second meanwhile.

Threads are set up as the editor sets them (editor/engine/compute_threads.py): this main
thread is serial, the worker gets the cores, and OpenMP's spin count is the window's.

Configurations: the demo generator (bundled file, 64 px; a real text edit when its pack has
precomputed directions, else a fixed random style delta) and the FFHQ 1024 config-f
architecture with random weights (speed does not depend on them), once with the preview
path (interactive requests, --preview-res 256) and once at full resolution only. Goals:
demo p95 <= 1.5 x bare and < 50 ms on a CPU; 1024 full on a GPU p95 <= 16 ms. The default
run (both, CPU) takes about a minute or two; a 1024 px render alone takes seconds on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from editor.cli import prepare_interactive_process

prepare_interactive_process()  # the editor window's OpenMP settings, before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import (  # noqa: E402
    QCoreApplication,
    QEventLoop,
    QObject,
    Qt,
    QTimer,
    Slot,
)

from editor.core.arg_types import (  # noqa: E402
    device_name,
    int_at_least,
    non_negative_float,
    positive_float,
    power_of_two,
    thread_count,
)
from editor.core.generator import Generator, GeneratorConfig  # noqa: E402
from editor.core.style_code import editable_mask  # noqa: E402
from editor.engine.compose import EditingContext  # noqa: E402
from editor.engine.compute_threads import (  # noqa: E402
    call_on_worker_thread,
    serial_ui_thread,
    worker_threads,
)
from editor.engine.interaction import InteractionGate  # noqa: E402
from editor.engine.jobs import JobRunner, JobToken, Progress  # noqa: E402
from editor.engine.models import DEMO_GENERATOR, load_model_info  # noqa: E402
from editor.engine.render_types import RenderRequest, RenderResult  # noqa: E402
from editor.engine.render_worker import RenderWorker  # noqa: E402
from editor.engine.renderer import Renderer  # noqa: E402
from editor.engine.session import Edit, Session, Source  # noqa: E402

DEMO_P95_OVER_BARE = 1.5
DEMO_P95_MS_CPU = 50.0
GPU_1024_P95_MS = 16.0
DEMO_PROMPT = ("a cartoon face", "a cartoon face with sunglasses")


# --------------------------------------------------------------------------- the drag


def drag_values(n: int, low: float = -8.0, high: float = 8.0) -> list[float]:
    """n slider positions from low to high, evenly spaced."""
    if n < 2:
        return [high] * n
    return [low + (high - low) * i / (n - 1) for i in range(n)]


@dataclass
class Arrival:
    seq: int
    t: float  # perf_counter on the main thread
    preview: bool
    ok: bool
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class DragResult:
    """What happened during one scripted drag (times are perf_counter seconds)."""

    posted: dict[int, float]  # seq -> when it was posted
    order: list[int]  # seqs in posting order
    arrivals: list[Arrival]  # in arrival order
    finished: bool  # the last request's full-resolution image arrived before the timeout

    @property
    def events(self) -> int:
        return len(self.order)

    @property
    def frames(self) -> int:
        return sum(a.ok for a in self.arrivals)

    @property
    def errors(self) -> int:
        return sum(not a.ok for a in self.arrivals)

    def first_images(self) -> dict[int, Arrival]:
        """Per request that got an image: its first one (the preview if there was one)."""
        out: dict[int, Arrival] = {}
        for a in self.arrivals:
            if a.ok and a.seq not in out:
                out[a.seq] = a
        return out

    @property
    def delivered(self) -> int:
        return len(self.first_images())

    @property
    def dropped(self) -> int:
        """Requests that never got an image: stale ones the mailbox replaced."""
        return self.events - self.delivered

    def latencies_ms(self) -> list[float]:
        return [(a.t - self.posted[seq]) * 1e3 for seq, a in self.first_images().items()]

    def final_ms(self) -> float:
        """Last event -> the last request's full-resolution image (NaN if it never came)."""
        last = self.order[-1]
        full = [a for a in self.arrivals if a.seq == last and a.ok and not a.preview]
        return (full[0].t - self.posted[last]) * 1e3 if full else float("nan")

    def in_order(self) -> bool:
        """Every image is for the same or a newer request than the one before it."""
        seqs = [a.seq for a in self.arrivals]
        return all(a <= b for a, b in zip(seqs, seqs[1:], strict=False))

    def median_timing(self, key: str) -> float:
        values = [a.timings[key] for a in self.arrivals if a.ok and key in a.timings]
        return statistics.median(values) if values else float("nan")


class _Receiver(QObject):
    """Lives on the main thread, so the worker's signal reaches it queued, as the window."""

    def __init__(self, on_result: Callable[[RenderResult, float], None]):
        super().__init__()
        self._on_result = on_result

    @Slot(object)
    def receive(self, result: RenderResult) -> None:
        self._on_result(result, time.perf_counter())


def _app() -> QCoreApplication:
    return QCoreApplication.instance() or QCoreApplication([])


@contextlib.contextmanager
def ctrl_c_quits(loop: QEventLoop) -> Iterator[None]:
    """Ctrl-C quits `loop`, and KeyboardInterrupt is raised once it has: raised inside a
    Qt slot instead (the timer that posts the drag), PySide prints it and the drag goes on
    to its end, its numbers printed as if nothing had been asked."""
    interrupted = []

    def quit_loop(*_) -> None:
        interrupted.append(True)
        loop.quit()

    previous = signal.signal(signal.SIGINT, quit_loop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


def measure_drag(renderer: Renderer, sessions: Sequence[Session], interval_s: float = 0.016,
                 interactive: bool = True, settle_s: float = 0.12, timeout_s: float = 120.0,
                 interaction: InteractionGate | None = None) -> DragResult:
    """Post one request per session every interval_s to a fresh RenderWorker around
    `renderer` and time what comes back, until the last request's full image arrives."""
    _app()
    requests = [RenderRequest(s, interactive=interactive) for s in sessions]
    posted: dict[int, float] = {}
    order: list[int] = []
    arrivals: list[Arrival] = []
    loop = QEventLoop()
    last_seq = requests[-1].seq
    done = [False]

    def on_result(result: RenderResult, t: float) -> None:
        arrivals.append(Arrival(result.seq, t, result.preview, result.ok,
                                dict(result.timings)))
        if result.seq == last_seq and not result.preview:
            done[0] = True
            loop.quit()

    worker = RenderWorker(renderer, settle_s=settle_s, interaction=interaction)
    receiver = _Receiver(on_result)
    worker.rendered.connect(receiver.receive)
    worker.start()
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(max(1, round(interval_s * 1000)))
    pending = iter(requests)

    def post() -> None:
        req = next(pending, None)
        if req is None:
            timer.stop()
            return
        posted[req.seq] = time.perf_counter()
        order.append(req.seq)
        worker.submit(req)
        if req.seq == last_seq:
            timer.stop()

    timer.timeout.connect(post)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(loop.quit)
    try:
        post()
        timer.start()
        guard.start(round(timeout_s * 1000))
        with ctrl_c_quits(loop):
            loop.exec()
    finally:
        timer.stop()
        guard.stop()
        worker.stop(timeout_ms=round(max(timeout_s, 10) * 1000))
        # results already queued to the receiver are not part of this drag
        worker.rendered.disconnect(receiver.receive)
    return DragResult(posted, order, arrivals, done[0])


# --------------------------------------------------------------------------- measuring


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def bare_synthesis_ms(gen: Generator, session: Session, context: EditingContext,
                      max_res: int | None, repeats: int) -> float:
    """Median ms of one synthesize from a ready style code (nothing else)."""
    code = context.compose(session)
    device = context.device
    gen.synthesize(code, max_res=max_res)  # warm-up
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gen.synthesize(code, max_res=max_res)
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def random_delta(gen: Generator, scale: float = 0.1, seed: int = 0) -> list[float]:
    """A fixed random style delta on the editable (non-toRGB) channels."""
    g = torch.Generator().manual_seed(seed)
    mask = editable_mask(gen.style_specs)
    delta = torch.randn(len(mask), generator=g) * scale * mask
    return delta.tolist()


def drag_sessions(source: Source, edit: Edit, values: Sequence[float]) -> list[Session]:
    """The session at every slider position (the edit's strength is the slider)."""
    base = Session(source=source)
    return [base.add_edit(Edit(edit.kind, edit.params, strength=v, id=edit.id))
            for v in values]


@dataclass
class Config:
    name: str
    context: EditingContext
    source: Source
    edit: Edit
    interactive: bool
    preview_res: int
    edit_note: str = ""

    @property
    def resolution(self) -> int:
        return self.context.generator.img_resolution

    @property
    def frame_res(self) -> int:
        """The resolution of the drag's frames (the preview's when it has one)."""
        if self.interactive and self.resolution > self.preview_res:
            return self.preview_res
        return self.resolution


@dataclass
class Row:
    config: str
    device: str
    frame_res: int
    edit: str
    drag: DragResult
    bare_ms: float
    goal: str = ""
    passed: bool | None = None

    @property
    def p50(self) -> float:
        return percentile(self.drag.latencies_ms(), 50)

    @property
    def p95(self) -> float:
        return percentile(self.drag.latencies_ms(), 95)


def run_config(cfg: Config, device: torch.device, values: Sequence[float],
               interval_s: float, repeats: int, settle_s: float = 0.12,
               timeout_s: float = 300.0) -> Row:
    renderer = Renderer(cfg.context, device=str(device), preview_res=cfg.preview_res)
    sessions = drag_sessions(cfg.source, cfg.edit, values)
    # warm caches and kernels as a window that already shows the image has them
    renderer.render(RenderRequest(sessions[0]))
    if cfg.frame_res != cfg.resolution:
        renderer.render(RenderRequest(sessions[0], interactive=True), preview=True)
    max_res = cfg.frame_res if cfg.frame_res != cfg.resolution else None
    # on a fresh thread with the cores, as the render worker has them (the UI thread is
    # serial, see compute_threads); measured before the worker starts, so that no second
    # team of OpenMP threads exists while it runs
    bare = call_on_worker_thread(lambda: bare_synthesis_ms(
        cfg.context.generator, sessions[0], cfg.context, max_res, repeats))
    drag = measure_drag(renderer, sessions, interval_s, cfg.interactive, settle_s, timeout_s)
    return Row(cfg.name, device.type, cfg.frame_res, cfg.edit_note, drag, bare)


def busy_job(gen: Generator, batch: int = 32):
    """A job function as the editor runs them: CPU-heavy steps (a batch synthesis each),
    each step a Progress item; the times its steps ended go to the function's
    `step_times` list."""
    step_times: list[float] = []

    @torch.no_grad()
    def fn(token: JobToken):
        z = torch.randn(batch, gen.z_dim, device=gen.w_avg.device)
        while not token.is_set():
            gen.synthesize(gen.styles(gen.mapping(z)))
            step_times.append(time.perf_counter())
            yield Progress(len(step_times), 0, "busy")

    fn.step_times = step_times
    return fn


def drag_beside_job(cfg: Config, device: torch.device, values: Sequence[float],
                    interval_s: float, settle_s: float, bare_ms: float, gated: bool
                    ) -> tuple[Row, float]:
    """The drag while a busy job runs on its own thread, with the job runner and the
    render worker sharing an InteractionGate (as the window does) or not; and the job's
    steps per second during the drag."""
    renderer = Renderer(cfg.context, device=str(device), preview_res=cfg.preview_res)
    sessions = drag_sessions(cfg.source, cfg.edit, values)
    renderer.render(RenderRequest(sessions[0]))
    gate = InteractionGate() if gated else None
    runner = JobRunner(interaction=gate)
    fn = busy_job(cfg.context.generator)
    runner.submit("busy", fn)
    try:
        time.sleep(1.0)  # the job is under way when the hand starts
        t0 = time.perf_counter()
        drag = measure_drag(renderer, sessions, interval_s, cfg.interactive, settle_s,
                            interaction=gate)
        t1 = time.perf_counter()
    finally:
        runner.cancel_all()  # cancels the busy job and waits for its thread
    rate = sum(1 for t in fn.step_times if t0 <= t <= t1) / (t1 - t0)
    name = f"{cfg.name} + job" + (", gated" if gated else "")
    return Row(name, device.type, cfg.frame_res, cfg.edit_note, drag, bare_ms), rate


def judge(row: Row, demo: bool, full_1024: bool) -> None:
    p95 = row.p95
    if demo:
        row.goal = f"p95 <= {DEMO_P95_OVER_BARE:g} x bare"
        ok = p95 <= DEMO_P95_OVER_BARE * row.bare_ms
        if row.device == "cpu":
            row.goal += f" and < {DEMO_P95_MS_CPU:g} ms"
            ok = ok and p95 < DEMO_P95_MS_CPU
        row.passed = bool(ok and row.drag.finished)
    elif full_1024 and row.device == "cuda":
        row.goal = f"p95 <= {GPU_1024_P95_MS:g} ms"
        row.passed = bool(p95 <= GPU_1024_P95_MS and row.drag.finished)


# --------------------------------------------------------------------------- configs


def demo_config(path: str | Path, device: torch.device, edit_kind: str,
                preview_res: int) -> Config:
    info = load_model_info(path, device)
    gen = info.generator.eval()
    context = EditingContext(gen, z_for_seed=info.z_for_seed)
    note = "random style delta"
    edit = Edit("delta", {"delta": random_delta(gen)}, id="drag")
    if edit_kind in ("auto", "global"):
        pack_context, why = _demo_pack_context(path, device)
        if pack_context is not None:
            context = pack_context
            edit = Edit("global", {"neutral": DEMO_PROMPT[0], "target": DEMO_PROMPT[1],
                                   "beta": 0.15}, id="drag")
            note = f"text edit '{DEMO_PROMPT[1]}'"
        elif edit_kind == "global":
            raise SystemExit(f"error: no text edit possible with this pack: {why}")
    return Config(f"demo {gen.img_resolution}px", context, Source(seed=0, psi=info.seed_psi),
                  edit, True, preview_res, note)


def _demo_pack_context(path: str | Path, device: torch.device
                       ) -> tuple[EditingContext | None, str]:
    from editor.engine.packs import default_clip_source, open_pack

    try:
        pack = open_pack(path, default_clip_source(path), device, require_clip=False)
    except Exception as e:  # noqa: BLE001 - any failure means: measure with a delta
        return None, str(e)
    if pack.clip is None:
        return None, pack.clip_error or "no CLIP"
    if not pack.has_directions:
        return None, "the pack has no precomputed directions"
    return pack.context(), ""


def ffhq_generator(device: torch.device, resolution: int = 1024) -> Generator:
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig.rosinality(resolution)).eval().to(device)
    with torch.no_grad():
        gen.w_avg.copy_(gen.mean_latent(512))
    return gen


def ffhq_configs(device: torch.device, preview_res: int, resolution: int = 1024
                 ) -> list[Config]:
    gen = ffhq_generator(device, resolution)
    edit = Edit("delta", {"delta": random_delta(gen)}, id="drag")
    source = Source(seed=0, psi=0.7)
    name = f"ffhq {resolution} config-f"
    return [Config(f"{name} preview", EditingContext(gen), source, edit, True, preview_res,
                   "random style delta"),
            Config(f"{name} full", EditingContext(gen), source, edit, False, preview_res,
                   "random style delta")]


# --------------------------------------------------------------------------- output


def _ms(x: float) -> str:
    return "n/a" if x != x else f"{x:.1f}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("config", "device", "res", "events", "frames", "delivered", "dropped",
              "p50 ms", "p95 ms", "final ms", "bare ms", "p95/bare", "render ms", "compose ms",
              "result", "goal")
    lines = [header]
    for r in rows:
        d = r.drag
        ratio = r.p95 / r.bare_ms if r.bare_ms else float("nan")
        result = {None: "info", True: "PASS", False: "FAIL"}[r.passed]
        if not d.finished:
            result += " (final image missing)"
        lines.append((r.config, r.device, str(r.frame_res), str(d.events), str(d.frames),
                      str(d.delivered), str(d.dropped), _ms(r.p50), _ms(r.p95),
                      _ms(d.final_ms()), _ms(r.bare_ms),
                      "n/a" if ratio != ratio else f"{ratio:.2f}",
                      _ms(d.median_timing("total_ms")), _ms(d.median_timing("styles_ms")),
                      result, r.goal))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for i, row in enumerate(lines):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """0 when every judged row passes, 1 otherwise."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.latency",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--demo", action="store_true", help="the demo generator (default: both)")
    ap.add_argument("--ffhq", action="store_true",
                    help="the FFHQ 1024 config-f architecture, random weights")
    ap.add_argument("--generator", default=str(DEMO_GENERATOR), help="the demo generator file")
    ap.add_argument("--edit", choices=("auto", "delta", "global"), default="auto",
                    help="demo edit: a text edit when the pack has directions (auto), a "
                         "random style delta, or insist on the text edit")
    ap.add_argument("--device", type=device_name, default="auto",
                    help="auto (cuda if present), cpu, cuda or cuda:N")
    ap.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads")
    ap.add_argument("--events", type=int_at_least(1), default=120)
    ap.add_argument("--ffhq-events", type=int_at_least(1), default=None,
                    help="events of the 1024 drags (default: --events)")
    ap.add_argument("--interval-ms", type=positive_float, default=16.0)
    ap.add_argument("--preview-res", type=power_of_two, default=256)
    ap.add_argument("--resolution", type=power_of_two, default=1024,
                    help="the FFHQ architecture's (a power of two)")
    ap.add_argument("--repeats", type=int_at_least(1), default=None,
                    help="bare synthesis repeats (default 30; 3 at 1024 on a CPU)")
    ap.add_argument("--settle-ms", type=non_negative_float, default=120.0,
                    help="the worker's settle time before a full render after a preview")
    ap.add_argument("--with-job", action="store_true",
                    help="demo: also drag while a busy job runs beside the worker, with "
                         "and without the interaction gate (informational rows)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    serial_ui_thread()  # as the editor does: the worker thread gets the cores
    device = torch.device(args.device)
    both = not (args.demo or args.ffhq)
    _app()
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"CPU, {worker_threads()} torch threads")
    print(f"device: {where}; torch {torch.__version__}; drag: {args.events} events every "
          f"{args.interval_ms:g} ms, alpha -8..8", flush=True)
    rows: list[Row] = []
    job_notes: list[str] = []
    interval = args.interval_ms / 1000
    settle = args.settle_ms / 1000
    if args.demo or both:
        t0 = time.perf_counter()
        cfg = demo_config(args.generator, device, args.edit, args.preview_res)
        row = run_config(cfg, device, drag_values(args.events), interval,
                         args.repeats or 30, settle)
        judge(row, demo=True, full_1024=False)
        rows.append(row)
        print(f"{cfg.name} ({cfg.edit_note}): {time.perf_counter() - t0:.1f} s", flush=True)
        for gated in (False, True) if args.with_job else ():
            job_row, rate = drag_beside_job(cfg, device, drag_values(args.events), interval,
                                            settle, row.bare_ms, gated)
            rows.append(job_row)
            job_notes.append(f"{job_row.config}: the job ran {rate:.1f} steps/s during "
                             "the drag")
    if args.ffhq or both:
        n = args.ffhq_events or args.events
        repeats = args.repeats or (30 if device.type == "cuda" else 3)
        for cfg in ffhq_configs(device, args.preview_res, args.resolution):
            t0 = time.perf_counter()
            row = run_config(cfg, device, drag_values(n), interval, repeats, settle)
            judge(row, demo=False, full_1024=not cfg.interactive)
            rows.append(row)
            print(f"{cfg.name}: {time.perf_counter() - t0:.1f} s", flush=True)
    print()
    print(format_table(rows))
    for note in job_notes:
        print(note)
    print("\np50/p95: post -> first image of each delivered request (preview when there is "
          "one); final: last event -> its full-resolution image; bare: one synthesize at "
          "the frames' resolution; render: the worker's time per frame (median); compose: "
          "session -> style code per frame")
    judged = [r for r in rows if r.passed is not None]
    return 0 if all(r.passed for r in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
