"""``python -m benchmarks.profile`` on CartPole with a tiny budget: every part is in the table,
no time is negative, the timed methods are put back, and the shares add up to 100%."""

import pytest
import torch

import muzero_agents.learner as learner_module
from benchmarks import profile
from muzero_agents.reanalyze import Reanalyzer


def _table_rows(printed: str) -> dict[str, tuple[str, str, float]]:
    """label -> (ms per env step, ms per gradient step, share %) of the printed task table."""
    rows = {}
    for line in printed.splitlines():
        label, act, train, share = (line.rsplit(maxsplit=3) + ["", "", "", ""])[:4]
        if label in [*profile.PARTS.values(), "total"]:
            rows[label] = (act, train, float(share))
    return rows


def test_profile_prints_every_part_and_shares_that_add_up(capsys):
    originals = (torch.Tensor.backward, Reanalyzer.refresh, learner_module.muzero_loss)
    (result,) = profile.main(["--tasks", "cartpole", "--env-steps", "40", "--learning-starts", "24"])
    printed = capsys.readouterr().out

    rows = _table_rows(printed)
    assert set(rows) == {*profile.PARTS.values(), "total"}
    for act, train, share in rows.values():
        assert float(act) >= 0.0 and float(train) >= 0.0 and share >= 0.0
    assert sum(share for label, (_, _, share) in rows.items() if label != "total") == pytest.approx(
        100.0, abs=0.1 * len(profile.PARTS)
    )
    assert result.env_steps == 40 and result.gradient_steps == 8  # 0.5 per env step from 24 on
    for part in ("env", "initial", "tree", "recurrent", "replay_add"):
        assert result.part_s(part, profile.ACT) > 0.0, part
    for part in ("replay_sample", "targets", "reanalyze", "forward", "backward", "optimizer"):
        assert result.part_s(part, profile.TRAIN) > 0.0, part
    assert sum(result.share(part) for part in profile.PARTS) == pytest.approx(100.0)
    assert 0.0 < result.network_share < 100.0
    assert "network share:" in printed and "summary" in printed and "CartPole-v1" in printed
    assert (torch.Tensor.backward, Reanalyzer.refresh, learner_module.muzero_loss) == originals


def test_nested_timers_count_each_second_once():
    ticks = iter([0.0, 1.0, 3.0, 10.0])  # outer starts, inner starts, inner ends, outer ends
    profiler = profile.Profiler(clock=lambda: next(ticks))
    with profiler.timing("rest"), profiler.timing("forward", profile.TRAIN):
        pass
    assert profiler.exclusive == {(profile.ACT, "rest"): 8.0, (profile.TRAIN, "forward"): 2.0}
