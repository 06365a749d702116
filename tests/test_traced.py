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
                action[0] = num_actions - 1  # the last action (Go's pass) in every batch
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


def test_a_wrong_trace_is_refused_and_replaced_parameters_retrace(monkeypatch):
    net, hidden_shape, num_actions = _random_network("mlp")
    eager = RecurrentStep(net, 20)
    hidden, action = torch.rand(3, *hidden_shape), torch.randint(0, num_actions, (3,))
    real_trace = torch.jit.trace

    def wrong_trace(module, inputs, **kwargs):
        traced = real_trace(module, inputs, **kwargs)
        return lambda h, a: tuple(x + 1.0 for x in traced(h, a))

    traced = TracedRecurrent(net, 20)
    monkeypatch.setattr(torch.jit, "trace", wrong_trace)
    with torch.inference_mode():
        _assert_same(traced(hidden, action), eager(hidden, action))
    assert traced._traced is None  # refused: the eager step serves
    monkeypatch.setattr(torch.jit, "trace", real_trace)
    traced = TracedRecurrent(net, 20)
    with torch.inference_mode():
        traced(hidden, action)
    first = traced._traced
    state = {k: torch.randn_like(v) for k, v in net.state_dict().items()}
    net.load_state_dict(state, assign=True)  # new parameter tensors, not in-place copies
    with torch.inference_mode():
        _assert_same(traced(hidden, action), eager(hidden, action))
    assert traced._traced is not None and traced._traced is not first


def test_muzero_searches_the_same_with_and_without_the_trace(tmp_path):
    import numpy as np

    from muzero_agents import MuZero
    from muzero_agents.policies import MuZeroPolicy

    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=8, learning_starts=50, seed=0)
    model.learn(120)
    model.save(tmp_path / "m")
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    results = []
    for trace in (True, False):
        MuZeroPolicy.trace_recurrent = trace
        try:
            loaded = MuZero.load(tmp_path / "m")
            results.append(
                loaded.planner.plan(
                    loaded.policy,
                    observations,
                    None,
                    num_simulations=8,
                    explore=False,
                    temperature=0.0,
                    rng=loaded._rng,
                )
            )
            assert (loaded.policy._recurrent._traced is not None) == trace
        finally:
            MuZeroPolicy.trace_recurrent = True
    for x, y in zip(*results, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
