"""ScheduleFree+ (Defazio 2026): AdamW without a learning rate and without a schedule.

Schedule-Free learning (Defazio et al. 2024, "The Road Less Scheduled") keeps three points: the
base iterate ``z`` that Adam moves, the running weighted average ``x`` that is evaluated and
saved, and ``y = beta * x + (1 - beta) * z`` where the gradient is taken. ScheduleFree+ adds:

- an Adam first moment inside the ``z`` update (plain Schedule-Free has none);
- a Polyak step size, so no learning rate is tuned: ``alpha = lr * warmup_t *
  max(0, f(y) - loss_floor + beta * <g, z - x>) / e_t`` with ``e_t`` a bias-corrected running
  average of ``||g||_1 * sqrt(pi/2)``. ``f(y) + beta <g, z - x>`` is the loss linearised at ``z``
  (``z - y = beta (z - x)``), and ``||g||_1 sqrt(pi/2)`` estimates how fast an Adam step of size
  1 lowers it, so ``alpha`` is the step that would reach ``loss_floor`` on the linear model;
  ``lr`` is only a multiplier (1 by default);
- ``beta`` annealed linearly from ``beta`` to ``beta_max`` over ``anneal_steps`` (averaging over
  a longer window as training goes on);
- a warm start: for ``warm_start_steps`` steps ``x`` follows ``z``, then the average restarts;
- averaging weights ``w_t = s**r * alpha_max**weight_power`` (``s`` the steps since the restart,
  ``alpha_max`` the largest step so far), ``x <- x + (w_t / sum w) (z - x)``;
- weight decay scaled by the squared step (AdamC): ``z <- z - alpha**2 * weight_decay * y``.

The loss reaches the optimizer with each step: ``optimizer.step(loss=loss)`` or a closure. Under
``torch.distributed`` it is averaged over the ranks first; the gradients already are (DDP), so
every replica takes the same step. Reading the loss and the two global sums is one host sync per
step (the step size is a number the updates need).

Like the ``schedulefree`` package's optimizers it has ``train()``/``eval()``: in train mode the
model holds ``y``, in eval mode ``x`` (evaluate and save there); it starts in eval mode.
runcast's integrations switch it as they do those. Each step's scalars are in
:meth:`ScheduleFreePlus.metrics`, ready for ``run.log``.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Linear(8, 1)
    >>> opt = ScheduleFreePlus(model.parameters(), warmup_steps=5)
    >>> opt.train()
    >>> data = torch.randn(64, 8)
    >>> target = data @ torch.randn(8, 1)
    >>> losses = []
    >>> for step in range(100):
    ...     loss = (model(data) - target).pow(2).mean()
    ...     opt.zero_grad(); loss.backward()
    ...     _ = opt.step(loss=loss)  # the loss sets the step size
    ...     losses.append(loss.item())
    >>> opt.eval()  # the model now holds x, the weights to evaluate and save
    >>> with torch.no_grad():
    ...     final = (model(data) - target).pow(2).mean().item()
    >>> final < 0.1 * losses[0], sorted(opt.metrics())[:3]
    (True, ['sfp/avg_weight', 'sfp/beta', 'sfp/grad_l1'])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from runcast.errors import InvalidInputError
from runcast.optim import _sfplus_math as sfm

_GLOBAL_KEY = "schedule_free_plus"


class ScheduleFreePlus(torch.optim.Optimizer):
    """ScheduleFree+: learning-rate-free, schedule-free AdamW (see the module doc).

    Args:
        params: parameters or param groups (a group may set its own ``lr`` multiplier,
            ``weight_decay``, ``betas`` and ``eps``).
        lr: multiplier of the Polyak step size (1 = the paper's method, no tuning).
        betas: Adam's moment decays inside the ``z`` update.
        eps: Adam's denominator floor.
        weight_decay: decoupled decay, applied as ``alpha**2 * weight_decay``.
        beta: the interpolation weight at the start; ``beta_max`` the one it anneals to over
            ``anneal_steps`` steps.
        warmup_steps: the Polyak step is scaled by ``min(1, t / warmup_steps)``.
        warm_start_steps: steps in which ``x`` follows ``z`` before averaging starts (default:
            ``warmup_steps``).
        r: the power of the step count in the averaging weights.
        weight_power: the power of the largest step size so far in the averaging weights.
        norm_beta: decay of the running average of the gradient's L1 norm.
        loss_floor: a lower bound of the loss (the Polyak target). 0 is always safe for
            cross-entropy but far below what a language model can reach: there the step grows
            as the gradients shrink; a floor near the reachable loss (or ``lr < 1``) tames it
            (see bench/README.md, "Time to result").
        max_step: an upper bound on the Polyak step (SPS_max, Loizou et al. 2021); None (the
            paper's method) leaves it unbounded. The step grows without bound where the loss
            stays far above ``loss_floor`` while the gradients shrink (a small language model):
            a cap such as 1e-2 keeps it an Adam step there.
        foreach: the fast path (default): ``torch._foreach_*`` kernels on a state of ``y`` and
            a scaled ``d = z - x`` (the memory of the ``schedulefree`` package); ``False``: the
            paper's sequences ``z`` and ``x`` updated tensor by tensor (the reference). Read
            ``x``, ``y``, ``z`` of either with :meth:`iterates`.
        average_loss: under ``torch.distributed``, average the loss over ``process_group``'s
            ranks before the step (leave on: without it the replicas drift apart).
        process_group: the group to average over (default: the world).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        betas: tuple[float, float] = (0.5, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        beta: float = 0.9,
        beta_max: float = 0.965,
        anneal_steps: int = 1000,
        warmup_steps: int = 100,
        warm_start_steps: int | None = None,
        r: float = 0.0,
        weight_power: float = 2.0,
        norm_beta: float = 0.9,
        loss_floor: float = 0.0,
        max_step: float | None = None,
        foreach: bool = True,
        average_loss: bool = True,
        process_group: Any = None,
    ) -> None:
        _check_positive("lr", lr, allow_zero=True)
        _check_positive("eps", eps)
        _check_positive("weight_decay", weight_decay, allow_zero=True)
        for name, b in (("betas[0]", betas[0]), ("betas[1]", betas[1]), ("norm_beta", norm_beta)):
            _check_unit(name, b)
        _check_unit("beta", beta)
        _check_unit("beta_max", beta_max)
        for name, n in (("anneal_steps", anneal_steps), ("warmup_steps", warmup_steps)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidInputError(f"{name} must be a whole number >= 0, but got {n!r}.")
        start = warmup_steps if warm_start_steps is None else warm_start_steps
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidInputError(
                f"warm_start_steps must be a whole number >= 0, but got {warm_start_steps!r}."
            )
        _check_positive("r", r, allow_zero=True)
        _check_positive("weight_power", weight_power, allow_zero=True)
        if max_step is not None:
            _check_positive("max_step", max_step)
        if not math.isfinite(loss_floor):
            raise InvalidInputError(f"loss_floor must be a finite number, but got {loss_floor!r}.")
        defaults = {
            "lr": float(lr),
            "betas": (float(betas[0]), float(betas[1])),
            "eps": float(eps),
            "weight_decay": float(weight_decay),
            "train_mode": False,
        }
        super().__init__(params, defaults)
        self.hyper = {
            "beta": float(beta),
            "beta_max": float(beta_max),
            "anneal_steps": anneal_steps,
            "warmup_steps": warmup_steps,
            "warm_start_steps": start,
            "r": float(r),
            "weight_power": float(weight_power),
            "norm_beta": float(norm_beta),
            "loss_floor": float(loss_floor),
            "max_step": math.inf if max_step is None else float(max_step),
        }
        self.foreach = bool(foreach)
        self.average_loss = bool(average_loss)
        self.process_group = process_group
        # optimizer-wide state (the Polyak step is one number for all params): saved in
        # state_dict() beside the per-parameter state, so a resume continues exactly
        self.global_state: dict[str, float] = {
            "step": 0,
            "norm_avg": 0.0,
            "alpha_max": 0.0,
            "weight_sum": 0.0,
            "beta": float(beta),
            "scale": 1.0,  # the fast path's d = scale * D (see _sfplus_math)
        }
        self._metrics: dict[str, float] = {}

    # --- modes ---------------------------------------------------------------------------------
    def train(self) -> None:
        """Put ``y`` (where gradients are taken) in the model's parameters."""
        if self.param_groups[0]["train_mode"]:
            return
        beta, scale = self.global_state["beta"], self.global_state["scale"]
        with torch.no_grad():
            for p, st in self._with_state():
                if "x" in st:
                    # the same kernel as the step's, so a resume from eval mode is bit-exact
                    p.copy_(st["x"]).lerp_(st["z"], 1 - beta)
                elif "y" in st:
                    p.copy_(st.pop("y"))  # y as it was, bit for bit (a resume is exact)
                else:
                    p.add_(st["d"], alpha=(1 - beta) * scale)
        for group in self.param_groups:
            group["train_mode"] = True

    def eval(self) -> None:
        """Put ``x`` (the average: evaluate and save it) in the model's parameters."""
        if not self.param_groups[0]["train_mode"]:
            return
        beta, scale = self.global_state["beta"], self.global_state["scale"]
        with torch.no_grad():
            for p, st in self._with_state():
                if "x" in st:
                    p.copy_(st["x"])
                else:
                    # the fast path keeps y, not x: y is set aside until train() (and saved
                    # with the state, so a checkpoint taken in eval mode resumes exactly)
                    st["y"] = p.detach().clone()
                    p.add_(st["d"], alpha=-(1 - beta) * scale)
        for group in self.param_groups:
            group["train_mode"] = False

    def iterates(self, p: Any) -> dict[str, Any]:
        """``x``, ``y`` and ``z`` of one parameter, as new tensors, whichever path and mode.

        The fast path stores neither ``x`` nor ``z``; this rebuilds them (for inspection and
        tests; the step never needs it). Empty before the parameter's first step.
        """
        st = self.state.get(p)
        if not st:
            return {}
        beta, scale = self.global_state["beta"], self.global_state["scale"]
        with torch.no_grad():
            if "x" in st:
                y = st["x"].lerp(st["z"], 1 - beta)
                return {"x": st["x"].clone(), "y": y, "z": st["z"].clone()}
            d = st["d"] * scale
            y = st["y"].clone() if "y" in st else p.detach().clone()
            x = y - (1 - beta) * d
            return {"x": x, "y": y, "z": x + d}

    def _with_state(self) -> list[tuple[Any, dict[str, Any]]]:
        groups = self.param_groups
        return [(p, self.state[p]) for g in groups for p in g["params"] if p in self.state]

    # --- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], Any] | None = None, *, loss: Any = None
    ) -> Any:
        """One ScheduleFree+ step; needs this step's loss (``loss=`` or a closure).

        Returns the loss (the closure's, or the one given).
        """
        if closure is not None:
            if loss is not None:
                raise InvalidInputError(
                    "Pass the loss either as closure= or as loss=, not both: the step size is "
                    "computed from one loss."
                )
            with torch.enable_grad():
                loss = closure()
        if loss is None:
            raise InvalidInputError(
                "ScheduleFreePlus needs this step's loss for its Polyak step size: call "
                "optimizer.step(loss=loss) after loss.backward(), or pass a closure that "
                "computes the loss and its gradients."
            )
        if not self.param_groups[0]["train_mode"]:
            raise InvalidInputError(
                "ScheduleFreePlus was not in train mode when step() was called. Call "
                "optimizer.train() before training steps and optimizer.eval() before "
                "evaluating or saving."
            )
        value = self._mean_loss(loss)
        if not math.isfinite(value):
            raise InvalidInputError(
                f"The loss must be a finite number, but got {value!r}; nothing was updated. "
                "Skip this batch (or lower lr) and call step() with the next finite loss."
            )
        groups = []
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            for p in ps:
                if p.grad.is_sparse:
                    raise InvalidInputError(
                        "ScheduleFreePlus does not support sparse gradients; use a dense "
                        "embedding (sparse=False)."
                    )
                if p not in self.state:
                    self.state[p] = self._new_state(p)
            groups.append((group, ps))
        lists = [(group, ps, self._lists(ps)) for group, ps in groups]
        dots: list[Any] = []
        l1s: list[Any] = []
        for _, ps, (grads, zs, xs, _m, _v) in lists:
            if ps:
                d, a = (
                    sfm.sums_foreach(torch, grads, zs)
                    if self.foreach
                    else sfm.sums_plain(torch, grads, zs, xs)
                )
                dots += d
                l1s += a
        # note: a host sync, the one per step (the loss was read above, in the same breath)
        dot, l1 = sfm.totals(torch, dots, l1s)
        scale = self.global_state["scale"] if self.foreach else 1.0
        beta_prev = self.global_state["beta"]
        step_scalars = self._advance(value, dot * scale, l1)
        for group, ps, (grads, zs, xs, ms, vs) in lists:
            if not ps:
                continue
            beta1, beta2 = group["betas"]
            alpha = step_scalars["alpha"] * group["lr"]
            t = int(self.global_state["step"])
            scalars = sfm.Scalars(
                alpha=alpha,
                decay=alpha * alpha * group["weight_decay"],
                beta1=beta1,
                beta2=beta2,
                bias1=1 - beta1**t,
                bias2=1 - beta2**t,
                eps=group["eps"],
                c=step_scalars["c"],
                beta=step_scalars["beta"],
                beta_prev=beta_prev,
                scale=scale,
            )
            if self.foreach:
                sfm.update_foreach(torch, ps, grads, zs, ms, vs, scalars)
            else:
                sfm.update_plain(torch, ps, grads, zs, xs, ms, vs, scalars)
        if self.foreach:
            stepped = {id(p) for _, ps, _ in lists for p in ps}
            self._move_scale(step_scalars["c"], stepped, beta_prev - step_scalars["beta"])
        return loss

    def _new_state(self, p: Any) -> dict[str, Any]:
        moments = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        if self.foreach:
            return {"d": torch.zeros_like(p), **moments}  # z = x = y: d = 0
        return {"z": p.detach().clone(), "x": p.detach().clone(), **moments}

    def _move_scale(self, c: float, stepped: set[int], beta_change: float) -> None:
        """d' = (1 - c) d is a change of the scalar only; c = 1 zeroed the buffers (x = z).

        A parameter without a gradient this step keeps its x and z (as in the reference): its
        buffer takes the inverse factor, and its y follows the new beta.
        """
        gs = self.global_state
        ds = [st["d"] for p, st in self._with_state()]
        idle = [(p, st["d"]) for p, st in self._with_state() if id(p) not in stepped]
        if idle:
            ps, idle_ds = [p for p, _ in idle], [d for _, d in idle]
            torch._foreach_add_(ps, idle_ds, alpha=beta_change * gs["scale"])
            if c < 1:
                torch._foreach_div_(idle_ds, 1 - c)
        gs["scale"] = 1.0 if c >= 1 else gs["scale"] * (1 - c)
        if gs["scale"] < 1e-3:
            # keep D's magnitude near d's (a pass over memory each time s falls 1000-fold)
            torch._foreach_mul_(ds, gs["scale"])
            gs["scale"] = 1.0

    def _lists(self, ps: list[Any]) -> tuple[list[Any], ...]:
        """Gradients, then ``d`` (fast) or ``z`` and ``x`` (reference), then the moments."""
        states = [self.state[p] for p in ps]
        first, second = ("d", "d") if self.foreach else ("z", "x")
        return (
            [p.grad for p in ps],
            [s[first] for s in states],
            [s[second] for s in states],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
        )

    def _mean_loss(self, loss: Any) -> float:
        """The loss as a float, averaged over the ranks under torch.distributed."""
        dist = torch.distributed
        distributed = (
            self.average_loss
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.process_group) > 1
        )
        if not distributed:
            return _as_float(loss)
        if isinstance(loss, torch.Tensor):
            buf = loss.detach().reshape(()).to(torch.float64).clone()
        else:
            device = self.param_groups[0]["params"][0].device
            buf = torch.tensor(_as_float(loss), dtype=torch.float64, device=device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=self.process_group)
        return float(buf) / dist.get_world_size(self.process_group)

    def _advance(self, loss: float, dot: float, l1: float) -> dict[str, float]:
        """Move the optimizer-wide scalars one step; the step's alpha, c and beta."""
        h, gs = self.hyper, self.global_state
        gs["step"] += 1
        t = int(gs["step"])
        anneal = 1.0 if h["anneal_steps"] == 0 else min(1.0, t / h["anneal_steps"])
        beta = h["beta"] + (h["beta_max"] - h["beta"]) * anneal
        warmup = 1.0 if h["warmup_steps"] == 0 else min(1.0, t / h["warmup_steps"])
        nb = h["norm_beta"]
        gs["norm_avg"] = nb * gs["norm_avg"] + (1 - nb) * l1 * math.sqrt(math.pi / 2)
        norm = gs["norm_avg"] / (1 - nb**t)
        inner = beta * dot
        gap = max(0.0, loss - h["loss_floor"] + inner)
        # SPS_max (Loizou et al. 2021): the Polyak step, at most max_step (times the warmup)
        alpha = warmup * min(gap / norm, h["max_step"]) if norm > 0 else 0.0
        gs["alpha_max"] = max(gs["alpha_max"], alpha)
        since = t - h["warm_start_steps"]
        if since <= 0:
            c = 1.0  # warm start: x follows z
        else:
            w = float(since) ** h["r"] * gs["alpha_max"] ** h["weight_power"]
            gs["weight_sum"] += w
            c = w / gs["weight_sum"] if gs["weight_sum"] > 0 else 1.0
        gs["beta"] = beta
        self._metrics = {
            "sfp/step_size": alpha,
            "sfp/loss": loss,
            "sfp/inner": inner,
            "sfp/grad_l1": norm,
            "sfp/beta": beta,
            "sfp/avg_weight": c,
            "sfp/warmup": warmup,
        }
        return {"alpha": alpha, "c": c, "beta": beta}

    # --- metrics and state ---------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """The last step's scalars, for ``run.log(opt.metrics(), step=step)``.

        ``sfp/step_size`` (the Polyak step before the group's lr multiplier), ``sfp/loss`` (the
        loss it used, averaged over ranks), ``sfp/inner`` (``beta <g, z - x>``),
        ``sfp/grad_l1`` (the averaged ``||g||_1 sqrt(pi/2)``), ``sfp/beta``, ``sfp/avg_weight``
        (the weight of ``z`` in the new ``x``), ``sfp/warmup``. Empty before the first step.
        """
        return dict(self._metrics)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, with the optimizer-wide scalars under ``schedule_free_plus``."""
        sd = super().state_dict()
        sd[_GLOBAL_KEY] = dict(self.global_state)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the model's parameters must be loaded as saved."""
        if _GLOBAL_KEY not in state_dict:
            raise InvalidInputError(
                f"This state_dict has no {_GLOBAL_KEY!r} entry, so it is not ScheduleFreePlus "
                "state (was it saved from another optimizer?). Load the one this optimizer saved."
            )
        sd = dict(state_dict)
        self.global_state = {k: float(v) for k, v in sd.pop(_GLOBAL_KEY).items()}
        self.global_state.setdefault("scale", 1.0)  # saved before the fast path kept d
        super().load_state_dict(sd)
        self._convert_layout()

    @torch.no_grad()
    def _convert_layout(self) -> None:
        """Rebuild state saved by the other path (reference: z, x; fast: d, and y in eval
        mode) in this one's buffers, so either resumes the other's state (to rounding)."""
        beta, scale = self.global_state["beta"], self.global_state["scale"]
        train = bool(self.param_groups[0]["train_mode"])
        for p, st in self._with_state():
            if self.foreach and "x" in st:
                x, z = st.pop("x"), st.pop("z")
                st["d"] = (z - x) / scale
                if not train:
                    st["y"] = x.lerp(z, 1 - beta)  # the model holds x; y waits for train()
            elif not self.foreach and "d" in st:
                d = st.pop("d") * scale
                y = st.pop("y") if "y" in st else p.detach().clone()
                st["x"] = y - (1 - beta) * d
                st["z"] = st["x"] + d


def _as_float(loss: Any) -> float:
    try:
        # note: .item()/float() on a device tensor waits for the device (the step needs it)
        return float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InvalidInputError(
            f"loss must be a number or a one-element tensor, but got {type(loss).__name__} "
            f"{loss!r:.60}."
        ) from err


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, but got {value!r}.")


def _check_unit(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0 <= value < 1):
        raise InvalidInputError(f"{name} must be in [0, 1), but got {value!r}.")
