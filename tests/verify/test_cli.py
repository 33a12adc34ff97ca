from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from runcast.cli import app
from runcast.verify import load_task, train_with_proof

SCRIPT = """
from runcast.verify.examples import digits_mlp

task = digits_mlp
"""


def _proof(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    task = load_task(script)
    folder = train_with_proof(
        task, tmp_path / "proof", steps=60, batch_size=32, checkpoint_every=20, code=script
    )
    return folder, script


def test_verify_command_passes_and_fails(tmp_path: Path) -> None:
    folder, script = _proof(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["verify", str(folder), "--train", str(script), "--seed", "1"])
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output and "replay" in ok.output
    as_json = runner.invoke(app, ["verify", str(folder), "-t", str(script), "--json"])
    assert json.loads(as_json.output)["passed"] is True

    # another script than the committed code: a failed check, exit 1, no traceback
    other = tmp_path / "other.py"
    other.write_text(SCRIPT + "\n# edited\n")
    bad = runner.invoke(app, ["verify", str(folder), "--train", str(other)])
    assert bad.exit_code == 1 and "committed code" in bad.output
    assert "Traceback" not in bad.output


def test_verify_command_on_a_broken_proof(tmp_path: Path) -> None:
    folder, script = _proof(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "manifest.json").write_text("[]")
    result = CliRunner().invoke(app, ["verify", str(broken), "--train", str(script)])
    assert result.exit_code == 1 and "not a runcast proof manifest" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)

    missing = CliRunner().invoke(app, ["verify", str(folder), "--train", "nope.py"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
