"""MuZero(num_actors=2) on a two-node Ray cluster on this machine (loopback only): one actor on
each node, learning proceeds. Slow (two Ray nodes start): run with ``-m slow``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from stable_baselines3.common.logger import configure

from muzero_agents import MuZero

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed (pip install 'muzero-agents[distributed]')",
    ),
]


def last_row(folder: Path) -> dict[str, str]:
    header, *rows = (folder / "progress.csv").read_text().splitlines()
    return dict(zip(header.split(","), rows[-1].split(",")))


def test_actors_on_two_nodes_feed_one_learner(tmp_path, fast_kwargs):
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # a cluster left by other tests: this one is joined instead
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
        model = MuZero("MlpPolicy", "CartPole-v1", num_actors=2, seed=0, **fast_kwargs)
        model.set_logger(configure(str(tmp_path), ["csv"]))
        model.learn(400, log_interval=1)
        row = last_row(tmp_path)
        assert float(row["distributed/nodes"]) == 2  # one actor per node: each has one CPU
        assert float(row["distributed/actors_alive"]) == 2
        assert model.num_timesteps >= 400 and model._n_updates > 0
        assert all(len(shard) > 0 for shard in model.replay_buffer.shards)
    finally:
        ray.shutdown()
        cluster.shutdown()
