"""Leave-one-family-out: nothing fitted or chosen on a family may judge that family."""

from __future__ import annotations

import dataclasses

import numpy as np

from runcast.forecast._eval import TAU_GRID, Record
from runcast.forecast._lofo import best_choice, lofo_calibration, lofo_choice, pick


def _rec(fam: str, i: int, method: str = "ensemble", need: float = 1.0, crps: float = 0.1,
         frac: float = 0.5, train: bool = False) -> Record:  # fmt: skip
    # coverage reaches its target at tau = need; CRPS flat in tau
    c80 = np.clip(TAU_GRID * 0.8 / need, 0, 1)
    c95 = np.clip(TAU_GRID * 0.95 / need, 0, 1)
    return Record(f"{fam}{i}", fam, frac, method, 1.0, 0.01, np.zeros(TAU_GRID.size),
                  np.full(TAU_GRID.size, crps), c80, c95, observed=frac,
                  features={"log_frac": float(np.log(frac)),
                            "train_curve": float(train)})  # fmt: skip


def test_a_familys_taus_do_not_depend_on_its_own_records() -> None:
    recs = [_rec(f, i, need=n) for f, n in (("a", 1.0), ("b", 2.0), ("c", 3.0)) for i in range(3)]
    taus, _ = lofo_calibration(recs, ood_grid=(0.0,))
    # family a changed beyond recognition: its own taus must not move (they come from b and c)
    changed = [dataclasses.replace(r, cov80s=np.clip(TAU_GRID * 0.8 / 9.0, 0, 1),
                                   cov95s=np.clip(TAU_GRID * 0.95 / 9.0, 0, 1))
               if r.family == "a" else r for r in recs]  # fmt: skip
    taus2, _ = lofo_calibration(changed, ood_grid=(0.0,))
    for i in range(3):
        assert taus2[(f"a{i}", "ensemble", 0.5)] == taus[(f"a{i}", "ensemble", 0.5)]
    # while the families it helps judge do see the change
    assert taus2[("b0", "ensemble", 0.5)] != taus[("b0", "ensemble", 0.5)]


def test_the_method_chosen_for_a_family_is_chosen_on_the_others() -> None:
    # family a alone loves method x (CRPS 0.01 against 0.5); b and c prefer y
    recs = []
    for fam in "abc":
        x_crps, y_crps = (0.01, 0.5) if fam == "a" else (0.3, 0.2)
        recs += [_rec(fam, 0, "x", crps=x_crps), _rec(fam, 0, "y", crps=y_crps)]
    choice = lofo_choice(recs, ("x", "y"), lambda r: 1.0)
    assert pick(choice, "a", 0.5) == "y"  # a is judged by what the others chose
    assert pick(choice, "b", 0.5) == "x"  # without b: a (0.01) and c (0.3) make x best
    # what ships is chosen on every family: x's mean 0.203 beats y's 0.3
    assert best_choice(recs, ("x", "y"), lambda r: 1.0) == {("eval", 0.5): "x"}


def test_training_losses_and_evaluation_curves_get_their_own_choice() -> None:
    # every family's evaluation curves prefer x and its per-step training losses prefer y
    recs = []
    for fam in "abc":
        recs += [_rec(fam, 0, "x", crps=0.1), _rec(fam, 0, "y", crps=0.3)]
        recs += [_rec(fam, 1, "x", crps=0.4, train=True), _rec(fam, 1, "y", crps=0.2, train=True)]
    choice = lofo_choice(recs, ("x", "y"), lambda r: 1.0)
    assert pick(choice, "a", 0.5, "eval") == "x" and pick(choice, "a", 0.5, "train") == "y"
    assert best_choice(recs, ("x", "y"), lambda r: 1.0) == {("eval", 0.5): "x",
                                                           ("train", 0.5): "y"}


def test_a_method_that_failed_counts_as_100_percent_off_and_a_missing_one_is_not_compared() -> None:
    recs = []
    for fam in "abc":
        recs += [_rec(fam, 0, "x", crps=0.1), _rec(fam, 0, "y", crps=0.2)]
    # x failed on family b's run: scored 1.0 there, its mean (0.4) loses to y's (0.2)
    recs[2] = dataclasses.replace(recs[2], failed="FitError: ...")
    assert best_choice(recs, ("x", "y"), lambda r: 1.0)[("eval", 0.5)] == "y"
    # a candidate with no record on a family (a method that needs a schedule, on a public curve
    # without one) is compared only on the families where both were scored
    # (x's poor 0.9 on c would otherwise decide against it, where y was never tried)
    only_x_on_c = [r for r in recs if not (r.family == "c" and r.method == "y")]
    only_x_on_c[2] = dataclasses.replace(only_x_on_c[2], failed="")
    only_x_on_c[4] = dataclasses.replace(only_x_on_c[4], crpss=np.full(TAU_GRID.size, 0.9))
    assert (only_x_on_c[4].family, only_x_on_c[4].method) == ("c", "x")
    assert best_choice(only_x_on_c, ("x", "y"), lambda r: 1.0)[("eval", 0.5)] == "x"
