"""Each integration imports its library lazily; a missing one names the extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest

from runcast.errors import MissingDependencyError


@pytest.mark.parametrize(
    ("module", "library", "extra"),
    [
        ("runcast.integrations.optuna", "optuna", "optuna"),
        ("runcast.integrations.ray", "ray.tune", "ray"),
        ("runcast.integrations.hf", "transformers", "hf"),
        ("runcast.integrations.lightning", "lightning", "lightning"),
    ],
)
def test_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, library: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, library, None)  # makes `import library` fail
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingDependencyError, match=rf'pip install "runcast\[{extra}\]"'):
        importlib.import_module(module)


def test_package_import_stays_light() -> None:
    # importing runcast.integrations itself must not pull any training library in
    code = (
        "import sys, runcast.integrations; "
        "print(sorted(m for m in ('torch', 'optuna', 'ray', 'transformers', 'lightning') "
        "if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
