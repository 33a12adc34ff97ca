"""The CI guard in tests/conftest.py: with RUNCAST_NO_SKIPS=1 a skipped test fails the run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SUITE = """
import pytest

def test_runs():
    pass

def test_needs_an_extra():
    pytest.importorskip("a_module_that_is_not_installed")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_a_skip_fails_the_run_under_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNCAST_NO_SKIPS", "1")
    result = suite.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*RUNCAST_NO_SKIPS: these tests did not run*", "*test_needs_an_extra*not_installed*"]
    )


def test_a_skip_is_fine_on_a_partial_install(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNCAST_NO_SKIPS", raising=False)
    result = suite.runpytest_subprocess("-q")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
