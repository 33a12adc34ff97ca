"""Train the PFN on the synthetic prior, on the CPU: ``python -m runcast.forecast.pfn.train``.

Every step draws a fresh batch of synthetic curves (so there is no data set and no overfitting)
and minimises the bar-distribution NLL of the held-back future values. The shipped
``weights.npz`` was made with the defaults; the run is deterministic given ``--seed`` (same torch
build and thread count). Needs torch (``pip install runcast[torch]``). The shipped run took
54 minutes on one thread of a shared 2-core machine (0.75 steps/s; 154k synthetic curves) and
ended at a bar NLL of -0.495.

    python -m runcast.forecast.pfn.train --steps 2400 --out weights.npz --seed 0
    python -m runcast.forecast.pfn.train --steps 2400 --out weights.npz --seed 0 --resume

A run writes, beside the weights, a checkpoint (``weights.npz.ckpt``: the model, the optimiser,
both random generators and the losses so far) every ``checkpoint_every`` steps; ``--resume``
continues from it after an interruption, to the same weights an uninterrupted run ends with.

Example:
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "w.npz"
    >>> res = train(steps=2, out=out, batch=4, cfg=ModelConfig(16, 1, 2, 32, 8),
    ...             bin_batches=1, log=lambda s: None)
    >>> out.exists(), len(res.losses)
    (True, 2)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runcast._optional import require
from runcast.errors import InvalidInputError
from runcast.forecast.pfn._features import FloatArray
from runcast.forecast.pfn._prior import ANNEAL_AMP, Z_RANGE, Batch, sample_batch
from runcast.forecast.pfn._real import RealCurve, real_batch

require("torch", "torch", "training the PFN forecaster")

import torch  # noqa: E402

from runcast.forecast.pfn._model import PFN, ModelConfig, bar_nll  # noqa: E402

DEFAULT_OUT = Path(__file__).with_name("weights.npz")
#: the training arguments a weights file records (its config records the model's sizes)
META_KEYS = ("seed", "batch", "lr", "anneal_amp")


@dataclass
class TrainResult:
    """What a training run produced: the model, its bin borders and the loss per step."""

    model: PFN
    borders: FloatArray
    losses: list[float]


def bin_borders(
    rng: np.random.Generator,
    n_bins: int,
    batches: int,
    batch: int,
    anneal_amp: tuple[float, float] = ANNEAL_AMP,
) -> FloatArray:
    """Equal-mass bin borders of the prior's targets (LC-PFN's choice): fine bins where the
    prior puts its mass, coarse ones in the tails; the outer borders are the clip range.

    Example:
        >>> b = bin_borders(np.random.default_rng(0), n_bins=4, batches=1, batch=8)
        >>> b.size, float(b[0]), round(float(b[-1]), 3)
        (5, -7.0, 5.0)
    """
    z = np.concatenate([
        sample_batch(rng, batch, anneal_amp=anneal_amp).q_z.ravel() for _ in range(batches)
    ])  # fmt: skip
    inner = np.quantile(z, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    borders = np.concatenate([[Z_RANGE[0]], inner, [Z_RANGE[1]]])
    # ties (clipped mass at the ends) would make zero-width bins; spread them minimally
    out: FloatArray = np.maximum.accumulate(borders + np.arange(borders.size) * 1e-6)
    return out


def _optimise(
    model: PFN, opt: torch.optim.Optimizer, borders: torch.Tensor, batch: tuple[torch.Tensor, ...]
) -> float:
    """One optimiser step on ``batch`` (``_tensors``' order), gradients clipped to norm 1; the
    step's bar NLL."""
    of, oz, om, qf, qz = batch
    loss = bar_nll(model(of, oz, om, qf), qz, borders)
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.item())


def _tensors(b: Batch) -> tuple[torch.Tensor, ...]:
    f = torch.float32
    return (
        torch.as_tensor(b.obs_feat, dtype=f),
        torch.as_tensor(b.obs_z, dtype=f),
        torch.as_tensor(b.obs_mask),
        torch.as_tensor(b.q_feat, dtype=f),
        torch.as_tensor(b.q_z, dtype=f),
    )


def save_weights(path: Path, model: PFN, borders: FloatArray, meta: dict[str, object]) -> None:
    """Write the weights as float32 arrays plus the config and bins, atomically."""
    arrays = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    arrays["borders"] = np.asarray(borders, dtype=np.float64)
    arrays["config"] = np.array(json.dumps({**model.cfg.to_dict(), **meta}))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.chmod(tmp, 0o644)  # mkstemp makes it private; weights are meant to be shared
    os.replace(tmp, path)


def train(
    steps: int = 2400,
    out: Path | None = DEFAULT_OUT,
    seed: int = 0,
    batch: int = 64,
    lr: float = 1e-3,
    cfg: ModelConfig | None = None,
    bin_batches: int = 32,
    checkpoint_every: int = 250,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
    log_every: int = 50,
    anneal_amp: tuple[float, float] = ANNEAL_AMP,
) -> TrainResult:
    """Train a PFN; saves to ``out`` every ``checkpoint_every`` steps and at the end.

    Args:
        steps: optimiser steps (each on a fresh batch of ``batch`` synthetic curves).
        out: the weights file to write, or None to keep the model in memory only.
        seed: seeds numpy's prior sampler and torch's initialisation.
        lr: peak AdamW learning rate (linear warmup over 5%, cosine decay to 10%).
        cfg: the model sizes (default :class:`ModelConfig`).
        resume: continue from ``out``'s checkpoint (:func:`checkpoint_path`) when there is one,
            which must come from a run with the same arguments; without one, start afresh.
        log_every: steps between progress lines.
        anneal_amp: the prior's range of a full anneal's gain (``_prior.ANNEAL_AMP``).
    """
    cfg = cfg or ModelConfig()
    log = log or _print_flush
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    borders = bin_borders(rng, cfg.n_bins, bin_batches, batch, anneal_amp)
    tb = torch.as_tensor(borders, dtype=torch.float32)
    model = PFN(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    # what a checkpoint must agree on to be continued: anything else is another run
    run_args: dict[str, object] = {"steps": steps, "seed": seed, "batch": batch, "lr": lr,
                                   "bin_batches": bin_batches, "cfg": cfg.to_dict(),
                                   "anneal_amp": list(anneal_amp)}  # fmt: skip
    ckpt = checkpoint_path(out) if out is not None else None
    losses: list[float] = []
    start = 0
    if resume and ckpt is not None and ckpt.exists():
        start, losses = _restore(ckpt, run_args, model, opt, rng)
        log(f"resuming from step {start}/{steps} ({ckpt})")

    def lr_at(i: int) -> float:
        if i < warm:
            return lr * (i + 1) / warm
        p = (i - warm) / max(1, steps - warm)
        return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * p)))

    t0 = time.perf_counter()
    meta = {k: run_args[k] for k in META_KEYS}
    for i in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        losses.append(_optimise(model, opt, tb, _tensors(sample_batch(rng, batch,
                                                                     anneal_amp=anneal_amp))))
        done = i + 1
        if out is not None and (done % checkpoint_every == 0 or done == steps):
            save_weights(out, model, borders, {**meta, "steps": done, "nll": losses[-1]})
            if ckpt is not None and done < steps:
                _save_checkpoint(ckpt, run_args, done, model, opt, rng, losses)
        if done % log_every == 0 or done == steps:
            recent = float(np.mean(losses[-50:]))
            rate = (done - start) / (time.perf_counter() - t0)
            log(f"step {done}/{steps}  nll {recent:.4f}  lr {lr_at(i):.2e}  {rate:.2f} steps/s")
    if ckpt is not None:
        ckpt.unlink(missing_ok=True)  # finished: the weights file is the result
    return TrainResult(model, borders, losses)


def load_model(path: Path) -> tuple[PFN, FloatArray, dict[str, object]]:
    """The torch model, bin borders and metadata of a weights file written by :func:`train`."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["config"]))
        borders = np.asarray(data["borders"], dtype=np.float64)
        state = {k: torch.as_tensor(data[k]) for k in data.files if k not in ("config", "borders")}
    sizes = {k: meta[k] for k in ModelConfig().to_dict()}
    model = PFN(ModelConfig(**sizes))  # type: ignore[arg-type]
    model.load_state_dict(state)
    return model, borders, meta


def finetune(
    pool: Sequence[RealCurve],
    out: Path,
    base: Path = DEFAULT_OUT,
    steps: int = 300,
    batch: int = 64,
    real_share: float = 0.5,
    lr: float = 2e-4,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    log_every: int = 50,
) -> TrainResult:
    """Continue training ``base``'s network on tasks cut from real curves (``_real.py``).

    Each step's batch holds ``real_share`` tasks from ``pool`` and the rest from the synthetic
    prior, so the network learns what real runs do without forgetting what the prior covers.
    The bins stay the base's. Deterministic given ``seed``.

    Example:
        >>> import tempfile, pathlib
        >>> from runcast import Curve
        >>> tmp = pathlib.Path(tempfile.mkdtemp())
        >>> _ = train(steps=1, out=tmp / "base.npz", batch=4, cfg=ModelConfig(16, 1, 2, 32, 8),
        ...           bin_batches=1, log=lambda s: None)
        >>> s = np.arange(500)
        >>> pool = [RealCurve(Curve(s, 2.0 + (1.0 + s) ** -0.5), None, "toy")]
        >>> res = finetune(pool, tmp / "ft.npz", base=tmp / "base.npz", steps=2, batch=4,
        ...                log=lambda s: None)
        >>> len(res.losses), (tmp / "ft.npz").exists()
        (2, True)
    """
    if not 0.0 < real_share <= 1.0:
        raise InvalidInputError(f"real_share must be in (0, 1], but got {real_share}.")
    log = log or _print_flush
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model, borders, base_meta = load_model(base)
    tb = torch.as_tensor(borders, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    n_real = max(1, round(real_share * batch))
    groups = sorted({rc.group for rc in pool})
    amp = _amp(base_meta)  # the synthetic half is drawn from the base's own prior
    losses: list[float] = []
    t0 = time.perf_counter()
    for i in range(steps):
        for g in opt.param_groups:  # cosine from lr to 10% of it: no warmup from a trained net
            g["lr"] = lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * i / steps)))
        parts = [real_batch(rng, pool, n_real)]
        if n_real < batch:
            parts.append(sample_batch(rng, batch - n_real, anneal_amp=amp))
        joined = tuple(torch.cat(t) for t in zip(*map(_tensors, parts), strict=True))
        losses.append(_optimise(model, opt, tb, joined))
        if (i + 1) % log_every == 0 or i + 1 == steps:
            rate = (i + 1) / (time.perf_counter() - t0)
            log(f"step {i + 1}/{steps}  nll {np.mean(losses[-50:]):.4f}  {rate:.2f} steps/s")
    meta: dict[str, object] = {k: base_meta[k] for k in META_KEYS if k in base_meta}
    meta["finetuned"] = {"steps": steps, "batch": batch, "real_share": real_share, "lr": lr,
                         "seed": seed, "groups": groups}  # fmt: skip
    save_weights(out, model, borders, {**meta, "nll": losses[-1]})
    return TrainResult(model, borders, losses)


def _amp(meta: dict[str, object]) -> tuple[float, float]:
    amp = meta.get("anneal_amp")
    if isinstance(amp, list) and len(amp) == 2:
        return float(amp[0]), float(amp[1])
    return ANNEAL_AMP


def checkpoint_path(out: Path) -> Path:
    """Where a run writing ``out`` keeps its checkpoint (``weights.npz`` -> ``weights.npz.ckpt``).

    Example:
        >>> checkpoint_path(Path("w/weights.npz")).name
        'weights.npz.ckpt'
    """
    return out.with_name(out.name + ".ckpt")


def _save_checkpoint(
    path: Path,
    run_args: dict[str, object],
    done: int,
    model: PFN,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
    losses: list[float],
) -> None:
    """Everything the next step depends on, written atomically (a kill leaves the last one)."""
    state = {
        "run_args": run_args,
        "step": done,
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "losses": list(losses),
    }
    fd, tmp = tempfile.mkstemp(suffix=".ckpt", dir=path.parent)
    os.close(fd)
    torch.save(state, tmp)
    os.replace(tmp, path)


def _restore(
    path: Path,
    run_args: dict[str, object],
    model: PFN,
    opt: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[int, list[float]]:
    """Load a checkpoint into the model, optimiser and generators; the step and losses so far."""
    state = torch.load(path, weights_only=False)
    if state.get("run_args") != run_args:
        raise InvalidInputError(
            f"The checkpoint {path} is from a run with {state.get('run_args')}, not {run_args}: "
            "resume with the same arguments, or delete the checkpoint to start afresh."
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["losses"])


def _print_flush(line: str) -> None:
    # flushed, so `nohup ... > log` shows progress while it runs
    print(line, flush=True)


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (``--steps -5`` trained nothing and wrote NaN)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, but got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    """The command line: parse arguments, train on one CPU thread, print the final loss."""
    p = argparse.ArgumentParser(prog="python -m runcast.forecast.pfn.train", description=__doc__)
    p.add_argument("--steps", type=_positive, default=2400, help="optimiser steps (default 2400)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="weights file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch", type=_positive, default=64, help="curves per step (default 64)")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--anneal-amp", type=float, nargs=2, default=ANNEAL_AMP, metavar=("LO", "HI"),
                   help="the prior's range of a full anneal's gain, in units of the power law's "
                   f"drop over 10-100%% of the run (default {ANNEAL_AMP[0]} {ANNEAL_AMP[1]})")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint beside --out, if there is one")  # fmt: skip
    a = p.parse_args(argv)
    # one thread by default: training shares the machine, and it keeps runs reproducible
    torch.set_num_threads(a.threads)
    res = train(steps=a.steps, out=a.out, seed=a.seed, batch=a.batch, resume=a.resume,
                anneal_amp=(a.anneal_amp[0], a.anneal_amp[1]))  # fmt: skip
    final = float(np.mean(res.losses[-50:]))
    print(f"final training loss (bar NLL, mean of last 50 steps): {final:.4f}; wrote {a.out}")


if __name__ == "__main__":
    main()
