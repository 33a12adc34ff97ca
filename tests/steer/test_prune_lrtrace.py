"""A trial's future LR inferred from its logged LR and its completed peers', and the rule."""

from __future__ import annotations

import numpy as np
import pytest

from runcast.curve import Curve
from runcast.errors import InvalidInputError
from runcast.schedules import Schedule
from runcast.steer import PruneRule, analog_forecast
from runcast.steer._lrtrace import lr_continuations, per_step, recorded_schedule
from runcast.steer._prune import DEFAULT_THRESHOLD_LOGGED_LR, DEFAULT_THRESHOLD_NO_SCHEDULE

T = 100
S = np.arange(5, T + 1, 5)  # report steps
CONST = (S, np.full(S.size, 0.1))
WSD = (S, np.where(S < 80, 0.1, 0.1 * (T - S) / 20))  # constant, then linear to 0 from 80%
COSINE = (S, 0.05 * (1 + np.cos(np.pi * S / T)))


def test_a_constant_lr_so_far_may_stay_constant_or_decay_as_a_peer_did() -> None:
    own = (S[S <= 50], np.full(10, 0.3))  # constant so far, 3x the peers' LR
    futures = lr_continuations(own, [CONST, WSD, CONST, COSINE, None], T + 1)
    # two futures: constant (2 peers) and the WSD decay (1); the cosine peer is in another phase
    assert [n for _, n in futures] == [2, 1]
    const, wsd = (f.array(T + 1) for f, _ in futures)
    assert np.allclose(const, 0.3)
    assert wsd[:80] == pytest.approx(np.full(80, 0.3))  # scaled to the trial's own peak
    assert wsd[90] == pytest.approx(0.3 * 0.5) and wsd[T] == pytest.approx(0.0)


def test_a_decaying_lr_so_far_matches_only_the_peers_decaying_alike() -> None:
    own = (COSINE[0][:8], 2.0 * COSINE[1][:8])
    futures = lr_continuations(own, [CONST, WSD, COSINE], T + 1)
    assert [n for _, n in futures] == [1]
    assert futures[0][0].array(T + 1)[70] == pytest.approx(2.0 * 0.05 * (1 + np.cos(0.7 * np.pi)))
    # no completed peer in this phase (or none logged its LR): nothing is inferred
    assert lr_continuations(own, [CONST, WSD], T + 1) == []
    assert lr_continuations(own, [None], T + 1) == []


def test_logged_lrs_as_per_step_arrays() -> None:
    # NaN (a step without a logged LR) is skipped; before the first and after the last
    # logged step the LR is held
    assert per_step(([2, 4, 6], [1.0, float("nan"), 0.0]), 8).tolist() == [
        1.0,
        1.0,
        1.0,
        0.75,
        0.5,
        0.25,
        0.0,
        0.0,
    ]
    assert per_step(([1], [float("nan")]), 4) is None
    sched = recorded_schedule(WSD, T + 1)
    assert sched is not None and sched.array(T + 1)[90] == pytest.approx(0.05)


def own_const(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return steps, np.full(steps.size, 0.2)


def _sweep() -> tuple[list[Curve], list[float], list[tuple[np.ndarray, np.ndarray]]]:
    # four constant-LR trials that plateau, and one WSD trial that plateaus higher and then
    # drops in its decay to the best final value
    def plateau(level: float) -> np.ndarray:
        return level + (2.3 - level) * np.exp(-S / 10)

    curves = [Curve(S, plateau(v)) for v in (0.58, 0.6, 0.62, 0.64)]
    curves.append(Curve(S, np.where(S < 80, plateau(0.9), 0.9 - 0.6 * (S - 80) / 20)))
    lrs = [CONST] * 4 + [WSD]
    return curves, [float(c.value[-1]) for c in curves], lrs  # type: ignore[misc]


def test_the_rule_weighs_each_future_lr_by_the_peers_that_ran_it() -> None:
    peers, finals, lrs = _sweep()
    steps = S[S <= 50]
    values = 0.85 + (2.3 - 0.85) * np.exp(-steps / 10)
    own = (steps, np.full(steps.size, 0.2))
    rule = PruneRule(top_k=1)
    d = rule.decide(
        steps,
        values,
        total_steps=T,
        best=None,
        n_completed=5,
        peers=peers,
        finals=finals,
        lr=own,
        peer_lrs=lrs,
    )
    # the value to beat is the best final (top_k 1), the threshold the one for logged LRs
    assert d.numbers["best"] == pytest.approx(0.3)
    assert d.numbers["threshold"] == DEFAULT_THRESHOLD_LOGGED_LR
    # P(beat) is the mixture: 4 peers ran a constant LR, 1 the decay
    futures = lr_continuations(own, lrs, T + 1)
    scheds = [recorded_schedule(tr, T + 1) for tr in lrs]
    p = [
        analog_forecast(
            Curve(steps, values),
            T,
            [(c, True) for c in peers],
            schedule=f,
            donor_schedules=scheds,
        ).prob_below(0.3)
        for f, _ in futures
    ]
    assert [n for _, n in futures] == [4, 1]
    assert d.numbers["p_beat"] == pytest.approx((4 * p[0] + p[1]) / 5)
    assert p[1] > p[0]  # under the decay the trial may still win


def test_without_a_matching_peer_the_rule_decides_as_without_an_lr() -> None:
    peers, finals, _ = _sweep()
    steps = S[S <= 50]
    values = 0.85 + (2.3 - 0.85) * np.exp(-steps / 10)
    kw = {"total_steps": T, "best": None, "n_completed": 5, "peers": peers, "finals": finals}
    blind = PruneRule().decide(steps, values, **kw)  # type: ignore[arg-type]
    cosine = (steps, 0.1 * (1 + np.cos(np.pi * steps / T)))  # no peer decays this way
    logged = PruneRule().decide(steps, values, lr=cosine, peer_lrs=[CONST] * 4 + [WSD], **kw)  # type: ignore[arg-type]
    assert logged.numbers == blind.numbers
    assert blind.numbers["threshold"] == DEFAULT_THRESHOLD_NO_SCHEDULE
    assert blind.numbers["best"] == sorted(finals)[1]  # top_k 2 without a schedule
    # a given schedule wins over a logged LR
    given = Schedule.from_spec({"kind": "constant", "peak": 0.2})
    with_lr = PruneRule().decide(
        steps, values, schedule=given, lr=own_const(steps), peer_lrs=[CONST] * 4 + [WSD], **kw
    )  # type: ignore[arg-type]
    assert with_lr.numbers == PruneRule().decide(steps, values, schedule=given, **kw).numbers  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="one logged LR"):
        PruneRule().decide(steps, values, lr=cosine, peer_lrs=[CONST], **kw)  # type: ignore[arg-type]
