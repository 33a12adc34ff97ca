"""The demo's training loop: a char-level transformer under a WSD schedule, recorded by runcast,
with a live forecast of the final loss.

Every ``forecast_every`` steps the loop forecasts the rest of the run from the loss seen so far
(``runcast.forecast(curve, until=last_step, schedule=wsd)``, milliseconds) and hands it to a
callback (the CLI draws it in a progress bar). The forecast made at 20% of the run is kept, and
at the end it is compared with the loss the run actually reached.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.forecast import Forecast
from runcast.schedules import Schedule


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains and how.

    Args:
        steps: optimizer steps in the whole run (the WSD schedule's ``total``).
        seed: seed of the model's initialisation and of the batches.
        batch: windows per step.
        context: characters per window.
        width, heads, layers: the transformer's size.
        peak_lr: the WSD schedule's stable learning rate.
        warmup: linear warmup steps (capped at 5% of ``steps``).
        decay_fraction: share of the run spent decaying to ``end_lr`` (the "D" of WSD).
        end_lr: the learning rate at the last step.
        forecast_at: fraction of the run at which the forecast that is judged at the end is made.
        threads: torch CPU threads (None: the cores this process may use that are idle).
    """

    steps: int = 1500
    seed: int = 0
    batch: int = 32
    context: int = 64
    width: int = 96
    heads: int = 4
    layers: int = 2
    peak_lr: float = 3e-3
    warmup: int = 50
    decay_fraction: float = 0.2
    end_lr: float = 3e-5
    forecast_at: float = 0.2
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 20:
            raise InvalidInputError(
                f"The demo needs at least 20 steps to forecast anything, but got {self.steps=}."
            )
        if not 0.0 < self.forecast_at < 1.0:
            raise InvalidInputError(f"forecast_at must be in (0, 1), but got {self.forecast_at}.")

    def schedule(self) -> Schedule:
        """The run's warmup-stable-decay schedule.

        Example:
            >>> s = DemoConfig(steps=100).schedule()
            >>> s.kind, s.total, round(s(50), 4), s.to_spec()["end"]
            ('wsd', 100, 0.003, 3e-05)
        """
        warmup = min(self.warmup, self.steps // 20)
        return Schedule.from_spec(
            {
                "kind": "wsd",
                "peak": self.peak_lr,
                "end": self.end_lr,
                "warmup": warmup,
                "total": self.steps,
                "decay_fraction": self.decay_fraction,
            }
        )

    @property
    def cutoff_step(self) -> int:
        """The step at which the judged forecast is made (``forecast_at`` of the run)."""
        return max(int(self.forecast_at * self.steps), 1)

    @property
    def forecast_every(self) -> int:
        """Steps between live forecasts (about 40 per run)."""
        return max(self.steps // 40, 5)


@dataclass(frozen=True)
class StepInfo:
    """What the loop reports to its callback after each step."""

    step: int
    total: int
    loss: float
    lr: float
    forecast: Forecast | None
    val_loss: float | None = None


@dataclass(frozen=True)
class Judged:
    """The forecast made at ``cutoff_step`` against the loss reached at the end.

    ``actual`` is the loss the run reached: its trend at the last step
    (:func:`runcast.report.reached`, the same number the report and the dashboard show). The
    per-step loss is noisy, and the forecast is of that trend, not of one minibatch.
    """

    cutoff_step: int
    median: float
    lo80: float
    hi80: float
    actual: float
    method: str

    @property
    def error_pct(self) -> float:
        """Signed error of the median, in % of the actual loss (positive: too pessimistic)."""
        return 100.0 * (self.median - self.actual) / self.actual

    @property
    def inside80(self) -> bool:
        """Whether the actual final loss fell inside the 80% interval."""
        return self.lo80 <= self.actual <= self.hi80


@dataclass
class DemoResult:
    """The outcome of a demo run."""

    run_id: str
    db: Path
    steps: int
    final_loss: float
    final_val_loss: float | None
    seconds: float
    n_params: int
    judged: Judged | None
    sample: str = ""
    forecasts: list[tuple[int, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _live_forecast(
    steps: list[int], losses: list[float], sched: Schedule, notes: list[str]
) -> Forecast | None:
    """The forecast of the rest of the run, or None while there are too few points to fit.

    Warnings and failures go to ``notes`` (each message once) instead of the terminal, where
    they would tear up the progress bar forty times a run; the CLI prints them at the end.
    """
    from runcast.report._build import FORECAST_ERRORS, trend_forecast

    curve = Curve(steps, losses, schedule=sched, name="loss")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # the report's and the dashboard's own call: the forecast made at the cut-off is the
            # same number in the summary, the report and the dashboard
            fc: Forecast | None = trend_forecast(curve, sched, int(sched.total or 0) - 1)
        except FORECAST_ERRORS as err:
            # too early, or a fit that failed: keep the last good forecast, keep training
            caught_msg = f"step {steps[-1]}: no forecast ({err})"
            if len(notes) < 20:
                notes.append(caught_msg)
            fc = None
    for w in caught:
        msg = f"{type(w.message).__name__}: {w.message}"
        if msg not in notes and len(notes) < 20:
            notes.append(msg)
    return fc


def train(
    cfg: DemoConfig,
    db: Path,
    on_step: Callable[[StepInfo], None] | None = None,
    project: str = "demo",
    name: str | None = None,
) -> DemoResult:
    """Train the demo model for ``cfg.steps`` steps and record it into the store at ``db``.

    Example (a few steps on a tiny model; ``runcast demo`` runs the real thing):
        >>> import tempfile, pathlib
        >>> cfg = DemoConfig(steps=20, batch=4, context=16, width=16, heads=2, layers=1)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     res = train(cfg, pathlib.Path(d) / "runcast.db")
        >>> res.steps, res.final_loss < 4.6
        (20, True)
    """
    import torch

    import runcast
    from runcast.demo._model import CharTransformer, ModelConfig
    from runcast.demo._text import CharData, load_text

    torch.set_num_threads(cfg.threads or _threads())
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = CharData.from_text(load_text())
    model = CharTransformer(ModelConfig(data.vocab, cfg.context, cfg.width, cfg.heads, cfg.layers))
    sched = cfg.schedule()
    lrs = sched.array()
    opt = torch.optim.AdamW(model.parameters(), lr=float(lrs[0]), weight_decay=0.1)
    config = {
        "model": "char-transformer",
        "params": model.n_params(),
        "text": "CPython help topics (PSF licence)",
        "steps": cfg.steps,
        "batch": cfg.batch,
        "context": cfg.context,
        "width": cfg.width,
        "layers": cfg.layers,
        "seed": cfg.seed,
        # the planned schedule: the report and dashboard forecast the run against it
        "schedule": sched.to_spec(),
    }
    steps: list[int] = []
    losses: list[float] = []
    judged_fc: Forecast | None = None
    live: Forecast | None = None
    history: list[tuple[int, float]] = []
    notes: list[str] = []
    val_loss: float | None = None
    t0 = time.perf_counter()
    db.parent.mkdir(parents=True, exist_ok=True)
    with runcast.init(project=project, name=name, config=config, db=str(db)) as run:
        for step in range(cfg.steps):
            lr = float(lrs[step])
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = data.batch("train", cfg.batch, cfg.context, rng)
            loss = model.loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            # note: .item() is free on CPU; the loop needs the float for the live forecast
            value = float(loss.item())
            steps.append(step)
            losses.append(value)
            metrics: dict[str, float] = {"loss": value, "lr": lr}
            last = step == cfg.steps - 1
            if step % max(cfg.steps // 20, 10) == 0 or last:
                val_loss = _val_loss(model, data, cfg, torch)
                metrics["val_loss"] = val_loss
            run.log(metrics, step=step)
            if step == cfg.cutoff_step:
                judged_fc = _live_forecast(steps, losses, sched, notes)
                live = judged_fc or live
            elif step >= cfg.cutoff_step // 2 and step % cfg.forecast_every == 0 and not last:
                live = _live_forecast(steps, losses, sched, notes) or live
            if live is not None and step % cfg.forecast_every == 0:
                history.append((step, live.final.median))
            if on_step is not None:
                on_step(StepInfo(step, cfg.steps, value, lr, live, val_loss))
        sample = _sample(model, data, cfg, torch)
        run_id = str(run.id)
    from runcast.report import reached

    actual = reached(Curve(steps, losses, name="loss"))
    judged = None
    if judged_fc is not None:
        lo, hi = judged_fc.final.interval(0.8)
        judged = Judged(cfg.cutoff_step, judged_fc.final.median, lo, hi, actual, judged_fc.method)
    return DemoResult(
        run_id=run_id,
        db=db,
        steps=cfg.steps,
        final_loss=actual,
        final_val_loss=val_loss,
        seconds=time.perf_counter() - t0,
        n_params=model.n_params(),
        judged=judged,
        sample=sample,
        forecasts=history,
        notes=notes,
    )


def _threads() -> int:
    """Torch threads: the cores this process may use, less those other processes keep busy.

    On a busy machine torch's thread pool spin-waits for cores it does not get: measured on a
    2-core machine under load, 2 threads took 1.2 s per step where 1 thread took 0.07 s.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = int(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, (cores or 1) - busy)


def _val_loss(model: Any, data: Any, cfg: DemoConfig, torch: Any) -> float:
    """Validation loss on a fixed set of held-out windows (same windows every time)."""
    rng = np.random.default_rng(12345)
    with torch.no_grad():
        x, y = data.batch("val", 4 * cfg.batch, cfg.context, rng)
        return float(model.loss(x, y).item())


def _sample(model: Any, data: Any, cfg: DemoConfig, torch: Any, n: int = 120) -> str:
    """A greedy-ish continuation, so the user sees what the model learned."""
    gen = torch.Generator().manual_seed(cfg.seed)
    idx = torch.tensor([data.encode("The ")], dtype=torch.long)
    with torch.no_grad():
        for _ in range(n):
            logits = model(idx[:, -cfg.context :])[:, -1, :]
            # temperature 0.8: less gibberish than plain sampling, less repetition than argmax
            probs = torch.softmax(logits / 0.8, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            idx = torch.cat([idx, nxt], dim=1)
    return str(data.decode(idx[0].tolist()))
