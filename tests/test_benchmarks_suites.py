"""The suite definitions are valid: every env, opponent and algorithm is known and has settings."""

from dataclasses import replace

import gymnasium
import pytest

from benchmarks import zoo
from benchmarks.suites import SUITES, Task, find_evaluation, get_suite
from benchmarks.tasks import ALGOS, algo_config, algorithm_class, zoo_key

ALL_TASKS = [(suite.name, task) for suite in SUITES.values() for task in suite.tasks]


def _ids(pairs):
    return [f"{suite}-{task.name}" for suite, task in pairs]


def test_the_suites_exist_with_their_algorithms():
    assert set(SUITES) == {"smoke", "classic", "boardgames", "go9x9", "atari100k"}
    assert set(get_suite("smoke").algos) == {"muzero", "ppo"}
    assert set(get_suite("classic").algos) == {"muzero", "ppo", "dqn", "a2c"}
    assert set(get_suite("boardgames").algos) == {"muzero", "maskable_ppo"}
    (go,) = get_suite("go9x9").tasks
    assert (go.env_id, zoo_key(go)) == ("go", "BoardGame/Go9x9-v0")
    assert go.game_kwargs == {"board_size": 9, "pass_when_settled": True}
    assert [t.name for t in get_suite("classic").tasks] == [
        "CartPole-v1",
        "Acrobot-v1",
        "MountainCar-v0",
        "LunarLander-v3",
    ]
    with pytest.raises(ValueError, match="known suites"):
        get_suite("nope")


def test_smoke_is_small():
    (task,) = get_suite("smoke").tasks
    assert task.env_id == "CartPole-v1" and task.budget <= 5_000
    assert task.budget // task.eval_every >= 2  # a curve, not a point


@pytest.mark.parametrize("suite_name, task", ALL_TASKS, ids=_ids(ALL_TASKS))
def test_every_env_is_known(suite_name, task: Task):
    if task.kind == "board":
        from wrappers import GAMES

        assert task.env_id in GAMES
        for evaluation in task.evaluations:
            assert evaluation.opponent in {"random", "minimax", "negamax", "gnugo"}
            assert evaluation.opponent != "gnugo" or task.env_id == "go"
            assert evaluation.opponent != "minimax" or task.env_id == "tictactoe"
            assert evaluation.opponent != "negamax" or task.env_id == "connect_four"
        return
    if task.kind == "atari":
        ale_py = pytest.importorskip("ale_py")
        gymnasium.register_envs(ale_py)
    assert gymnasium.spec(task.env_id) is not None


@pytest.mark.parametrize("suite_name, task", ALL_TASKS, ids=_ids(ALL_TASKS))
def test_every_algorithm_has_a_class_and_hyperparameters(suite_name, task: Task):
    for algo in get_suite(suite_name).algos:
        if algo == "maskable_ppo":
            pytest.importorskip("sb3_contrib")
        assert algo in ALGOS
        assert algorithm_class(algo).__name__
        config = algo_config(algo, task)
        assert config.n_envs >= 1 and config.policy in {"MlpPolicy", "CnnPolicy"}


@pytest.mark.parametrize("suite_name, task", ALL_TASKS, ids=_ids(ALL_TASKS))
def test_protocols_are_consistent(suite_name, task: Task):
    assert 0 < task.eval_every <= task.budget and task.eval_episodes >= 1
    assert task.evaluations
    for evaluation in task.evaluations:
        assert evaluation.low < evaluation.high
        assert evaluation.low < evaluation.threshold <= evaluation.high
        assert find_evaluation(evaluation.name) == evaluation  # names are unambiguous across suites


def test_sliced_caps_the_budget_and_the_schedule():
    task = get_suite("atari100k").tasks[0]
    small = task.sliced(max_steps=500)
    assert (small.budget, small.eval_every, small.eval_episodes) == (500, 500, task.eval_episodes)
    assert task.sliced(eval_every=10, eval_episodes=1).eval_every == 10
    assert task.sliced().budget == task.budget == 100_000


def test_board_games_map_to_their_gymnasium_ids():
    board = {t.env_id: t for t in get_suite("boardgames").tasks}
    assert zoo_key(board["tictactoe"]) == "BoardGame/TicTacToe-v0"
    assert zoo_key(board["connect_four"]) == "BoardGame/ConnectFour-v0"


def test_zoo_settings_are_converted():
    config = zoo.zoo_config("ppo", "MountainCar-v0")
    assert config.normalize == {"gamma": 0.99} and config.n_envs == 16
    assert "normalize" not in config.kwargs and "n_envs" not in config.kwargs
    atari = zoo.zoo_config("a2c", "BreakoutNoFrameskip-v4")  # the Zoo's shared "atari" entry
    assert atari.frame_stack == 4 and atari.policy == "CnnPolicy"
    assert atari.kwargs["policy_kwargs"]["optimizer_kwargs"] == {"eps": 1e-5}
    assert zoo.zoo_hyperparams("dqn", "CartPole-v1")[2]["policy_kwargs"] == {"net_arch": [256, 256]}
    with pytest.raises(KeyError):
        zoo.zoo_config("ppo", "NoSuchEnv-v0")


def test_task_overrides_accept_the_zoos_encodings():
    """A ``lin_X`` override (``--muzero-kwargs``, suites.py) becomes a schedule, as in the Zoo's YAML."""
    board = {task.env_id: task for task in get_suite("boardgames").tasks}
    task = replace(board["tictactoe"], overrides={"muzero": {"learning_rate": "lin_3e-3", "td_steps": 3}})
    config = algo_config("muzero", task)
    schedule = config.kwargs["learning_rate"]
    assert callable(schedule) and schedule(1.0) == pytest.approx(3e-3) and schedule(0.0) == 0.0
    assert config.kwargs["td_steps"] == 3


def test_fallback_copy_matches_the_installed_zoo():
    pytest.importorskip("rl_zoo3")
    for algo, entries in zoo.FALLBACK.items():
        for env_id, copied in entries.items():
            installed, _ = zoo._lookup(algo, env_id)
            assert installed == copied, (
                f"benchmarks/zoo.py FALLBACK[{algo!r}][{env_id!r}] differs from rl_zoo3's"
            )


def test_fallback_serves_every_suite_env_without_the_zoo(monkeypatch):
    monkeypatch.setattr(
        zoo.importlib.resources, "files", lambda name: (_ for _ in ()).throw(ModuleNotFoundError(name))
    )
    for suite_name, task in ALL_TASKS:
        for algo in set(get_suite(suite_name).algos) & {"ppo", "dqn", "a2c"}:
            assert "FALLBACK" in algo_config(algo, task).source


def test_policy_kwargs_parser_refuses_code():
    assert zoo._eval_policy_kwargs("dict(a=dict(b=[1, 2]), c='x')") == {"a": {"b": [1, 2]}, "c": "x"}
    with pytest.raises(ValueError, match="unsupported name"):
        zoo._eval_policy_kwargs("dict(a=os.system)")
    with pytest.raises(ValueError):
        zoo._eval_policy_kwargs("__import__('os')")


def test_muzero_yml_agrees_with_the_tuned_cartpole_settings():
    """benchmarks/muzero.yml's CartPole-v1 entry must say what benchmarks/cartpole.py's MUZERO_CARTPOLE says."""
    from benchmarks.cartpole import MUZERO_CARTPOLE
    from benchmarks.muzero_config import load_muzero_yml

    entry = load_muzero_yml()["CartPole-v1"]
    assert entry.get("n_envs", 1) == MUZERO_CARTPOLE["n_envs"], "update n_envs in benchmarks/muzero.yml"
    for key, value in MUZERO_CARTPOLE["kwargs"].items():
        if callable(value):
            continue  # schedules cannot be compared; the harness uses MUZERO_CARTPOLE's anyway
        assert zoo.convert_zoo_value(key, entry.get(key)) == value, (
            f"update {key} in benchmarks/muzero.yml (CartPole-v1)"
        )
    extra = set(entry) - set(MUZERO_CARTPOLE["kwargs"]) - {"n_envs", "n_timesteps", "policy"}
    assert not extra, f"benchmarks/muzero.yml sets {extra} for CartPole-v1 but MUZERO_CARTPOLE does not"
