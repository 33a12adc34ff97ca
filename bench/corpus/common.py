"""What every corpus generator shares: seeding, schedules, optimizers, the training loop, records.

A generator (gen_<family>.py) lists its runs as plain config dicts (``configs()``) and trains one
(``run(config) -> Record``); build.py stores the records and the manifest. Everything runs on
the CPU with one thread, so a run's curve depends only on its config and the library versions.

Step convention (the same for every metric): update ``t`` (0-based, ``0 <= t < total``) uses the
LR ``schedule.array()[t]``; ``train_loss[t]`` and ``grad_norm[t]`` (before any clipping) belong
to the batch of update ``t``; a validation point at step ``t`` is measured just after update
``t``, so the last one sits at ``total - 1`` and every curve lies inside its schedule.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from runcast.schedules import Schedule

torch.set_num_threads(1)

# a loss above this (or non-finite) ends the run as diverged: its remaining steps are not run
DIVERGE_LOSS = 1e4


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def run_id(family: str, cfg: dict[str, Any]) -> str:
    """A stable id: the family plus a short hash of the config (order-insensitive)."""
    body = repr(sorted((k, repr(v)) for k, v in cfg.items() if k != "id"))
    return f"{family}-{hashlib.sha1(body.encode()).hexdigest()[:10]}"


# --- schedules --------------------------------------------------------------------------------
# every kind runcast.Schedule knows, as (name, spec builder); families cycle through them
def schedule_spec(name: str, peak: float, total: int, warmup: int = 0) -> dict[str, Any]:
    """A named schedule variant as a runcast spec of ``total`` steps peaking at ``peak``."""
    w = {"warmup": warmup} if warmup else {}
    end = peak * 0.02
    specs: dict[str, dict[str, Any]] = {
        "constant": {"kind": "constant", "peak": peak, "total": total},
        "cosine": {"kind": "cosine", "peak": peak, "end": end, "total": total},
        "cosine0": {"kind": "cosine", "peak": peak, "end": 0.0, "total": total},
        "linear": {"kind": "linear", "peak": peak, "end": 0.0, "total": total},
        "wsd": {
            "kind": "wsd",
            "peak": peak,
            "end": 0.0,
            "total": total,
            "decay_fraction": 0.2,
            "decay_shape": "linear",
        },
        "wsd_sqrt": {
            "kind": "wsd",
            "peak": peak,
            "end": 0.0,
            "total": total,
            "decay_fraction": 0.2,
            "decay_shape": "1-sqrt",
        },
        "wsd_exp": {
            "kind": "wsd",
            "peak": peak,
            "end": end,
            "total": total,
            "decay_fraction": 0.3,
            "decay_shape": "exponential",
        },
        "wsd_cos": {
            "kind": "wsd",
            "peak": peak,
            "end": 0.0,
            "total": total,
            "decay_fraction": 0.1,
            "decay_shape": "cosine",
        },
        "step811": {
            "kind": "multistep",
            "peak": peak,
            "total": total,
            "milestone_fractions": [0.8, 0.9],
            "gamma": 0.316,
        },
        "two_stage": {
            "kind": "two_stage",
            "peak": peak,
            "second": peak * 0.3,
            "switch": total // 2,
            "total": total,
        },
        "cyclic": {
            "kind": "cyclic",
            "peak": peak,
            "base": peak * 0.05,
            "period": max(total // 4, 1),
            "shape": "cosine",
            "total": total,
        },
        "cyclic_tri": {
            "kind": "cyclic",
            "peak": peak,
            "base": peak * 0.1,
            "period": max(total // 3, 1),
            "shape": "triangular",
            "total": total,
        },
        "inverse_sqrt": {
            "kind": "inverse_sqrt",
            "peak": peak,
            "total": total,
            "timescale": max(total // 20, 1),
        },
        "power": {
            "kind": "power",
            "peak": peak,
            "a": peak * 4.0,
            "b": -0.3,
            "tokens_per_step": 1.0,
            "batch_size": 1.0,
            "total": total,
            "decay_fraction": 0.1,
        },
        "rewarm": {
            "kind": "sequence",
            "phases": [
                {"kind": "cosine", "peak": peak, "end": peak * 0.1, "steps": total // 2},
                {
                    "kind": "cosine",
                    "peak": peak * 0.5,
                    "end": 0.0,
                    "warmup": max(total // 20, 1),
                    "steps": total - total // 2,
                },
            ],
        },
    }
    spec = dict(specs[name])
    if name == "power":
        # the power law starts falling after warmup: give it one if none was asked
        w = {"warmup": warmup or max(total // 50, 1)}
    if name == "rewarm":
        if warmup:
            spec["phases"][0] = {**spec["phases"][0], "warmup": warmup}
        return spec
    return {**spec, **w}


SCHEDULES = (
    "constant",
    "cosine",
    "cosine0",
    "linear",
    "wsd",
    "wsd_sqrt",
    "wsd_exp",
    "wsd_cos",
    "step811",
    "two_stage",
    "cyclic",
    "cyclic_tri",
    "inverse_sqrt",
    "power",
    "rewarm",
)


def make_schedule(spec: dict[str, Any], total: int) -> tuple[Schedule, np.ndarray]:
    sched = Schedule.from_spec(spec)
    return sched, np.asarray(sched.array(total), dtype=np.float64)


# --- optimizers -------------------------------------------------------------------------------
OPTIMIZERS = ("adamw", "adam", "sgd", "schedulefree")


def make_optimizer(
    name: str,
    params: list[nn.Parameter],
    lr: float,
    wd: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.99),
) -> Any:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, nesterov=False)
    if name == "schedulefree":
        import schedulefree

        # warmup comes from the run's schedule (set into the param group each step)
        return schedulefree.AdamWScheduleFree(
            params, lr=lr, weight_decay=wd, betas=betas, warmup_steps=0
        )
    raise ValueError(f"unknown optimizer {name!r}; use one of {OPTIMIZERS}")


# --- tasks ------------------------------------------------------------------------------------
class Task:
    """A dataset plus its loss: ``batch`` draws training examples, ``evaluate`` the val metrics."""

    per_example: int = 1  # tokens per example (LMs) for the config's tokens per step

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        raise NotImplementedError

    def metric_names(self) -> tuple[str, ...]:
        return ("val_loss", "val_acc")


class ArrayTask(Task):
    """Supervised arrays: classification (cross-entropy, accuracy) or regression (MSE, R^2)."""

    def __init__(
        self,
        xtr: np.ndarray,
        ytr: np.ndarray,
        xva: np.ndarray,
        yva: np.ndarray,
        classify: bool,
        loss_kind: str = "auto",
    ) -> None:
        self.classify = classify
        self.xtr = torch.tensor(xtr, dtype=torch.float32)
        self.xva = torch.tensor(xva, dtype=torch.float32)
        ydt = torch.long if classify else torch.float32
        self.ytr = torch.tensor(ytr, dtype=ydt)
        self.yva = torch.tensor(yva, dtype=ydt)
        self.loss_kind = ("ce" if classify else "mse") if loss_kind == "auto" else loss_kind
        self.var_va = float(self.yva.float().var()) if not classify else 1.0
        self.n_train = len(self.xtr)
        self._order: np.ndarray | None = None
        self._pos = 0

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        # epochs of shuffled mini-batches (without replacement); a batch >= the data is full-batch
        if size >= self.n_train:
            return self.xtr, self.ytr
        if self._order is None or self._pos + size > self.n_train:
            self._order = rng.permutation(self.n_train)
            self._pos = 0
        idx = torch.from_numpy(self._order[self._pos : self._pos + size])
        self._pos += size
        return self.xtr[idx], self.ytr[idx]

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "ce":
            return nn.functional.cross_entropy(out, y)
        if self.loss_kind == "recon":
            return nn.functional.mse_loss(out, y)
        return nn.functional.mse_loss(out.squeeze(-1), y)

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._loss(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        out = model(self.xva)
        loss = float(self._loss(out, self.yva))
        if self.loss_kind == "ce":
            acc = float((out.argmax(-1) == self.yva).float().mean())
            return {"val_loss": loss, "val_acc": acc}
        if self.loss_kind == "mse":
            return {"val_loss": loss, "val_r2": 1.0 - loss / self.var_va}
        return {"val_loss": loss}

    def metric_names(self) -> tuple[str, ...]:
        return {"ce": ("val_loss", "val_acc"), "mse": ("val_loss", "val_r2")}.get(
            self.loss_kind, ("val_loss",)
        )


class TextTask(Task):
    """Next-byte prediction on a text: random windows for training, fixed windows to validate."""

    def __init__(
        self,
        data: np.ndarray,
        ctx: int,
        val_frac: float = 0.1,
        n_val: int = 64,
        train_limit: int | None = None,
        seed: int = 0,
    ) -> None:
        cut = int(len(data) * (1 - val_frac))
        self.train = torch.from_numpy(data[:cut].astype(np.int64))
        if train_limit is not None:
            self.train = self.train[:train_limit]
        val = torch.from_numpy(data[cut:].astype(np.int64))
        self.ctx = ctx
        self.per_example = ctx
        g = np.random.default_rng(seed + 12345)
        starts = g.integers(0, len(val) - ctx - 1, size=n_val)
        self.xva = torch.stack([val[s : s + ctx] for s in starts])
        self.yva = torch.stack([val[s + 1 : s + ctx + 1] for s in starts])
        self.n_train = len(self.train)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = rng.integers(0, self.n_train - self.ctx - 1, size=size)
        idx = torch.from_numpy(starts)[:, None] + torch.arange(self.ctx + 1)[None, :]
        chunk = self.train[idx]
        return chunk[:, :-1], chunk[:, 1:]

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        out = model(self.xva)
        flat = out.reshape(-1, out.shape[-1])
        yv = self.yva.reshape(-1)
        loss = float(nn.functional.cross_entropy(flat, yv))
        acc = float((flat.argmax(-1) == yv).float().mean())
        return {"val_loss": loss, "val_acc": acc}


# --- records and the loop ---------------------------------------------------------------------
@dataclass
class Record:
    """What one run produced: per-step arrays, the eval points, and facts for the manifest."""

    train_loss: np.ndarray
    lr: np.ndarray
    grad_norm: np.ndarray
    eval_step: np.ndarray
    evals: dict[str, np.ndarray]
    diverged: bool
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        out = {
            f"{prefix}train_loss": self.train_loss.astype(np.float32),
            f"{prefix}lr": self.lr.astype(np.float32),
            f"{prefix}grad_norm": self.grad_norm.astype(np.float32),
            f"{prefix}eval_step": self.eval_step.astype(np.int32),
        }
        for k, v in self.evals.items():
            out[f"{prefix}{k}"] = v.astype(np.float32)
        return out


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def eval_steps(total: int, every: int) -> set[int]:
    """Validation after updates every-1, 2*every-1, ... and always after the last update."""
    return {t for t in range(every - 1, total, every)} | {total - 1}


def train(
    task: Task,
    model: nn.Module,
    *,
    optimizer: str,
    schedule: dict[str, Any],
    total: int,
    batch_size: int,
    seed: int,
    eval_every: int,
    wd: float = 0.0,
    clip: float | None = None,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.99),
    eval_at: set[int] | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> Record:
    """Train ``model`` for ``total`` updates under ``schedule``; record every step and eval."""
    rng = np.random.default_rng(seed)
    _, lrs = make_schedule(schedule, total)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, params, float(lrs[0]) or 1e-8, wd, momentum, betas)
    sf = optimizer == "schedulefree"
    tl = np.full(total, np.nan)
    gn = np.full(total, np.nan)
    when = eval_at if eval_at is not None else eval_steps(total, eval_every)
    ev_steps: list[int] = []
    evs: dict[str, list[float]] = {}
    diverged = False
    t0 = time.perf_counter()
    model.train()
    if sf:
        opt.train()
    for t in range(total):
        lr = float(lrs[t])
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = task.batch(rng, batch_size)
        loss = task.loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        lv, nv = float(loss.detach()), float(norm)
        tl[t], gn[t] = lv, nv
        if not (math.isfinite(lv) and lv < DIVERGE_LOSS and math.isfinite(nv)):
            diverged = True
            tl[t] = lv if math.isfinite(lv) else np.nan
            gn[t] = nv if math.isfinite(nv) else np.nan
            break
        opt.step()
        if t in when:
            model.eval()
            if sf:
                opt.eval()
            m = task.evaluate(model)
            model.train()
            if sf:
                opt.train()
            ev_steps.append(t)
            for k, v in m.items():
                evs.setdefault(k, []).append(v if math.isfinite(v) else np.nan)
            if on_eval is not None:
                on_eval(t, m)
    secs = time.perf_counter() - t0
    n = t + 1 if diverged else total
    return Record(
        train_loss=tl[:n],
        lr=lrs[:n],
        grad_norm=gn[:n],
        eval_step=np.asarray(ev_steps, dtype=np.int64),
        evals={k: np.asarray(v) for k, v in evs.items()},
        diverged=diverged,
        seconds=secs,
    )


# --- data -------------------------------------------------------------------------------------
def sklearn_data(
    name: str, seed: int = 0, n_train: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """A scikit-learn dataset shipped with the package (or generated), standardised, split."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    classify = True
    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        x = x / 16.0
    elif name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "wine":
        x, y = datasets.load_wine(return_X_y=True)
    elif name == "iris":
        x, y = datasets.load_iris(return_X_y=True)
    elif name == "synth_cls":
        x, y = datasets.make_classification(
            n_samples=3000,
            n_features=40,
            n_informative=12,
            n_classes=5,
            n_clusters_per_class=2,
            flip_y=0.05,
            random_state=7,
        )
    elif name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
        classify = False
    elif name == "friedman1":
        x, y = datasets.make_friedman1(n_samples=3000, n_features=10, noise=1.0, random_state=7)
        classify = False
    elif name == "regression":
        x, y = datasets.make_regression(
            n_samples=2000, n_features=30, n_informative=10, noise=20.0, random_state=7
        )
        y = np.tanh(y / 150.0) * 150.0  # a mildly non-linear target
        classify = False
    else:
        raise ValueError(f"unknown dataset {name!r}")
    xtr, xva, ytr, yva = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y if classify else None
    )
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if name != "digits":
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
        xtr, xva = (xtr - mu) / sd, (xva - mu) / sd
    if not classify:
        mu, sd = ytr.mean(), ytr.std() + 1e-8
        ytr, yva = (ytr - mu) / sd, (yva - mu) / sd
    return xtr, ytr, xva, yva, classify


def _stdlib_dir() -> str:
    import sysconfig

    return sysconfig.get_paths()["stdlib"]


# the texts: byte-level (values >= 128 folded to 127), each from files that ship with Python or
# Debian; a config records the text's sha256 prefix, so a changed source is visible
TEXT_SOURCES: dict[str, list[str]] = {
    "pysrc": [
        "argparse.py",
        "typing.py",
        "dataclasses.py",
        "pathlib.py",
        "inspect.py",
        "collections/__init__.py",
        "functools.py",
        "enum.py",
        "json/encoder.py",
        "json/decoder.py",
        "subprocess.py",
        "tarfile.py",
    ],
    "licenses": [
        "/usr/share/common-licenses/GPL-3",
        "/usr/share/common-licenses/Apache-2.0",
        "/usr/share/common-licenses/LGPL-3",
        "/usr/share/common-licenses/MPL-2.0",
        "/usr/share/common-licenses/Artistic",
    ],
    "pydoc": ["pydoc_data/topics.py"],
}


def load_text(name: str) -> tuple[np.ndarray, str]:
    import os

    parts = []
    for f in TEXT_SOURCES[name]:
        path = f if f.startswith("/") else os.path.join(_stdlib_dir(), f)
        with open(path, "rb") as fh:
            parts.append(fh.read())
    raw = b"\n".join(parts)
    arr = np.minimum(np.frombuffer(raw, dtype=np.uint8), 127).astype(np.uint8)
    return arr, hashlib.sha256(raw).hexdigest()[:12]


# --- models -----------------------------------------------------------------------------------
def mlp(
    d_in: int, width: int, depth: int, d_out: int, act: str = "relu", dropout: float = 0.0
) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        layers += [nn.Linear(d, width), acts[act]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class CharTransformer(nn.Module):
    """A small pre-norm decoder-only transformer over bytes (vocab 128), learned positions."""

    def __init__(
        self, d: int, layers: int, heads: int, ctx: int, vocab: int = 128, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(ctx, d))
        nn.init.normal_(self.pos, std=0.02)
        block = nn.TransformerEncoderLayer(
            d, heads, 4 * d, dropout=dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        mask = torch.triu(torch.full((ctx, ctx), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        h = self.emb(x) + self.pos[:n]
        h = self.blocks(h, mask=self.mask[:n, :n], is_causal=True)
        return self.head(self.norm(h))


class CharRNN(nn.Module):
    def __init__(self, cell: str, d_emb: int, hidden: int, layers: int, vocab: int = 128) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d_emb)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(d_emb, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.emb(x))
        return self.head(h)


class SmallCNN(nn.Module):
    """Two 3x3 conv layers on 8x8 digit images, then a linear head."""

    def __init__(self, c1: int, c2: int, n_cls: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 16, n_cls),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.view(-1, 1, 8, 8))


def grid_iter(*axes: list[Any]) -> Iterator[tuple[Any, ...]]:
    import itertools

    yield from itertools.product(*axes)


# --- config sampling --------------------------------------------------------------------------
# sensible peak-LR ranges per optimizer (log-uniform); sweeps widen them on purpose
LR_RANGE = {
    "adamw": (3e-4, 1e-2),
    "adam": (3e-4, 1e-2),
    "sgd": (1e-2, 3e-1),
    "schedulefree": (5e-4, 1e-2),
}


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sig(x: float, digits: int = 3) -> float:
    """Round to ``digits`` significant digits (keeps configs short and ids stable)."""
    return float(f"{x:.{digits}g}")


def sample_common(
    rng: np.random.Generator,
    i: int,
    totals: list[int],
    batches: list[int],
    lr_scale: float = 1.0,
    optimizers: tuple[str, ...] = OPTIMIZERS,
) -> dict[str, Any]:
    """Optimizer, peak LR, schedule (cycling through every kind), warmup, length, batch, seed."""
    opt = optimizers[i % len(optimizers)]
    lo, hi = LR_RANGE[opt]
    total = int(totals[int(rng.integers(len(totals)))])
    sched = SCHEDULES[(i * 7) % len(SCHEDULES)]
    warm = [0, 0.02, 0.05, 0.1][int(rng.integers(4))]
    return {
        "optimizer": opt,
        "peak_lr": sig(log_uniform(rng, lo, hi) * lr_scale),
        "schedule_name": sched,
        "warmup": int(warm * total),
        "total": total,
        "batch_size": int(batches[int(rng.integers(len(batches)))]),
        "seed": int(rng.integers(0, 1000)),
        "wd": [0.0, 1e-4, 1e-2][int(rng.integers(3))],
    }


def spec_of(cfg: dict[str, Any]) -> dict[str, Any]:
    return schedule_spec(cfg["schedule_name"], cfg["peak_lr"], cfg["total"], cfg["warmup"])


def train_cfg(cfg: dict[str, Any], model: nn.Module, task: Any) -> Record:
    """Train ``model`` on ``task`` with the optimizer, schedule and budget ``cfg`` names."""
    return train(
        task,
        model,
        optimizer=cfg["optimizer"],
        schedule=cfg["schedule"],
        total=cfg["total"],
        batch_size=cfg["batch_size"],
        seed=cfg["seed"],
        eval_every=cfg["eval_every"],
        wd=cfg["wd"],
        clip=cfg.get("clip"),
    )


def run_array_task(cfg: dict[str, Any], model: nn.Module, task: ArrayTask) -> Record:
    """Train an MLP-style model on an array task as ``cfg`` says; fill the run's facts."""
    rec = train_cfg(cfg, model, task)
    rec.info.update(
        {
            "params": n_params(model),
            "examples_per_step": min(cfg["batch_size"], task.n_train),
            "n_train": task.n_train,
        }
    )
    return rec


_TEXTS: dict[str, tuple[np.ndarray, str]] = {}


def text(name: str) -> tuple[np.ndarray, str]:
    if name not in _TEXTS:
        _TEXTS[name] = load_text(name)
    return _TEXTS[name]


def lm_model(cfg: dict[str, Any]) -> nn.Module:
    if cfg["model"] == "transformer":
        return CharTransformer(cfg["d"], cfg["layers"], cfg["heads"], cfg["ctx"])
    return CharRNN(cfg["model"], cfg["d_emb"], cfg["hidden"], cfg.get("layers", 1))


def run_text_task(cfg: dict[str, Any], model: nn.Module, task: TextTask) -> Record:
    """Train a language model on a text task as ``cfg`` says; fill the run's facts."""
    rec = train_cfg(cfg, model, task)
    rec.info.update(
        {
            "params": n_params(model),
            "tokens_per_step": cfg["batch_size"] * cfg["ctx"],
            "train_tokens": task.n_train,
        }
    )
    return rec
