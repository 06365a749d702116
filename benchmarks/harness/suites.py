"""Every benchmark suite, declared in one place: what is trained, for how long, and how it is measured.

A suite is a list of tasks and algorithms. A task is one training set-up (an env, a budget of
env steps, an evaluation every ``eval_every`` steps of ``eval_episodes`` deterministic episodes)
and the evaluations it reports: one per env for single-agent envs, one per opponent for board
games, whose learners are trained once and measured against each opponent.

Each evaluation names a threshold ("solved", for the steps- and seconds-to-threshold columns)
and two reference scores, ``low`` (a uniformly random policy, measured here over 100 episodes)
and ``high`` (the threshold, the best possible score, or a published score: Atari's human
scores, MinAtar's DQN), which normalize returns so envs can be aggregated (the report's "all
envs" IQM).

Budgets are the same for every algorithm of a task. Board-game steps are the learner's own
decisions: MuZero's self-play counts both sides' moves (it decides both), MaskablePPO's versus
env counts its own moves only (the opponent moves inside the env).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

TaskKind = Literal["gym", "atari", "minatar", "board"]


@dataclass(frozen=True)
class Evaluation:
    """One curve of the report: an eval env (and, for board games, an opponent)."""

    name: str  # the CSV's ``env`` column
    threshold: float
    low: float
    high: float
    opponent: str | None = None  # board games: "random", "minimax" (tic-tac-toe), "negamax" (connect four)


@dataclass(frozen=True)
class Task:
    """One training set-up; ``env_id`` is a Gymnasium id (gym, atari, minatar) or a board-game name."""

    name: str
    kind: TaskKind
    env_id: str
    budget: int
    eval_every: int
    eval_episodes: int
    evaluations: tuple[Evaluation, ...]
    # settings for algorithms the RL Zoo has no entry for, and documented departures from it
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # board games: make_board_game's settings (Go's board_size); minatar: gymnasium.make's (the step cap)
    game_kwargs: dict[str, Any] = field(default_factory=dict)
    # the hyperparameter entry to use where the tables have none for env_id (MinAtar: "atari")
    zoo_fallback: str | None = None

    def sliced(
        self, max_steps: int | None = None, eval_every: int | None = None, eval_episodes: int | None = None
    ) -> Task:
        """The same task with a smaller budget (``--max-steps``) or another evaluation schedule."""
        budget = min(self.budget, max_steps) if max_steps else self.budget
        every = min(eval_every or self.eval_every, budget)
        return replace(
            self, budget=budget, eval_every=every, eval_episodes=eval_episodes or self.eval_episodes
        )


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    tasks: tuple[Task, ...]
    algos: tuple[str, ...]
    seeds: int = 3
    jobs: int = 1  # default number of parallel runs


def gym_task(
    env_id: str,
    budget: int,
    eval_every: int,
    threshold: float,
    low: float,
    high: float,
    eval_episodes: int = 20,
) -> Task:
    return Task(
        env_id, "gym", env_id, budget, eval_every, eval_episodes, (Evaluation(env_id, threshold, low, high),)
    )


def atari_task(env_id: str, random_score: float, human_score: float, budget: int = 100_000) -> Task:
    """Atari 100k: thresholds are the human scores of the Atari 100k literature (Kaiser et al., 2020)."""
    return Task(
        env_id,
        "atari",
        env_id,
        budget,
        eval_every=20_000,
        eval_episodes=8,
        evaluations=(Evaluation(env_id, human_score, random_score, human_score),),
        # the Zoo's DQN waits 100k steps before learning: Atari 100k's usual 1,600 instead
        overrides={"dqn": {"learning_starts": 1_600}},
    )


# MinAtar (Young & Tian, 2019): MuZero takes its muzero.yml entries. The RL Zoo has no MinAtar
# entries, so DQN and PPO take the Zoo's shared Atari entry (``zoo_fallback="atari"``) with
# these departures, which the report lists as task overrides:
# - policy_kwargs: SB3's NatureCNN needs frames of 36 pixels or more, so both read MinAtar's
#   10x10 grids with benchmarks.harness.minatar_cnn.MinAtarCNN (conv 3x3 of 16 channels, ReLU,
#   linear 128, ReLU: the MinAtar paper's DQN network); PPO's heads read its features directly
#   (net_arch=[]), as they read NatureCNN's in the Zoo's Atari set-up.
# - frame_stack: none (the Zoo stacks 4 Atari frames): MinAtar's trail channels show where objects
#   move, as in the MinAtar paper and MuZero's entries. The Zoo's AtariWrapper (frame skip,
#   84x84 grey frames, episodic life) is for the ALE's frames and is not applied either.
# - DQN's learning_starts: the Zoo's 100,000 steps are 1% of its 10M-step Atari budget; 1% of
#   100k is 1,000. Its other numbers already fit 100k: exploration_fraction (0.1) is a fraction of
#   the run, so epsilon anneals over the first 10k steps; buffer_size (100k) holds the whole run;
#   target_update_interval (1,000 steps) updates the target 100 times; train_freq 4 gives 25k
#   gradient steps.
# - PPO keeps the Zoo's Atari numbers: 8 envs x 128 steps per rollout (97 updates in 100k), 4
#   epochs of batch 256; its linear schedules run over the task's budget.
MINATAR_CNN = "dict(features_extractor_class=MinAtarCNN)"
MINATAR_OVERRIDES: dict[str, dict[str, Any]] = {
    "dqn": {"frame_stack": None, "learning_starts": 1_000, "policy_kwargs": MINATAR_CNN},
    "ppo": {"frame_stack": None, "policy_kwargs": "dict(features_extractor_class=MinAtarCNN, net_arch=[])"},
}
# MinAtar has no step limit besides Freeway's 2,500 frames; a deterministic policy can keep a
# Breakout ball in play without scoring, so every episode is cut at 10,000 steps (random play
# lasts 10 steps in Breakout and 70 in Asterix).
MINATAR_MAX_EPISODE_STEPS = 10_000


def minatar_task(game: str, low: float, high: float, budget: int = 100_000) -> Task:
    """MinAtar ``game`` (``"Breakout"``, the env ``MinAtar/Breakout-v1``: minimal action set, sticky
    actions 0.1) for ``budget`` env steps, evaluated every 10k steps on 10 episodes.

    ``low`` and ``high`` are the reference scores of the normalization; the threshold is half of
    ``high``. Needs ``pip install minatar``.
    """
    env_id = f"MinAtar/{game}-v1"
    return Task(
        env_id,
        "minatar",
        env_id,
        budget,
        eval_every=10_000,
        eval_episodes=10,
        evaluations=(Evaluation(env_id, high / 2, low, high),),
        overrides=MINATAR_OVERRIDES,
        game_kwargs={"max_episode_steps": MINATAR_MAX_EPISODE_STEPS},
        zoo_fallback="atari",
    )


def board_task(
    game: str,
    opponents: dict[str, float],
    budget: int,
    eval_every: int,
    eval_episodes: int = 50,
    name: str | None = None,
    **game_kwargs: Any,
) -> Task:
    """A board game trained once and measured against each opponent (name -> threshold).

    Returns are +1 win, 0 draw, -1 loss for the learner, who plays first and second in turn.
    Reference scores: -1 (always losing) to +1 (always winning).
    """
    name = name or game
    evaluations = tuple(
        Evaluation(f"{name}-vs-{opponent}", threshold, -1.0, 1.0, opponent)
        for opponent, threshold in opponents.items()
    )
    # the RL Zoo has no board games: MaskablePPO keeps sb3-contrib's defaults, on 8 envs
    maskable = {"maskable_ppo": {"n_envs": 8, "policy": "MlpPolicy"}}
    return Task(name, "board", game, budget, eval_every, eval_episodes, evaluations, maskable, game_kwargs)


# The classic suite measures the low-data regime MuZero is built for: budgets of 20k-60k env
# steps (a tenth to a third of the RL Zoo's DQN budgets), which also keeps MuZero's three seeds
# (30-90 env steps per second per core here, search and training included) within a few hours
# of a 2-core machine. Longer runs: raise ``budget`` here or pass ``--max-steps`` to cut it.
# ``low``: returns of a uniformly random policy (100 episodes, seeds 0-99), for normalization.
CARTPOLE = gym_task("CartPole-v1", 20_000, 1_000, threshold=475, low=23.7, high=500)
ACROBOT = gym_task("Acrobot-v1", 30_000, 1_500, threshold=-100, low=-497.1, high=-100)
MOUNTAINCAR = gym_task("MountainCar-v0", 40_000, 2_000, threshold=-110, low=-200, high=-110)
LUNARLANDER = gym_task("LunarLander-v3", 60_000, 3_000, threshold=200, low=-192.0, high=200)

# MinAtar's reference scores. ``low``: a uniformly random policy (``env.action_space.sample()``),
# 100 episodes on env seeds 0-99, sticky actions on, mean return: Breakout 0.43, Asterix 0.49,
# Freeway 0.31 (standard errors 0.07, 0.08, 0.05). ``high``: the MinAtar paper's DQN after 5M
# frames (Young & Tian, 2019), read off the learning curves in MinAtar's README and rounded
# (that DQN played the full set of 6 actions; the -v1 envs here have the minimal set).
MINATAR_BREAKOUT = minatar_task("Breakout", low=0.43, high=10.0)
MINATAR_ASTERIX = minatar_task("Asterix", low=0.49, high=17.0)
MINATAR_FREEWAY = minatar_task("Freeway", low=0.31, high=50.0)

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            "smoke",
            "Minutes: MuZero and PPO on CartPole-v1 with a small budget (what `make demo` runs).",
            (
                Task(
                    "CartPole-v1",
                    "gym",
                    "CartPole-v1",
                    budget=4_000,
                    eval_every=1_000,
                    eval_episodes=10,
                    evaluations=CARTPOLE.evaluations,
                ),
            ),
            ("muzero", "ppo"),
            seeds=2,
            jobs=2,
        ),
        Suite(
            "classic",
            "Classic control and Box2D: MuZero against the RL Zoo's PPO, DQN and A2C.",
            (CARTPOLE, ACROBOT, MOUNTAINCAR, LUNARLANDER),
            ("muzero", "ppo", "dqn", "a2c"),
        ),
        Suite(
            "boardgames",
            "Tic-tac-toe and connect four against random and minimax opponents: "
            "MuZero (self-play) against MaskablePPO (trained against random).",
            (
                board_task("tictactoe", {"random": 0.8, "minimax": 0.0}, 50_000, 5_000),
                board_task("connect_four", {"random": 0.8, "negamax": 0.5}, 100_000, 10_000),
            ),
            ("muzero", "maskable_ppo"),
        ),
        Suite(
            "go9x9",
            "Go 9x9 (komi 7.5) against random and GNU Go level 1: MuZero (self-play) against "
            "MaskablePPO (trained against random). Hours on a CPU; benchmarks.boardgame_play "
            "runs MuZero alone for a wall-clock budget.",
            (
                board_task(
                    "go",
                    {"random": 0.9, "gnugo": 0.0},
                    100_000,
                    10_000,
                    20,
                    name="go9x9",
                    board_size=9,
                    pass_when_settled=True,  # against self-play's pass-pass collapse (wrappers.pass_rule)
                ),
            ),
            ("muzero", "maskable_ppo"),
        ),
        Suite(
            "atari100k",
            "Pong and Breakout at 100k agent steps (400k frames), for a GPU machine; "
            "on a CPU, slice it with --max-steps.",
            (
                atari_task("PongNoFrameskip-v4", random_score=-20.7, human_score=14.6),
                atari_task("BreakoutNoFrameskip-v4", random_score=1.7, human_score=30.5),
            ),
            ("muzero", "ppo", "dqn"),
        ),
        Suite(
            "minatar",
            "MinAtar Breakout, Asterix and Freeway at 100k env steps: MuZero (muzero.yml) against DQN "
            "and PPO (the RL Zoo's Atari settings, MinAtarCNN features, no frame stack; see suites.py).",
            (MINATAR_BREAKOUT, MINATAR_ASTERIX, MINATAR_FREEWAY),
            ("muzero", "dqn", "ppo"),
        ),
    )
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ValueError(f"Unknown suite {name!r}; known suites: {', '.join(SUITES)}")
    return SUITES[name]


def find_evaluation(name: str) -> Evaluation | None:
    """The evaluation called ``name`` in any suite (the report's thresholds and reference scores)."""
    for suite in SUITES.values():
        for task in suite.tasks:
            for evaluation in task.evaluations:
                if evaluation.name == name:
                    return evaluation
    return None
