"""The categorical value/reward representation: h(x), its inverse, the two-hot projection."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from muzero_agents.support import (
    inverse_scale_transform,
    scalar_to_support,
    scale_transform,
    support_to_scalar,
)

floats = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=64)


@given(st.lists(floats, min_size=1, max_size=32))
@settings(max_examples=100, deadline=None)
def test_h_inverse_round_trips(values):
    x = torch.tensor(values, dtype=torch.float64)
    assert torch.allclose(inverse_scale_transform(scale_transform(x)), x, rtol=1e-9, atol=1e-6)


def test_h_known_values():
    x = torch.tensor([0.0, 3.0, -8.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 1.0 + 0.003, -(2.0 + 0.008)], dtype=torch.float64)
    assert torch.allclose(scale_transform(x), expected)


def test_two_hot_projection_hand_example():
    # h(3) = 1.003 on support {-2..2}: weight 0.997 on 1 and 0.003 on 2.
    dist = scalar_to_support(torch.tensor([3.0], dtype=torch.float64), support_size=2)
    assert torch.allclose(dist, torch.tensor([[0, 0, 0, 0.997, 0.003]], dtype=torch.float64))


@given(st.lists(st.floats(min_value=-100, max_value=100, allow_nan=False, width=64), min_size=1, max_size=16))
@settings(max_examples=100, deadline=None)
def test_support_round_trip_through_logits(values):
    x = torch.tensor(values, dtype=torch.float64)
    dist = scalar_to_support(x, support_size=20)
    assert torch.allclose(dist.sum(-1), torch.ones_like(x))
    assert (dist >= 0).all()
    logits = torch.log(dist.clamp_min(1e-30))
    assert torch.allclose(support_to_scalar(logits, 20), x, rtol=1e-6, atol=1e-5)


def test_values_beyond_support_are_clipped_to_its_end():
    dist = scalar_to_support(torch.tensor([1e6, -1e6]), support_size=3)
    assert dist[0, -1] == 1.0 and dist[1, 0] == 1.0


def test_the_inverse_keeps_float32_precision():
    """In float32 the inverse is as close to the float64 one as float32 can be (the closed form's
    difference of square roots would lose about four digits)."""
    x = torch.linspace(-600.0, 600.0, 20001, dtype=torch.float64)
    y = scale_transform(x).float()
    exact = inverse_scale_transform(y.double())
    error = (inverse_scale_transform(y).double() - exact).abs() / (exact.abs() + 1.0)
    assert float(error.max()) < 2e-6
