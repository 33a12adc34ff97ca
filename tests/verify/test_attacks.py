"""Every attack of the suite is caught, on all three families (small runs; the full-size
results, with several verifier draws each, are in bench/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runcast.verify import VerifyConfig, verify
from runcast.verify.attacks import ATTACKS
from runcast.verify.examples import FAMILIES

# the check that must catch each attack at this size (others may fail too)
CAUGHT_BY = {
    "data_substitution": {"replay", "memorisation"},
    "reordered_batches": {"replay"},
    "spliced_checkpoint": {"replay"},
    "fabricated_segments": {"replay"},
    "skipped_steps": {"replay"},
    "foreign_init": {"replay"},
    "data_added": {"replay"},
    "data_added_to_script": {"commitment"},
    "adversarial_spoof": {"replay"},
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_is_caught(tmp_path: Path, family: str, attack: str) -> None:
    task = FAMILIES[family](None)
    folder, shipped = ATTACKS[attack](
        task, tmp_path, steps=80, batch_size=32, checkpoint_every=20, nonce=bytes(32)
    )
    report = verify(folder, shipped, config=VerifyConfig(seed=0))
    assert not report.passed, str(report)
    assert set(report.failed) & CAUGHT_BY[attack], str(report)
    # the files are self-consistent: the forgery is caught by what it claims, not by a hash
    assert report.check("files").passed
