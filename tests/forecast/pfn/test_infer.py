"""The numpy forward pass against the torch model, the bar quantiles, the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runcast.forecast.pfn._infer import WEIGHTS, bar_quantiles, load_weights, logits
from runcast.forecast.pfn._prior import sample_batch


@pytest.mark.parametrize("sizes", [(16, 1, 2, 32, 8), (48, 3, 4, 96, 64), (96, 4, 4, 192, 128)])
def test_numpy_matches_torch(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    from runcast.forecast.pfn._model import PFN, ModelConfig
    from runcast.forecast.pfn.train import save_weights

    torch.manual_seed(0)
    cfg = ModelConfig(*sizes)
    model = PFN(cfg).eval()
    path = tmp_path / "w.npz"
    save_weights(path, model, np.linspace(-7, 5, cfg.n_bins + 1), {"note": "test"})
    b = sample_batch(np.random.default_rng(0), batch=6)
    with torch.no_grad():
        ref = model(
            torch.as_tensor(b.obs_feat, dtype=torch.float32),
            torch.as_tensor(b.obs_z, dtype=torch.float32),
            torch.as_tensor(b.obs_mask),
            torch.as_tensor(b.q_feat, dtype=torch.float32),
        ).numpy()
    got = logits(load_weights(path), b.obs_feat, b.obs_z, b.obs_mask, b.q_feat)
    # the port must be exact up to float32 rounding: users get torch's answers without torch
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_shipped_weights_give_torch_s_answers() -> None:
    torch = pytest.importorskip("torch")
    from runcast.forecast.pfn._model import PFN, ModelConfig

    w = load_weights()
    fields = ModelConfig.__dataclass_fields__
    model = PFN(ModelConfig(**{k: v for k, v in w.config.items() if k in fields})).eval()
    # strict: the file holds exactly the network's parameters, no more, no fewer
    model.load_state_dict({k: torch.as_tensor(v) for k, v in w.params.items()}, strict=True)
    b = sample_batch(np.random.default_rng(1), batch=4)
    with torch.no_grad():
        ref = model(
            torch.as_tensor(b.obs_feat, dtype=torch.float32),
            torch.as_tensor(b.obs_z, dtype=torch.float32),
            torch.as_tensor(b.obs_mask),
            torch.as_tensor(b.q_feat, dtype=torch.float32),
        ).numpy()
    got = logits(w, b.obs_feat, b.obs_z, b.obs_mask, b.q_feat)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_bar_quantiles_invert_the_piecewise_linear_cdf() -> None:
    borders = np.array([-1.0, 0.0, 1.0, 3.0])
    lg = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    q = bar_quantiles(lg, borders, np.array([0.0, 0.25, 0.5, 0.625, 0.875, 1.0]))
    np.testing.assert_allclose(q[0], [-1.0, -0.5, 0.0, 0.5, 2.0, 3.0], atol=1e-6)


def test_bar_quantiles_are_monotone_for_random_logits() -> None:
    rng = np.random.default_rng(0)
    lg = rng.normal(size=(50, 128)).astype(np.float32)
    borders = np.sort(rng.uniform(-7, 5, 129))
    q = bar_quantiles(lg, borders, np.linspace(0.01, 0.99, 41))
    assert (np.diff(q, axis=1) >= 0).all()
    assert q.min() >= borders[0] and q.max() <= borders[-1]


def test_shipped_weights_load_and_fit_the_budget() -> None:
    w = load_weights()
    # the issue caps the shipped weights at 20 MB
    assert WEIGHTS.stat().st_size <= 20 * 2**20
    assert w.borders.size == w.config["n_bins"] + 1
    assert (np.diff(w.borders) > 0).all()
    assert w.config["steps"] >= 1000  # a real training run, not a smoke-test checkpoint


def test_shipped_model_is_calibrated_on_held_out_prior_draws() -> None:
    w = load_weights()
    # seed 999 is not the training seed: these curves were never seen in training
    b = sample_batch(np.random.default_rng(999), batch=128)
    q = bar_quantiles(
        logits(w, b.obs_feat, b.obs_z, b.obs_mask, b.q_feat), w.borders, np.array([0.1, 0.5, 0.9])
    )
    inside = (b.q_z >= q[..., 0]) & (b.q_z <= q[..., 2])
    # on its own prior the PFN approximates the posterior predictive: 80% intervals hold ~80%
    assert 0.74 <= inside.mean() <= 0.86, inside.mean()
    # and the median is sharp: typical error well under the normalised drop scale (1.0)
    assert np.median(np.abs(q[..., 1] - b.q_z)) < 0.2


def test_a_file_that_is_not_weights_is_a_clear_error(tmp_path: Path) -> None:
    from runcast.errors import InvalidInputError

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))  # an .npz, but not one the trainer wrote
    for path in (bad, other):
        # were numpy's ValueError (pickled data) and a KeyError ('config is not a file')
        with pytest.raises(InvalidInputError, match="is not a PFN weights file"):
            load_weights(path)
    with pytest.raises(InvalidInputError, match="weights must be a file path"):
        load_weights(5)
