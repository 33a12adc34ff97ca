"""Decision: the record of what a rule decided and why."""

from __future__ import annotations

import json

import pytest

from runcast.errors import InvalidInputError
from runcast.steer import Decision


def test_decision_truthiness_and_dict() -> None:
    d = Decision("prune", "p=0.01 < 0.05", step=7, numbers={"p": 0.01})
    # bool() is how loops ask "act?": only "continue" is falsy
    assert bool(d) and not bool(Decision("continue", "fine"))
    out = d.to_dict()
    assert out == {"action": "prune", "reason": "p=0.01 < 0.05", "step": 7, "numbers": {"p": 0.01}}
    json.dumps(out)  # JSON-ready: decisions are logged and shown in reports
    assert str(d) == "prune at step 7: p=0.01 < 0.05"


def test_decision_numbers_are_frozen() -> None:
    src = {"p": 0.5}
    d = Decision("continue", "x", numbers=src)
    src["p"] = 0.9  # a later change of the caller's dict must not rewrite history
    assert d.numbers["p"] == 0.5
    with pytest.raises(TypeError):
        d.numbers["p"] = 1.0  # type: ignore[index]


def test_decision_rejects_unknown_action() -> None:
    with pytest.raises(InvalidInputError, match="'explode'"):
        Decision("explode", "no")  # type: ignore[arg-type]
