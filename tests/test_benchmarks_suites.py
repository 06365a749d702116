"""The suite definitions are valid: every env, opponent and algorithm is known and has settings."""

from dataclasses import replace

import gymnasium
import pytest

from benchmarks.harness import zoo
from benchmarks.harness.suites import SUITES, Task, find_evaluation, get_suite
from benchmarks.harness.tasks import ALGOS, algo_config, algorithm_class, zoo_key

ALL_TASKS = [(suite.name, task) for suite in SUITES.values() for task in suite.tasks]


def _ids(pairs):
    return [f"{suite}-{task.name}" for suite, task in pairs]


def test_the_suites_exist_with_their_algorithms():
    assert set(SUITES) == {"smoke", "classic", "boardgames", "go9x9", "atari100k", "minatar"}
    assert set(get_suite("smoke").algos) == {"muzero", "ppo"}
    assert set(get_suite("classic").algos) == {"muzero", "ppo", "dqn", "a2c"}
    assert set(get_suite("boardgames").algos) == {"muzero", "maskable_ppo"}
    assert set(get_suite("minatar").algos) == {"muzero", "dqn", "ppo"}
    assert [t.name for t in get_suite("minatar").tasks] == [
        "MinAtar/Breakout-v1",
        "MinAtar/Asterix-v1",
        "MinAtar/Freeway-v1",
    ]
    assert {t.budget for t in get_suite("minatar").tasks} == {100_000} and get_suite("minatar").seeds == 3
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
    if task.kind == "minatar":
        minatar_gym = pytest.importorskip("minatar.gym")
        if task.env_id not in gymnasium.registry:
            minatar_gym.register_envs()
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


def test_a_task_override_sets_the_zoos_normalization():
    """``normalize`` (``--muzero-kwargs`` of the diagnostics) wraps the envs, as the Zoo's key does,
    and never reaches the constructor."""
    acrobot = {task.env_id: task for task in get_suite("classic").tasks}["Acrobot-v1"]
    assert algo_config("muzero", acrobot).normalize is None
    on = algo_config("muzero", replace(acrobot, overrides={"muzero": {"normalize": {"gamma": 0.997}}}))
    assert on.normalize == {"gamma": 0.997} and "normalize" not in on.kwargs
    off = algo_config("ppo", replace(acrobot, overrides={"ppo": {"normalize": False}}))
    assert off.normalize is None and "normalize" not in off.kwargs
    # returns are normalized with the algorithm's own discount: SB3's gamma, MuZero's discount
    ppo = algo_config("ppo", replace(acrobot, overrides={"ppo": {"normalize": True}}))
    assert ppo.normalize == {"gamma": ppo.kwargs["gamma"]}
    muzero = algo_config(
        "muzero", replace(acrobot, overrides={"muzero": {"normalize": True, "discount": 0.995}})
    )
    assert muzero.normalize == {"gamma": 0.995}
    default = algo_config("muzero", replace(acrobot, overrides={"muzero": {"normalize": True}}))
    assert default.normalize == {"gamma": 0.997}  # MuZero's default discount


@pytest.mark.parametrize("entry, gamma", [({}, 0.997), ({"discount": 0.95}, 0.95)])
def test_normalize_in_muzero_yml_discounts_returns_as_muzero_does(tmp_path, monkeypatch, entry, gamma):
    import yaml

    from benchmarks.harness import muzero_config

    path = tmp_path / "muzero.yml"
    path.write_text(yaml.safe_dump({"CartPole-v1": {"policy": "MlpPolicy", "normalize": True, **entry}}))
    read = muzero_config.muzero_hyperparams
    monkeypatch.setattr(muzero_config, "muzero_hyperparams", lambda: read(path))
    assert zoo.zoo_config("muzero", "CartPole-v1").normalize == {"gamma": gamma}
    cartpole = {task.env_id: task for task in get_suite("classic").tasks}["CartPole-v1"]
    overridden = algo_config("muzero", replace(cartpole, overrides={"muzero": {"normalize": True}}))
    assert overridden.normalize == {"gamma": gamma}  # the task-override path agrees


def test_fallback_copy_matches_the_installed_zoo():
    pytest.importorskip("rl_zoo3")
    for algo, entries in zoo.FALLBACK.items():
        for env_id, copied in entries.items():
            installed, _ = zoo._lookup(algo, env_id)
            assert installed == copied, (
                f"benchmarks/harness/zoo.py FALLBACK[{algo!r}][{env_id!r}] differs from rl_zoo3's"
            )


def test_fallback_serves_every_suite_env_without_the_zoo(monkeypatch):
    monkeypatch.setattr(
        zoo.importlib.resources, "files", lambda name: (_ for _ in ()).throw(ModuleNotFoundError(name))
    )
    for suite_name, task in ALL_TASKS:
        for algo in set(get_suite(suite_name).algos) & {"ppo", "dqn", "a2c"}:
            assert "FALLBACK" in algo_config(algo, task).source


def test_dict_source_parser_refuses_code():
    assert zoo._eval_dict_source("dict(a=dict(b=[1, 2]), c='x')") == {"a": {"b": [1, 2]}, "c": "x"}
    with pytest.raises(ValueError, match="unsupported name"):
        zoo._eval_dict_source("dict(a=os.system)")
    with pytest.raises(ValueError):
        zoo._eval_dict_source("__import__('os')")


def test_grouped_settings_are_converted_inside_the_group():
    from stable_baselines3.common.utils import LinearSchedule

    converted = zoo.convert_zoo_value("self_play_kwargs", {"temperature": "lin_1.0", "sampling_moves": 4})
    assert isinstance(converted["temperature"], LinearSchedule) and converted["sampling_moves"] == 4
    assert converted["temperature"](1.0) == 1.0 and converted["temperature"](0.0) == 0.0
    assert zoo.convert_zoo_value("search_kwargs", "dict(dirichlet_alpha=0.3)") == {"dirichlet_alpha": 0.3}
    assert zoo.convert_zoo_value("learning_rate", "lin_3e-3")(0.5) == pytest.approx(1.5e-3)


def test_overrides_merge_grouped_settings_key_by_key():
    base = {"td_steps": 9, "self_play_kwargs": {"temperature": 1.0, "random_opening_moves": 3}}
    merged = zoo.merge_settings(base, {"self_play_kwargs": {"temperature": 0.5}, "td_steps": 5})
    assert merged == {"td_steps": 5, "self_play_kwargs": {"temperature": 0.5, "random_opening_moves": 3}}
    assert base["self_play_kwargs"]["temperature"] == 1.0  # the base is not changed


def test_a_task_override_keeps_the_rest_of_the_yml_group():
    task = next(t for t in get_suite("boardgames").tasks if t.env_id == "tictactoe")
    yml = algo_config("muzero", task).kwargs
    overridden = replace(
        task, overrides={**task.overrides, "muzero": {"self_play_kwargs": {"sampling_moves": 2}}}
    )
    kwargs = algo_config("muzero", overridden).kwargs
    assert kwargs["self_play_kwargs"] == {**yml.get("self_play_kwargs", {}), "sampling_moves": 2}


def test_muzero_yml_uses_the_grouped_settings():
    from benchmarks.harness.muzero_config import load_muzero_yml, muzero_hyperparams

    table = muzero_hyperparams()  # checks every entry
    assert table == load_muzero_yml()
    assert {"CartPole-v1", "BoardGame/TicTacToe-v0", "BoardGame/ConnectFour-v0", "atari"} <= set(table)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"temperature": 1.0}, r"self_play_kwargs: \{temperature: 1.0\}"),
        ({"reanalyze_fraction": 0.5}, r"reanalyze_kwargs: \{fraction: 0.5\}"),
        ({"play_simulations": 100}, r"play_kwargs: \{num_simulations: 100\}"),
        ({"play_symmetries": True}, "no longer has play_symmetries"),
        ({"cut_returns_at_exploration": True}, "no longer has cut_returns_at_exploration"),
        ({"support_size": 10}, "policy_kwargs"),
    ],
)
def test_muzero_yml_refuses_the_old_flat_names(tmp_path, entry, message):
    import yaml

    from benchmarks.harness.muzero_config import muzero_hyperparams

    path = tmp_path / "muzero.yml"
    path.write_text(yaml.safe_dump({"CartPole-v1": {"policy": "MlpPolicy", **entry}}))
    with pytest.raises(ValueError, match=message):
        muzero_hyperparams(path)


def test_muzero_yml_takes_grouped_settings_as_optimize_prints_them(tmp_path, monkeypatch):
    import yaml

    from benchmarks.harness import muzero_config

    path = tmp_path / "muzero.yml"
    entry = {
        "policy": "MlpPolicy",
        "learner_kwargs": {"weight_decay": 0.0},
        "learner_kwargs.reward_loss_coef": 2.0,
    }
    path.write_text(yaml.safe_dump({"CartPole-v1": entry}))
    read = muzero_config.muzero_hyperparams
    monkeypatch.setattr(muzero_config, "muzero_hyperparams", lambda: read(path))
    folded = zoo._table("muzero")[0]["CartPole-v1"]
    assert folded["learner_kwargs"] == {"weight_decay": 0.0, "reward_loss_coef": 2.0}
    assert "learner_kwargs.reward_loss_coef" not in folded


def test_cartpole_reads_muzero_settings_from_the_yml():
    from benchmarks.cartpole import muzero_settings

    config = zoo.zoo_config("muzero", "CartPole-v1")
    assert muzero_settings() == (config.n_envs, config.kwargs)
    n_envs, kwargs = muzero_settings({"reanalyze_kwargs": {"fraction": 0.5}, "td_steps": 7}, n_envs=3)
    assert n_envs == 3 and kwargs["td_steps"] == 7
    assert kwargs["reanalyze_kwargs"] == {**config.kwargs.get("reanalyze_kwargs", {}), "fraction": 0.5}
