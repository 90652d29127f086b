"""RevIN (Kim et al., ICLR 2022) as an option of every learned forecaster."""

from __future__ import annotations

import copy

import pytest
import torch

from multissl.timeseries.methods import ForecastMethod
from multissl.timeseries.models import DLinear, EncoderForecaster, RevIN, TCNEncoderNet, TransformerEncoderNet


def test_revin_denorm_inverts_norm():
    torch.manual_seed(0)
    r = RevIN(3)
    with torch.no_grad():
        r.weight.uniform_(0.5, 2.0)
        r.bias.normal_()
    x = torch.randn(4, 20, 3) * 5 + 2
    xn, stats = r.norm(x)
    assert torch.allclose(xn.mean(1), r.bias.expand(4, 3), atol=1e-5)  # per window and channel
    assert torch.allclose(r.denorm(xn, stats), x, atol=1e-4)


@pytest.mark.parametrize("kind", ["dlinear", "transformer", "tcn"])
def test_revin_makes_every_forecaster_shift_and_scale_equivariant(kind):
    """With RevIN, forecasting a * x + b per channel gives a * f(x) + b: the forecaster answers level and
    scale shifts (the ETT distribution shift); without RevIN it does not."""
    torch.manual_seed(0)
    c, t, h = 3, 24, 6

    def make(revin):
        torch.manual_seed(0)
        if kind == "dlinear":
            return DLinear(t, h, c, kernel=5, revin=revin).eval()
        enc = TransformerEncoderNet(c, t, 16, 2, 1, 32) if kind == "transformer" else TCNEncoderNet(c, 16, 2)
        return EncoderForecaster(enc, t, h, c, revin=revin).eval()

    x = torch.randn(5, t, c)
    a, b = torch.tensor([3.0, 0.5, 2.0]), torch.tensor([10.0, -4.0, 1.0])
    with torch.no_grad():
        f = make(True)
        assert torch.allclose(f(a * x + b), a * f(x) + b, atol=1e-3)
        g = make(False)
        assert not torch.allclose(g(a * x + b), a * g(x) + b, atol=1e-1)


def test_contrastive_views_use_the_revin_space():
    """With RevIN on, the MoCo query and key see the normalised window: a level shift of the input leaves
    the contrastive loss unchanged (same masks, same queue)."""
    enc = TransformerEncoderNet(2, 16, 16, 2, 1, 32, dropout=0.0)
    m = ForecastMethod(EncoderForecaster(enc, 16, 4, 2, revin=True), mode="e2e", queue_size=8, momentum=1.0)
    x = torch.randn(6, 16, 2)
    losses = []
    for shift in (0.0, 50.0):
        torch.manual_seed(1)
        losses.append(float(copy.deepcopy(m).contrastive_loss(x + shift).detach()))
    assert abs(losses[0] - losses[1]) < 1e-3
