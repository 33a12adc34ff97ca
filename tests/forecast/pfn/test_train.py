"""Training: the loss falls on a tiny run, runs are reproducible, the command writes weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runcast.errors import InvalidInputError  # noqa: E402
from runcast.forecast.pfn._infer import load_weights  # noqa: E402
from runcast.forecast.pfn._model import ModelConfig  # noqa: E402
from runcast.forecast.pfn._prior import sample_batch  # noqa: E402
from runcast.forecast.pfn.train import bin_borders, checkpoint_path, main, train  # noqa: E402

TINY = ModelConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, n_bins=32)


def _quiet(_: str) -> None:
    pass


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    # like the training command: one thread, so tests don't fight the other CI jobs for cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_a_short_run_lowers_the_loss() -> None:
    torch.manual_seed(0)
    res = train(steps=40, out=None, batch=16, lr=3e-3, cfg=TINY, bin_batches=2, log=_quiet)
    first, last = np.mean(res.losses[:8]), np.mean(res.losses[-8:])
    # learning happens: the bar NLL drops clearly within 40 steps of fresh prior batches
    assert last < first - 0.2, (first, last)


def test_runs_are_deterministic_given_the_seed() -> None:
    kw = {"steps": 3, "out": None, "batch": 8, "cfg": TINY, "bin_batches": 1, "log": _quiet}
    a = train(seed=5, **kw)  # type: ignore[arg-type]
    b = train(seed=5, **kw)  # type: ignore[arg-type]
    c = train(seed=6, **kw)  # type: ignore[arg-type]
    assert a.losses == b.losses  # same seed: bit-identical run
    assert a.losses != c.losses
    np.testing.assert_array_equal(a.borders, b.borders)


def test_bin_borders_have_equal_prior_mass() -> None:
    rng = np.random.default_rng(0)
    borders = bin_borders(rng, 8, batches=4, batch=64)
    assert borders.size == 9 and (np.diff(borders) > 0).all()
    z = np.concatenate([sample_batch(rng, 64).q_z.ravel() for _ in range(4)])
    counts = np.histogram(z, borders)[0] / z.size
    # fresh draws spread roughly evenly over equal-mass bins (1/8 = 0.125 each; the 24 targets
    # of one curve are correlated, so a few hundred curves leave visible sampling noise)
    assert counts.min() > 0.06 and counts.max() < 0.2, counts


def test_command_line_writes_loadable_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "w.npz"
    main(["--steps", "2", "--out", str(out), "--batch", "2", "--seed", "1"])
    text = capsys.readouterr().out
    assert "final training loss" in text and str(out) in text
    w = load_weights(out)
    assert w.config["steps"] == 2 and w.config["seed"] == 1


@pytest.mark.parametrize("args", [["--steps", "-5"], ["--steps", "0"], ["--batch", "0"]])
def test_command_line_refuses_nothing_to_train(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # --steps -5 trained no step and wrote weights with a NaN loss
    out = tmp_path / "w.npz"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(out)])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not out.exists()


class _InterruptError(Exception):
    pass


def _stop_at(step: int) -> object:
    def log(line: str) -> None:
        if line.startswith(f"step {step}/"):
            raise _InterruptError  # what a Ctrl-C or a kill after that step's checkpoint leaves
    return log


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    kw = {"steps": 6, "batch": 8, "cfg": TINY, "bin_batches": 1, "checkpoint_every": 2,
          "log_every": 1, "seed": 3}
    whole = train(out=tmp_path / "a.npz", log=_quiet, **kw)  # type: ignore[arg-type]
    out = tmp_path / "b.npz"
    with pytest.raises(_InterruptError):
        train(out=out, log=_stop_at(4), **kw)  # type: ignore[arg-type]
    assert checkpoint_path(out).exists()
    lines: list[str] = []
    resumed = train(out=out, log=lines.append, resume=True, **kw)  # type: ignore[arg-type]
    assert lines[0].startswith("resuming from step 4/6")
    assert resumed.losses == whole.losses  # the losses before the kill, then the same steps
    a, b = load_weights(tmp_path / "a.npz"), load_weights(out)
    assert a.params.keys() == b.params.keys()
    for k, v in a.params.items():
        np.testing.assert_array_equal(b.params[k], v)  # bit-identical weights
    assert not checkpoint_path(out).exists()  # a finished run leaves only its weights


def test_a_checkpoint_from_other_arguments_is_refused(tmp_path: Path) -> None:
    kw = {"batch": 8, "cfg": TINY, "bin_batches": 1, "checkpoint_every": 1, "log_every": 1}
    out = tmp_path / "w.npz"
    with pytest.raises(_InterruptError):
        train(steps=4, out=out, log=_stop_at(2), **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="resume with the same arguments"):
        train(steps=8, out=out, log=_quiet, resume=True, **kw)  # type: ignore[arg-type]
    assert checkpoint_path(out).exists()  # refused, and the recorded progress is still there
