"""The corpus of real runs and sweeps (bench/corpus): manifest, stored curves, schedules, the
public families, sweeps and the size budget. Reads what bench/corpus/build.py stored."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from corpus import load, sweeps_common  # noqa: E402
from runcast import Curve  # noqa: E402
from runcast.schedules import Schedule  # noqa: E402

MAX_BYTES = 40 * 2**20


@pytest.fixture(scope="module")
def generated() -> list[load.CorpusRun]:
    return load.runs(public=False)


def test_manifest_lists_enough_runs_and_families(generated: list[load.CorpusRun]) -> None:
    fams = Counter(r.family for r in generated)
    assert len(generated) >= 300, fams
    assert len(fams) >= 10, fams
    assert set(load.families(public=False)) == set(fams)
    assert len({r.id for r in generated}) == len(generated)


def test_every_stored_curve_is_complete_and_finite(generated: list[load.CorpusRun]) -> None:
    for r in generated:
        n = r.facts["n_steps"]
        total = r.config["total"]
        assert n == total or r.facts["diverged"], r.id
        steps, tl = r.arrays("train_loss")
        assert steps.tolist() == list(range(n)), r.id
        _, gn = r.arrays("grad_norm")
        es, vl = r.arrays("val_loss")
        assert es.size == r.facts["n_evals"] >= 1 and es[-1] <= total - 1, r.id
        assert (np.diff(es) > 0).all(), r.id
        if not r.facts["diverged"]:
            assert np.isfinite(tl).all() and np.isfinite(gn).all() and (gn >= 0).all(), r.id
            assert np.isfinite(vl).all() and es[-1] == total - 1, r.id
        if "val_acc" in r.metrics:
            acc = r.arrays("val_acc")[1]
            assert ((acc >= 0) & (acc <= 1)).all(), r.id


def test_recorded_lr_is_the_schedule_the_curve_carries(generated: list[load.CorpusRun]) -> None:
    for r in generated:
        c = r.curve("val_loss")
        assert isinstance(c, Curve) and isinstance(c.schedule, Schedule), r.id
        c.schedule.check_covers(c.last_step + 1)
        _, lr = r.arrays("lr")
        want = c.schedule.array(r.config["total"])[: lr.size]
        np.testing.assert_allclose(lr, want, rtol=1e-6, atol=1e-12, err_msg=r.id)


def test_some_families_overfit_and_others_keep_improving(
    generated: list[load.CorpusRun],
) -> None:
    share: dict[str, list[bool]] = {}
    for r in generated:
        share.setdefault(r.family, []).append(bool(r.facts.get("overfits")))
    rate = {f: float(np.mean(v)) for f, v in share.items()}
    assert rate["mlp_overfit"] >= 0.5, rate
    assert rate["chartf_overfit"] >= 0.5, rate
    assert rate["chartf"] <= 0.2 and rate["rnn"] <= 0.2, rate


def test_corpus_covers_optimizers_schedules_and_lengths(
    generated: list[load.CorpusRun],
) -> None:
    opts = {r.config["optimizer"] for r in generated}
    assert opts == {"adamw", "adam", "sgd", "schedulefree"}
    kinds = {r.schedule.kind for r in generated if r.schedule is not None}
    assert {
        "constant",
        "cosine",
        "linear",
        "wsd",
        "multistep",
        "two_stage",
        "cyclic",
        "sequence",
        "inverse_sqrt",
        "power",
    } <= kinds
    totals = [r.config["total"] for r in generated]
    assert min(totals) == 500 and max(totals) == 20_000
    assert len({r.config["batch_size"] for r in generated}) >= 5


def test_public_families_load_through_the_same_api(shared_data: Path) -> None:
    public = load.runs(family=list(load.PUBLIC_FAMILIES))
    fams = Counter(r.family for r in public)
    assert fams == {"mpl": 27, "tdlt": 3, "pythia": 6, "olmo": 3, "t5": 4, "opt": 6}
    for fam in ("mpl", "tdlt", "olmo", "t5", "opt"):
        r = next(r for r in public if r.family == fam)
        c = r.curve(r.metrics[0])
        assert len(c) > 10 and np.isfinite(c.finite().value).all(), r.id
        if fam in ("mpl", "tdlt"):
            assert c.schedule is not None
            c.schedule.check_covers(c.last_step + 1)
    t5 = load.run("t5-base").curve("val_loss").finite()
    assert t5.value[0] > 10.0 and 0.5 < t5.value[-1] < 1.5  # negated source values read back
    opt = load.run("opt-125m").curve("val_loss")
    assert np.log(30.0) < opt.value[-1] < np.log(31.0)


def test_sweeps_have_late_bloomers_and_divergent_trials() -> None:
    sws = load.sweeps()
    assert {s.unit for s in sws} == {"epoch", "step"}
    assert {"val_loss", "val_acc", "val_r2"} <= {s.metric for s in sws}
    for s in sws:
        v = s.values()
        assert v.shape == (len(s.trials), s.n_reports) and len(s.trials) >= 40, s.name
        want = [s.report_every * (k + 1) - 1 for k in range(s.n_reports)]
        assert s.report_steps.tolist() == want, s.name
        sign = 1.0 if s.direction == "minimize" else -1.0
        final = np.where(np.isfinite(v[:, -1]), v[:, -1] * sign, np.inf)
        assert int(np.argmin(final)) == s.best_trial, s.name
        late = sweeps_common.late_bloomers(v, s.direction)
        assert sorted(late) == s.facts["late_bloomers"], s.name
        for i, worst in late.items():  # a late bloomer ends in the best quarter ...
            assert (final < final[i]).sum() < len(final) // 4, s.name
            assert worst >= len(final) / 2  # ... after ranking in the worse half early on
    full = [s for s in sws if s.facts["late_bloomers"] and s.facts["divergent_trials"]]
    assert len(full) >= 12, [s.name for s in sws if s not in full]


def test_size_budget() -> None:
    root = BENCH / "corpus"
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size <= MAX_BYTES, f"{size / 2**20:.1f} MiB"
    man = load.manifest()
    stored = {e["file"] for e in man["runs"].values()} | {e["file"] for e in man["sweeps"].values()}
    on_disk = {str(p.relative_to(root / "data")) for p in (root / "data").rglob("*.npz")}
    assert stored == on_disk
