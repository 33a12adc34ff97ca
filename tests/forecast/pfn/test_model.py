"""The torch PFN: shapes and the attention structure that makes it a PFN."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runcast.forecast.pfn._model import PFN, ModelConfig, bar_nll  # noqa: E402

CONFIGS = [ModelConfig(32, 1, 2, 64, 16), ModelConfig(48, 2, 4, 96, 32)]


def _inputs(seed: int, b: int = 3, n: int = 12, q: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    feat = torch.rand(b, n, 5, generator=g)
    z = torch.randn(b, n, generator=g)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[0, 8:] = False
    return feat, z, mask, torch.rand(b, q, 5, generator=g)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_shapes(cfg: ModelConfig) -> None:
    out = PFN(cfg)(*_inputs(0))
    assert tuple(out.shape) == (3, 5, cfg.n_bins)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cfg", CONFIGS)
def test_queries_do_not_see_each_other(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    m = PFN(cfg).eval()
    feat, z, mask, q = _inputs(1)
    full = m(feat, z, mask, q)
    alone = m(feat, z, mask, q[:, 2:3])
    # a query's answer must not depend on which other queries were asked
    torch.testing.assert_close(full[:, 2:3], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_padding_and_order_of_observations_do_not_matter(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    m = PFN(cfg).eval()
    feat, z, mask, q = _inputs(2)
    base = m(feat, z, mask, q)
    # garbage in padded slots is ignored
    feat2, z2 = feat.clone(), z.clone()
    feat2[0, 8:] = 123.0
    z2[0, 8:] = -50.0
    torch.testing.assert_close(m(feat2, z2, mask, q), base, rtol=1e-5, atol=1e-5)
    # the observations are a set: permuting them changes nothing
    perm = torch.randperm(12)
    perm_b1 = m(feat[1:, perm], z[1:, perm], mask[1:, perm], q[1:])
    torch.testing.assert_close(perm_b1, base[1:], rtol=1e-5, atol=1e-5)


def test_bar_nll_is_the_density_nll() -> None:
    borders = torch.tensor([-2.0, -1.0, 0.0, 0.5, 2.0])
    logits = torch.log(torch.tensor([[[0.1, 0.2, 0.3, 0.4]]]))
    target = torch.tensor([[0.25]])  # in bin 2 (width 0.5, mass 0.3): density 0.6
    nll = bar_nll(logits, target, borders)
    assert float(nll) == pytest.approx(-np.log(0.6), rel=1e-6)
    # targets on the outer borders land in the edge bins instead of falling off
    edge = bar_nll(logits, torch.tensor([[2.0]]), borders)
    assert float(edge) == pytest.approx(-np.log(0.4 / 1.5), rel=1e-6)
