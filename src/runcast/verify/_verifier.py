"""verify(): check a proof of training against its training script.

The checks, in order (a later one runs only on a proof whose files are intact):

- ``files``: the manifest parses and every checkpoint's bytes match its SHA-256;
- ``commitment``: the data's Merkle root, the seed commitment, the config, the code and the
  environment match what was committed, and the commitment's digest follows from them;
- ``chain``: checkpoints every k steps up to the claimed last step, and the hash chain of the
  batches, recomputed from the committed order, matches at every checkpoint;
- ``init``: the first checkpoint is the model the committed seed builds, with a fresh optimizer;
- ``replay``: a share of the segments, retrained from their first checkpoint on the committed
  batches: a third those with the largest weight updates (Proof-of-Learning, Jia et al. 2021),
  a third the most suspicious (frozen optimizer state, interpolated weights, held-out losses
  that fell more than the training records': see :mod:`runcast.verify._scan`), the rest drawn
  at random by the verifier.
  Replays run on the training's recorded thread count (on the same platform, usually the
  same arithmetic: exact). Each must land on the recorded next checkpoint within a tolerance
  relative to the segment's update: a multiple of the rounding noise (the deciding segment
  replayed again in float64), within [``replay_tolerance``, ``replay_tolerance_cap``]. A model
  as chaotic as bench/README.md's transformer scatters further than the cap when a replay
  cannot repeat the training's arithmetic: there only an exact replay passes;
- ``memorisation``: the segments' records against the held-out tail right after each segment
  (Choi et al. 2023). It fails when the tail has significantly the lower losses (the held-out
  data was trained on), and, with ``memo_required``, when the segments' data shows no
  significant memorisation. Small models that generalise (the digits families in
  bench/README.md) memorise too little for the second rule, so it is off by default.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runcast.errors import InvalidInputError
from runcast.verify._checkpoint import load_checkpoint
from runcast.verify._commit import DataOrder, canonical, derive_int
from runcast.verify._hashing import chain_link, dataset_root, file_hash, segment_link, sha256
from runcast.verify._manifest import Proof, ProofFormatError, load_proof
from runcast.verify._report import Check, VerifyReport
from runcast.verify._scan import ScanResult, flat_state, scan, state_distance
from runcast.verify._task import Task, code_hash, load_task


@dataclass(frozen=True)
class VerifyConfig:
    """The verifier's settings (the defaults are calibrated: bench/README.md).

    Args:
        replay_share: share of the segments replayed (at least ``replay_min``): a third
            the largest updates, a third the most suspicious (:mod:`runcast.verify._scan`),
            the rest drawn at random.
        replay_min: the fewest segments replayed (all of them, if the run has fewer).
        replay_tolerance: the smallest tolerance on ``|replayed - recorded| / |recorded -
            start|``; the tolerance used is ``noise_factor`` times the measured rounding
            noise (the deciding segment replayed again in float64: its float32 replay's
            distance from that, relative to its update), within
            ``[replay_tolerance, replay_tolerance_cap]``.
        noise_factor: how many times the measured rounding noise an honest replay may be off
            (calibrated on honest runs with other thread counts and resumed runs, judged
            leave-one-family-out: bench/README.md).
        measure_noise: measure the rounding noise even when no replayed distance lies between
            ``replay_tolerance`` and ``replay_tolerance_cap`` (where it cannot change the
            verdict, so by default it is not measured: it costs a float64 replay).
        replay_tolerance_cap: the largest tolerance, however chaotic the model (a loose
            tolerance is what spoofs exploit, Fang et al. 2023).
        init_tolerance: largest absolute weight difference accepted for the initial model.
        memo_records: each segment's last records, scored at the checkpoint after it.
        memo_tail: records of the held-out tail they are compared with (a fresh sample for
            each segment).
        drop_records: records of the tail, and as many training records, whose losses are
            followed across every checkpoint (the ``tail`` signal: a segment that trained on
            the tail; :mod:`runcast.verify._scan`).
        memo_alpha: the significance level of the memorisation test's combined p-values.
        memo_required: fail a run whose data shows no significant memorisation (for models
            large enough to memorise, as in Choi et al. 2023).
        threads: the CPU threads a replay runs on; None: the count the training recorded
            (at most this machine's CPUs), so that on the same platform a replay repeats the
            training's reduction order and lands on the recorded weights exactly.
        seed: the verifier's own randomness (None: fresh); not the prover's to choose.
    """

    replay_share: float = 0.03
    replay_min: int = 4
    replay_tolerance: float = 1e-3
    noise_factor: float = 10.0
    measure_noise: bool = False
    replay_tolerance_cap: float = 0.05
    init_tolerance: float = 1e-6
    memo_records: int = 32
    memo_tail: int = 64
    drop_records: int = 192
    memo_alpha: float = 1e-3
    memo_required: bool = False
    threads: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.replay_share <= 1:
            raise InvalidInputError(f"replay_share must be in (0, 1], got {self.replay_share!r}.")
        if min(self.memo_records, self.memo_tail, self.drop_records) < 2:
            raise InvalidInputError("memo_records, memo_tail and drop_records must be >= 2.")


def _not_run(names: list[str], why: str) -> list[Check]:
    return [Check(n, False, f"not run: {why}") for n in names]


_LATER = ["commitment", "chain", "init", "replay", "memorisation"]


def verify(
    proof: str | Path,
    task: Task | None = None,
    *,
    script: str | Path | None = None,
    config: VerifyConfig | None = None,
) -> VerifyReport:
    """Verify the proof in folder ``proof`` against ``task`` (or the training ``script``).

    A malformed or tampered proof is a failed check in the report, never an exception.

    Example:
        >>> import tempfile, torch
        >>> from runcast.verify import Task, train_with_proof, verify
        >>> data = torch.utils.data.TensorDataset(torch.randn(200, 3), torch.randn(200, 1))
        >>> task = Task(model=lambda: torch.nn.Linear(3, 1),
        ...             optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.05),
        ...             dataset=data, loss=lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(dim=1))
        >>> folder = train_with_proof(task, tempfile.mkdtemp(), steps=40, batch_size=8,
        ...                           checkpoint_every=10)
        >>> report = verify(folder, task)
        >>> [c.name for c in report.checks if c.passed][:4]
        ['files', 'commitment', 'chain', 'init']
    """
    cfg = config or VerifyConfig()
    t0 = time.perf_counter()
    try:
        p = load_proof(proof)
    except ProofFormatError as err:
        return VerifyReport([Check("files", False, str(err)), *_not_run(_LATER, "no proof")])
    if task is None:
        if script is None:
            raise InvalidInputError("verify() needs the training task or its script=.")
        task = load_task(script, p.config)
    # the cost share compares like with like: training's clock starts with the model and
    # optimizer built (and their libraries imported), so the verifier's does too
    task.optimizer(task.model())
    t0 = time.perf_counter()
    checks = [_files(p)]
    work = math.nan
    if not checks[0].passed:
        checks += _not_run(_LATER, "the proof's files are not intact")
        return VerifyReport(checks, time.perf_counter() - t0, p.training_seconds)
    checks.append(_commitment(p, task, script))
    order = DataOrder(
        p.commitment.seed,
        n_records=p.commitment.n_records,
        batch_size=p.batch_size,
        holdout=p.holdout,
    )
    checks.append(_chain(p, order))
    try:
        states = _States(p, task)
        checks.append(_init(p, task, states, cfg))
        rng = np.random.default_rng(cfg.seed if cfg.seed is not None else secrets.randbits(63))
        steps = [e["step"] for e in p.checkpoints]
        found = scan(
            task,
            states.weights,
            steps,
            order,
            rng,
            cfg.memo_records,
            cfg.memo_tail,
            cfg.drop_records,
        )
        checks.append(_replay(p, task, order, states, found, rng, cfg))
        # the work in training steps: a replayed step is one, a forward pass over one batch's
        # worth of records about a third of one (the backward pass costs two forwards)
        work = (
            checks[-1].numbers["steps_replayed"] + found.forward_records / (3 * p.batch_size)
        ) / p.steps
        checks.append(_memorisation(p, found, cfg))
    except ProofFormatError as err:
        done = {c.name for c in checks}
        checks += [Check(n, False, str(err)) for n in _LATER if n not in done]
    except Exception as err:  # the script's own code failing on the proof's states
        done = {c.name for c in checks}
        checks += [
            Check(n, False, f"not run: {type(err).__name__}: {err}")
            for n in _LATER
            if n not in done
        ]
    return VerifyReport(checks, time.perf_counter() - t0, p.training_seconds, work)


def _files(p: Proof) -> Check:
    bad: list[str] = []
    for e in p.checkpoints:
        f = p.folder / e["file"]
        if not f.is_file():
            bad.append(f"{e['file']} is missing")
        elif file_hash([f.read_bytes()]) != e["sha256"]:
            bad.append(f"{e['file']} does not match its SHA-256")
    if bad:
        return Check(
            "files",
            False,
            "; ".join(bad[:3]) + (" ..." if len(bad) > 3 else ""),
            {"bad_files": len(bad)},
        )
    return Check(
        "files",
        True,
        f"manifest and {len(p.checkpoints)} checkpoints intact",
        {"checkpoints": len(p.checkpoints), "run": p.run},
    )


def _commitment(p: Proof, task: Task, script: str | Path | None) -> Check:
    c = p.commitment
    root, n = dataset_root(task.dataset)
    problems = []
    if root.hex() != c.data_root or n != c.n_records:
        problems.append(
            f"the script's {n} records have Merkle root {root.hex()[:12]}..., the "
            f"commitment {c.n_records} records with root {c.data_root[:12]}..."
        )
    if sha256(b"runcast-seed" + bytes.fromhex(c.nonce)).hex() != c.seed_commitment:
        problems.append("the revealed random value does not open the seed commitment")
    if sha256(canonical(p.config)).hex() != c.config_sha256:
        problems.append("the manifest's config is not the committed one")
    if sha256(canonical(p.environment)).hex() != c.environment_sha256:
        problems.append("the manifest's environment is not the committed one")
    if c.digest.hex() != p.commitment_digest:
        problems.append("the commitment digest does not follow from its fields")
    if script is not None and c.code_sha256 and code_hash(script) != c.code_sha256:
        problems.append(f"the script {str(script)!r} is not the committed code")
    numbers = {
        "records": n,
        "data_root": root.hex(),
        "code_checked": bool(script is not None and c.code_sha256),
    }
    if problems:
        return Check("commitment", False, "; ".join(problems), numbers)
    return Check(
        "commitment", True, f"{n} records, seed, config, code and environment match", numbers
    )


def _chain(p: Proof, order: DataOrder) -> Check:
    expected = [*range(0, p.steps, p.checkpoint_every), p.steps]
    steps = [e["step"] for e in p.checkpoints]
    if steps != expected:
        return Check(
            "chain",
            False,
            f"checkpoints at steps {steps[:6]}..., expected every "
            f"{p.checkpoint_every} steps from 0 to {p.steps}",
            {"claimed_steps": p.steps},
        )
    link = p.commitment.digest
    want = {e["step"]: e["chain"] for e in p.checkpoints}
    if want[0] != link.hex():
        return Check("chain", False, "the chain does not start at the commitment")
    batches: list[np.ndarray] = []
    for step in range(p.steps):
        if p.version >= 3:  # one link per segment
            batches.append(order.batch(step))
            if step + 1 in want:
                link = segment_link(link, step + 1 - len(batches), batches)
                batches = []
        else:  # formats 1 and 2: one link per step
            link = chain_link(link, step, order.batch(step))
        if step + 1 in want and want[step + 1] != link.hex():
            return Check(
                "chain",
                False,
                f"the batches recorded up to step {step + 1} are not the committed order",
                {"first_bad_step": step + 1},
            )
    return Check("chain", True, f"{p.steps} steps in the committed order", {"steps": p.steps})


class _States:
    """Checkpoints by index: the raw states (the last two kept) and models loaded with one."""

    def __init__(self, p: Proof, task: Task) -> None:
        self.p = p
        self.task = task
        self._cache: dict[int, dict[str, Any]] = {}
        self._model: Any = None

    def __len__(self) -> int:
        return len(self.p.checkpoints)

    def get(self, i: int) -> dict[str, Any]:

        if i not in self._cache:
            name = self.p.checkpoints[i]["file"]
            try:
                state = load_checkpoint(self.p.folder / name)
                if not isinstance(state, dict) or not {"model", "optimizer"} <= set(state):
                    raise ValueError("it holds no model and optimizer state")
                if not isinstance(state["optimizer"], dict):
                    raise ValueError("its optimizer state is not a state dict")
            except Exception as err:  # a pickle that torch refuses: a bad proof, not a crash
                raise ProofFormatError(f"checkpoint {name} cannot be read: {err}") from err
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[i] = state
        return self._cache[i]

    def weights(self, i: int) -> tuple[Any, dict[str, Any]]:
        """A model holding checkpoint ``i``'s weights (one model, reused), and its optimizer
        state dict (not loaded into an optimizer: the scan only compares it)."""
        if self._model is None:
            self._model = self.task.model()
        state = self.get(i)
        try:
            self._model.load_state_dict(state["model"])
        except Exception as err:  # shapes or names the script's model does not have
            name = self.p.checkpoints[i]["file"]
            raise ProofFormatError(
                f"checkpoint {name} does not fit the script's model: {err}"
            ) from err
        return self._model, state["optimizer"]

    def load(self, i: int) -> tuple[Any, Any]:
        """A fresh model and optimizer holding checkpoint ``i``."""
        model = self.task.model()
        optimizer = self.task.optimizer(model)
        return _fill(model, optimizer, self.get(i), self.p.checkpoints[i]["file"])


def _fill(model: Any, optimizer: Any, state: dict[str, Any], name: str) -> tuple[Any, Any]:
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except Exception as err:  # shapes or names the script's model does not have
        raise ProofFormatError(f"checkpoint {name} does not fit the script's model: {err}") from err
    return model, optimizer


def _init(p: Proof, task: Task, states: _States, cfg: VerifyConfig) -> Check:
    import torch

    torch.manual_seed(p.commitment.init_seed)
    model = task.model()
    fresh = task.optimizer(model).state_dict()
    recorded = states.get(0)
    ours, theirs = flat_state(model.state_dict()), flat_state(recorded["model"])
    if ours.shape != theirs.shape:
        return Check("init", False, "the first checkpoint's weights have another shape")
    with np.errstate(invalid="ignore"):  # inf == inf (a mask buffer) counts as no difference
        diff = (
            float(np.max(np.abs(np.where(ours == theirs, 0.0, ours - theirs))))
            if len(ours)
            else 0.0
        )
    if not diff <= cfg.init_tolerance:
        return Check(
            "init",
            False,
            f"the first checkpoint is not the model the committed seed "
            f"builds (largest difference {diff:.3g})",
            {"max_abs_diff": diff},
        )
    if recorded["optimizer"].get("state"):
        return Check("init", False, "the first checkpoint's optimizer has already stepped")
    if len(fresh.get("param_groups", [])) != len(recorded["optimizer"].get("param_groups", [])):
        return Check("init", False, "the first checkpoint's optimizer is not the script's")
    return Check(
        "init", True, "the initial weights follow from the commitment", {"max_abs_diff": diff}
    )


def _choose(found: ScanResult, rng: np.random.Generator, cfg: VerifyConfig) -> list[int]:
    n_seg = len(found.norms)
    q = min(n_seg, max(cfg.replay_min, round(cfg.replay_share * n_seg)))
    chosen: list[int] = []
    # about a third each: the largest updates, the most suspicious (the second share when q
    # does not divide by 3: the signals point at a forged segment more often than the
    # largest update does), and random ones (what catches a forgery no signal sees, with
    # probability about q/3 of n_seg per run)
    large = max(1, q // 3)
    for ranking, k in (
        (np.argsort(-found.norms, kind="stable"), large),
        (np.argsort(-found.suspicion, kind="stable"), math.ceil((q - large) / 2)),
    ):
        chosen += [int(j) for j in ranking if int(j) not in chosen][:k]
    rest = [j for j in range(n_seg) if j not in chosen]
    if rest and len(chosen) < q:
        chosen += [
            int(j) for j in rng.choice(rest, size=min(q - len(chosen), len(rest)), replace=False)
        ]
    return sorted(chosen[:q])


def _replay_threads(p: Proof, cfg: VerifyConfig) -> int:
    """The thread count replays run on: the configured one, else the training's."""
    import os

    import torch

    if cfg.threads is not None:
        return max(1, cfg.threads)
    recorded = str(p.environment.get("threads", ""))
    if not recorded.isdigit() or int(recorded) < 1:
        return int(torch.get_num_threads())
    return min(int(recorded), os.cpu_count() or 1)


def _segment(
    p: Proof, task: Task, order: DataOrder, states: _States, j: int, double: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Retrain segment ``j`` from its first checkpoint: (start weights, replayed weights).

    ``double`` retrains in float64 (weights, optimizer state, the batches' floats and every
    tensor the script makes): near exact arithmetic, so the float32 replay's distance from it
    is this segment's rounding error as the training dynamics amplify it. Another reduction
    order (another thread count, another machine) changes the rounding, not its scale: how far
    an honest replay may land is a multiple of this.
    """
    import torch

    if double:
        state = states.get(j)
        model = task.model()
        model.load_state_dict(state["model"])
        model.double()
        optimizer = task.optimizer(model)
        optimizer.load_state_dict(state["optimizer"])  # cast to the parameters' float64
    else:
        model, optimizer = states.load(j)
    before = flat_state(model.state_dict())
    default = torch.get_default_dtype()
    if double:
        torch.set_default_dtype(torch.float64)
    model.train()
    try:
        for step in range(p.checkpoints[j]["step"], p.checkpoints[j + 1]["step"]):
            if p.seed_each_step:
                torch.manual_seed(derive_int(p.commitment.seed, b"step%d" % step))
            batch = task.batch(order.batch(step))
            task.train_step(model, optimizer, _as_double(batch) if double else batch, step)
    finally:
        torch.set_default_dtype(default)
    return before, flat_state(model.state_dict())


def _as_double(batch: Any) -> Any:
    """The batch with its floating-point tensors in float64 (integers, as token ids, kept)."""
    if hasattr(batch, "is_floating_point"):
        return batch.double() if batch.is_floating_point() else batch
    if isinstance(batch, tuple | list):
        return type(batch)(_as_double(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _as_double(v) for k, v in batch.items()}
    return batch


def _replay(
    p: Proof,
    task: Task,
    order: DataOrder,
    states: _States,
    found: ScanResult,
    rng: np.random.Generator,
    cfg: VerifyConfig,
) -> Check:
    import torch

    chosen = _choose(found, rng, cfg)
    distances: dict[int, float] = {}
    replays: dict[int, np.ndarray] = {}
    updates: dict[int, float] = {}
    threads, ours = _replay_threads(p, cfg), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for j in chosen:
            before, got = _segment(p, task, order, states, j)
            want = flat_state(states.get(j + 1)["model"])
            update, miss = state_distance(want, before), state_distance(got, want)
            distances[j] = miss / update if update > 0 else (0.0 if miss == 0 else math.inf)
            replays[j], updates[j] = got, update
    finally:
        torch.set_num_threads(ours)
    # the tolerance is calibrated on this model: the honest replay noise (thread counts,
    # resumed runs, other machines) is rounding amplified by the training dynamics, measured
    # here by replaying again in float64 the segment that decides: the one that landed
    # farthest (how much rounding is amplified varies along a run)
    # farthest (how much rounding is amplified varies along a run). Within the floor every
    # distance passes and beyond the cap one fails, whatever the noise: it is measured only
    # when it can change the verdict (or when asked, to calibrate)
    j0 = max(chosen, key=lambda j: (distances[j], updates[j]))
    worst = max(distances.values()) if distances else math.inf
    noise, float64_steps = math.nan, 0
    if cfg.measure_noise or cfg.replay_tolerance < worst <= cfg.replay_tolerance_cap:
        float64_steps = p.checkpoints[j0 + 1]["step"] - p.checkpoints[j0]["step"]
        try:
            _, exact = _segment(p, task, order, states, j0, double=True)
            noise = state_distance(replays[j0], exact) / updates[j0] if updates[j0] > 0 else 0.0
        except ProofFormatError:
            raise
        except Exception:  # a script that cannot run in float64: no measure, the floor applies
            noise = 0.0
        if not math.isfinite(noise):
            noise = math.inf
    tolerance = min(
        cfg.replay_tolerance_cap,
        max(cfg.replay_tolerance, cfg.noise_factor * noise if noise == noise else 0.0),
    )
    worst = max(distances.values()) if distances else math.inf
    steps_replayed = sum(p.checkpoints[j + 1]["step"] - p.checkpoints[j]["step"] for j in chosen)
    numbers = {
        "segments": chosen,
        "threads": threads,
        "distances": {str(k): v for k, v in distances.items()},
        "largest_distance": worst,
        "rounding_noise": noise if noise == noise else None,  # None: not measured
        "tolerance": tolerance,
        # a float64 step costs about two float32 steps on a CPU
        "steps_replayed": steps_replayed + 2 * float64_steps,
        "update_norms": found.norms.tolist(),
        "suspicion": found.suspicion.tolist(),
        "signals": {k: v.tolist() for k, v in found.signals.items()},
    }
    bad = [j for j, d in distances.items() if not d <= tolerance]
    if bad:
        j = bad[0]
        return Check(
            "replay",
            False,
            f"segment {j} (steps {p.checkpoints[j]['step']}-"
            f"{p.checkpoints[j + 1]['step']}) replays to a model {distances[j]:.3g} of "
            f"its update away from the recorded one (tolerance "
            f"{tolerance:.3g})",
            numbers,
        )
    return Check(
        "replay",
        True,
        f"{len(chosen)} of {len(found.norms)} segments replayed within "
        f"{worst:.2g} of their update (tolerance {tolerance:.3g})",
        numbers,
    )


def _memorisation(p: Proof, found: ScanResult, cfg: VerifyConfig) -> Check:
    aucs = found.aucs
    numbers = {
        "auc": [round(float(a), 4) for a in aucs],
        "p_values": found.pvalues.tolist(),
        "mean_auc": float(aucs.mean()) if len(aucs) else math.nan,
        "combined_p_value": found.combined_p,
        "reverse_p_value": found.reverse_p,
        "alpha": cfg.memo_alpha,
        "records_scored": found.forward_records,
    }
    stats = f"mean AUC {numbers['mean_auc']:.3f}, combined p = {found.combined_p:.2g}"
    if found.reverse_p <= cfg.memo_alpha:
        return Check(
            "memorisation",
            False,
            f"the held-out tail has lower losses than the data "
            f"claimed as trained ({stats}; reverse p = {found.reverse_p:.2g}): it was "
            "trained on",
            numbers,
        )
    if cfg.memo_required and not found.combined_p <= cfg.memo_alpha:
        return Check(
            "memorisation",
            False,
            f"the committed data shows no sign of having been "
            f"trained on ({stats} > {cfg.memo_alpha:g})",
            numbers,
        )
    return Check(
        "memorisation", True, f"segments' data against the held-out tail: {stats}", numbers
    )
