"""The traced recurrent step gives the eager network's outputs, follows its weights, and
steps aside where tracing is not safe."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from muzero_agents.networks import ConvMuZeroNetwork, MlpMuZeroNetwork
from muzero_agents.traced import RecurrentStep, TracedRecurrent

torch.set_num_threads(1)

# kind -> (network factory, hidden-state shape, actions, support size)
NETWORKS = {
    "mlp": (lambda: MlpMuZeroNetwork(8, 9, 20), (64,), 9, 20),
    "cnn-per-action-planes": (
        lambda: ConvMuZeroNetwork((2, 3, 3), 5, 4, channels=8, num_blocks=1),
        (8, 3, 3),
        5,
        4,
    ),
    "cnn-board-squares-and-pass": (
        lambda: ConvMuZeroNetwork((3, 9, 9), 82, 5, channels=8, num_blocks=1),
        (8, 9, 9),
        82,
        5,
    ),
}


def _random_network(kind: str):
    make, hidden_shape, num_actions, _ = NETWORKS[kind]
    torch.manual_seed(0)
    net = make()
    for p in net.parameters():  # heads start at zero: give every output something to show
        torch.nn.init.normal_(p, std=0.1)
    return net.eval(), hidden_shape, num_actions


def _assert_same(got, expected):
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_traced_step_matches_the_network_across_batches_and_weight_updates(kind):
    net, hidden_shape, num_actions = _random_network(kind)
    support = NETWORKS[kind][3]
    traced = TracedRecurrent(net, support)
    eager = RecurrentStep(net, support)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    for round_ in range(2):
        with torch.inference_mode():
            for batch in (3, 1, 6):
                hidden = torch.rand(batch, *hidden_shape)
                action = torch.randint(0, num_actions, (batch,))
                _assert_same(traced(hidden, action), eager(hidden, action))
        assert traced._traced is not None  # the trace was made and used
        if round_ == 0:  # an optimizer step changes the shared weights in place
            loss = eager(torch.rand(2, *hidden_shape), torch.zeros(2, dtype=torch.int64))[1].sum()
            loss.backward()
            optimizer.step()


def test_training_mode_uses_the_eager_network():
    net, hidden_shape, num_actions = _random_network("cnn-per-action-planes")
    net.train()
    traced = TracedRecurrent(net, 4)
    stats = net.dynamics_tower[0][1].running_mean.clone()
    hidden, action = torch.rand(4, *hidden_shape), torch.randint(0, num_actions, (4,))
    with torch.no_grad():
        out = traced(hidden, action)
    assert traced._traced is None
    assert not torch.equal(stats, net.dynamics_tower[0][1].running_mean)  # batch norm trained, once
    assert out[2].shape == (4, num_actions)


def test_a_traced_step_pickles_and_copies_without_its_trace():
    net, hidden_shape, num_actions = _random_network("mlp")
    traced = TracedRecurrent(net, 20)
    hidden, action = torch.rand(2, *hidden_shape), torch.randint(0, num_actions, (2,))
    with torch.inference_mode():
        expected = traced(hidden, action)
    for clone in (pickle.loads(pickle.dumps(traced)), copy.deepcopy(traced)):
        assert clone._traced is None
        with torch.inference_mode():
            _assert_same(clone(hidden, action), expected)
