"""runcast's law: the equal-weight average of its two members, with their parameters."""

from __future__ import annotations

import numpy as np

from runcast.forecast.laws import MomentumLaw, MultiPowerLaw, RuncastLaw

MPL = MultiPowerLaw.published("100M").params
MOM = {"L0": 2.68, "A": 0.57, "alpha": 0.5, "C": 0.73, "lam": 0.998}
SPEC = {"kind": "cosine", "peak": 3e-4, "end": 3e-5, "warmup": 2160, "total": 72000}


def test_prediction_is_the_average_of_the_members() -> None:
    law = RuncastLaw.from_members({"mpl": MPL, "momentum": MOM})
    steps = np.array([5000, 36000, 71999])
    expected = 0.5 * MultiPowerLaw(MPL).predict(SPEC, steps)
    expected += 0.5 * MomentumLaw(MOM).predict(SPEC, steps)
    np.testing.assert_allclose(law.predict(SPEC, steps), expected, rtol=1e-12)


def test_members_round_trip_their_parameters() -> None:
    law = RuncastLaw.from_members({"mpl": MPL, "momentum": MOM})
    members = law.members()
    # prefixed flat parameters map back to each member's own names and values
    assert members["mpl"].params == MPL and members["momentum"].params == MOM
    assert len(law.PARAMS) == 12
