"""Plan the LR schedule of a 24,000-step run from fitted laws: gain over cosine, and its cost.

Question: given a multi-power law fitted by runcast on the MPL paper's three `fit` curves
(cosine_24000, constant_24000, wsdcon_9; ../shared/data/curves/mpl), runcast's own law fitted on
the same curves and, side by side, the law with the paper's published parameters, which schedule does ``plan_schedule`` choose for a
24,000-step budget (peak 3e-4, warmup 2160, as in the paper), what final loss gain over the
paper's cosine (to 3e-5) does it predict, with what uncertainty, and what does planning cost?

Anchors measured in the same run:
- the real curves: the final-loss gain of the WSD runs the paper actually trained
  (wsd_20000_24000 exponential, wsdld_20000_24000 linear) over its real cosine_24000, next to
  the law's prediction of that same gain, so the predicted gains can be judged against reality;
- cost as a ratio: planning time over the time of one ``fit_law`` on the three curves.

The plan with ``floor=3e-5`` (the lowest LR the fitted runs saw, and the paper's WSD end LR) shows
how much of the predicted gain comes from annealing below anything the law was fitted on.

    python bench/schedule_planner.py            # all three sizes (~2-3 min on 2 cores)
    python bench/schedule_planner.py --quick    # 25M only, no free-form search
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from runcast import Curve, Schedule
from runcast.forecast.laws import MultiPowerLaw, fit_law
from runcast.schedules import plan_schedule
from runcast.schedules._plan import paired_gain

DATA = Path(
    os.environ.get(
        "RUNCAST_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()
BUDGET, PEAK, WARMUP = 24000, 3e-4, 2160


def load(entry: dict[str, Any]) -> Curve:
    data = np.genfromtxt(DATA / entry["file"], delimiter=",", names=True)
    keep = data["step"] < entry["schedule"]["total"]
    return Curve(
        data["step"][keep].astype(np.int64),
        data["loss"][keep],
        schedule=Schedule.from_spec(entry["schedule"]),
    )


def final(curve: Curve) -> float:
    # the mean of the last three logged points: one validation point is noisy at the 1e-3 level
    return float(np.mean(curve.value[-3:]))


def real_gains(law: Any, runs: dict[str, Curve]) -> tuple[list[str], int]:
    """The real final-loss gain of the paper's WSD runs over its cosine run, and the law's."""
    out, inside = [], 0
    cos = runs["cosine_24000"]
    for name in ("wsd_20000_24000", "wsdld_20000_24000"):
        run = runs[name]
        real = final(cos) - final(run)
        last = int(run.step[-1])
        _, _, gain = paired_gain(law, run.schedule, cos.schedule, last)
        lo, hi = gain.interval(0.8) if gain is not None else (float("nan"),) * 2
        inside += int(lo <= real <= hi)
        tag = "exp" if name.startswith("wsd_") else "lin"
        out.append(f"{tag}: real {real:+.4f}, law {gain.median:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    return out, inside


def describe(s: Schedule) -> str:
    if s.kind == "recorded":
        return "free-form"
    spec = s.to_spec()
    if s.kind == "wsd":
        return (
            f"wsd {spec['decay_shape']}, decay {1 - spec['decay_start'] / BUDGET:.0%}, "
            f"end {spec['end']:.1e}"
        )
    return f"{s.kind} end {spec.get('end', 0):.1e}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="25M only, no free-form search")
    args = ap.parse_args()
    cat = json.loads((DATA / "catalog.json").read_text())
    sizes = ["25M"] if args.quick else ["25M", "100M", "400M"]
    rows = []
    covered = 0
    for size in sizes:
        entries = [e for e in cat["curves"] if e["file"].startswith(f"curves/mpl/{size}/")]
        runs = {Path(e["file"]).stem: load(e) for e in entries}
        fit = [runs[Path(e["file"]).stem] for e in entries if e.get("role") == "fit"]
        t0 = time.perf_counter()
        fitted = fit_law(fit, "mpl")
        fit_s = time.perf_counter() - t0
        laws = (
            ("MPL, runcast fit", fitted),
            ("runcast's law", fit_law(fit, "auto")),
            ("MPL, published", MultiPowerLaw.published(size)),
        )
        for label, law in laws:
            plan = plan_schedule(law, BUDGET, PEAK, warmup=WARMUP, free_form=not args.quick, seed=0)
            lo, hi = plan.gain_interval(0.8) or (float("nan"), float("nan"))
            # the same plan kept at or above the lowest LR the fitted runs saw (3e-5)
            floored = plan_schedule(law, BUDGET, PEAK, warmup=WARMUP, floor=3e-5, free_form=False)
            wsd_loss = plan.candidates["wsd"][1]
            anchor, inside = real_gains(law, runs)
            covered += inside
            free = plan.candidates.get("free")
            rows.append(
                [
                    size,
                    label,
                    describe(plan.candidates["wsd"][0]),
                    f"{plan.baseline_loss:.4f}",
                    f"{wsd_loss:.4f}",
                    "—" if free is None else f"{free[1]:.4f}",
                    f"{plan.gain:+.4f} [{lo:+.4f}, {hi:+.4f}]",
                    f"{plan.prob_gain:.2f}",
                    f"{floored.gain:+.4f} ({describe(floored.schedule)})",
                    "; ".join(anchor),
                    f"{plan.seconds:.1f} s = {plan.seconds / fit_s:.1f}x fit ({plan.evaluations})",
                ]
            )
            print(f"{size} {label}: {plan!r}", flush=True)
    head = [
        "size",
        "law",
        "best WSD found",
        "cosine (baseline)",
        "best WSD",
        "free-form",
        "gain, 80% interval",
        "P(gain>0)",
        "gain with floor 3e-5",
        "anchor: real gain of the paper's WSD runs over cosine vs the law's (80% band)",
        "plan time (law evals)",
    ]
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"\nreal WSD gains inside the law's 80% gain band: {covered} of {2 * len(rows)}")


if __name__ == "__main__":
    main()
