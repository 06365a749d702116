"""MuZero's search space for the RL Zoo's hyperparameter optimization (``--optimize``, Optuna).

``sample_muzero_params`` has the signature of the Zoo's samplers
(``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER``); ``benchmarks.harness.rlzoo.register`` adds it
under ``"muzero"``. Each trial draws:

- ``learning_rate``: log-uniform in [1e-4, 1e-2] (MuZero's default is 3e-3);
- ``batch_size`` in {64, 128, 256}, ``unroll_steps`` in {3, 5, 8}, ``td_steps`` in {5, 10, 25, 50};
- ``num_simulations`` in {10, 25, 50} (``predict`` searches as deep unless ``play_kwargs`` says);
- ``replay_ratio``: gradient steps per env step, log-uniform in [0.1, 1.0];
- ``value_loss_coef`` in {0.25, 0.5, 1.0}, ``discount`` in {0.99, 0.995, 0.997, 0.999};
- grouped settings, named ``group.key``: ``reanalyze_kwargs.fraction`` in {0, 0.5, 1},
  ``learner_kwargs.consistency_loss_coef`` in {0, 0.5, 2},
  ``replay_buffer_kwargs.priority_alpha`` in {0, 0.6, 1}.

The Zoo replaces an entry's settings with the sampled ones key by key, which would drop the rest
of a group (``reanalyze_kwargs: {fraction: 1.0, search: false}``) if a group were sampled whole;
so grouped settings are sampled under ``group.key`` names, and MuZero as the Zoo builds it
(``benchmarks.harness.rlzoo.ZooMuZero``) merges each into its group. The trial's parameters are
these names, so the best trial reads as a ``muzero.yml`` entry (``learner_kwargs.
consistency_loss_coef: 0.5`` is ``learner_kwargs: {consistency_loss_coef: 0.5}``).

The space is for single-agent envs: the Zoo applies the samples over its ``-params`` too, so the
discount choices would replace a board game's ``discount: 1.0``, and the Zoo would score a
board game's trials on self-play games, whose returns say nothing of their strength.
"""

from __future__ import annotations

from typing import Any

SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "batch_size": (64, 128, 256),
    "unroll_steps": (3, 5, 8),
    "td_steps": (5, 10, 25, 50),
    "num_simulations": (10, 25, 50),
    "value_loss_coef": (0.25, 0.5, 1.0),
    "discount": (0.99, 0.995, 0.997, 0.999),
    "reanalyze_kwargs.fraction": (0.0, 0.5, 1.0),
    "learner_kwargs.consistency_loss_coef": (0.0, 0.5, 2.0),
    "replay_buffer_kwargs.priority_alpha": (0.0, 0.6, 1.0),
}
"""Settings drawn from a list of choices (name -> choices); the two log-uniform ranges follow."""
LOG_UNIFORM: dict[str, tuple[float, float]] = {"learning_rate": (1e-4, 1e-2), "replay_ratio": (0.1, 1.0)}
"""Settings drawn log-uniformly (name -> (low, high))."""


def sample_muzero_params(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """One trial's MuZero settings (an ``optuna.Trial``); grouped ones as ``group.key`` names.

    ``n_actions``, ``n_envs`` and ``additional_args`` are the Zoo's sampler arguments; MuZero's
    space does not depend on them.
    """
    params: dict[str, Any] = {
        name: trial.suggest_float(name, low, high, log=True) for name, (low, high) in LOG_UNIFORM.items()
    }
    for name, choices in SEARCH_SPACE.items():
        params[name] = trial.suggest_categorical(name, list(choices))
    return params


def convert_muzero_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters as the Zoo's settings (``HYPERPARAMS_CONVERTER``): the names are
    MuZero's already (``group.key`` for grouped settings), so this is a copy."""
    return dict(params)
