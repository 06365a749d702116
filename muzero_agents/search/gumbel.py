"""Gumbel MuZero's batched search (Danihelka et al., 2022, "Policy improvement by planning with
Gumbel"), on the same tree engine as ``muzero_search``.

At the root, Gumbel-top-k: k = min(max_num_considered_actions, legal actions) actions with the
largest g + logits (g ~ Gumbel) are considered, and sequential halving spreads the simulation
budget over them, keeping the better half by g + logits + sigma(q) each phase. Inside the tree
selection is deterministic (the improved-policy rule). The training target is the completed-Q
improved policy softmax(logits + sigma(completed Q)), which improves on the prior even with very
few simulations. Rule details in ``_gumbel_rules``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from muzero_agents.search import _driver
from muzero_agents.search._checks import check_root
from muzero_agents.search._driver import RecurrentFn, Roots, Rule
from muzero_agents.search._engine import GUMBEL
from muzero_agents.search._gumbel_rules import improved_policy_and_action
from muzero_agents.search._result import SearchResult
from muzero_agents.search._tree import Tree


def halving_targets(num_considered: int, num_simulations: int) -> list[int]:
    """Sequential halving as a sequence: the visit count the root action of each simulation has.

    The budget is split into ceil(log2(k)) phases; in a phase each of the m remaining actions
    gets max(1, n // (phases * m)) more visits, one round at a time, then m halves (at least 2).
    Simulation s visits the best remaining action whose visit count is ``targets[s]``.
    """
    if num_considered <= 1:
        return list(range(num_simulations))
    phases = math.ceil(math.log2(num_considered))
    remaining = num_considered
    visits = 0
    targets: list[int] = []
    while len(targets) < num_simulations:
        rounds = max(1, num_simulations // (phases * remaining))
        for _ in range(rounds):
            targets.extend([visits] * remaining)
            visits += 1
        remaining = max(2, remaining // 2)
    return targets[:num_simulations]


@functools.lru_cache(maxsize=32)
def gumbel_schedule(max_considered: int, num_simulations: int) -> np.ndarray:
    """Targets for every k <= ``max_considered``: int32 [max_considered + 1, num_simulations]."""
    table = np.zeros((max_considered + 1, num_simulations), dtype=np.int32)
    for k in range(1, max_considered + 1):
        table[k] = halving_targets(k, num_simulations)
    table.setflags(write=False)
    return table


def gumbel_muzero_search(
    prior_logits: np.ndarray,
    root_value: np.ndarray,
    root_embedding: Any,
    recurrent_fn: RecurrentFn,
    num_simulations: int,
    legal_mask: np.ndarray | None = None,
    discount: float = 0.997,
    two_player: bool = False,
    max_num_considered_actions: int = 16,
    gumbel_scale: float = 1.0,
    c_visit: float = 50.0,
    c_scale: float = 0.1,
    rng: np.random.Generator | None = None,
) -> SearchResult:
    """Gumbel MuZero search from B roots; same inputs and ``SearchResult`` as ``muzero_search``.

    The first eight arguments mean what they mean for ``muzero_search``; the others:

    - ``max_num_considered_actions``: m, the most root actions sequential halving considers.
    - ``gumbel_scale``: scale of the root Gumbel noise; 0 gives a deterministic search (for
      evaluation), 1 samples actions as the paper does when acting.
    - ``c_visit``, ``c_scale``: sigma(q) = (c_visit + max_a N(a)) * c_scale * q for q in [0, 1]
      (mctx's defaults; the paper's experiments used c_scale = 1).

    ``policy`` is the completed-Q improved policy (the training target, 0 on masked actions)
    and ``action`` the survivor of sequential halving: the best g + logits + sigma(q) among the
    most visited actions. No Dirichlet noise and no temperature: the Gumbel noise explores.
    """
    logits, values, legal = check_root(prior_logits, root_value, root_embedding, legal_mask, num_simulations)
    check_gumbel_settings(discount, max_num_considered_actions, gumbel_scale, c_visit, c_scale)
    rng = np.random.default_rng() if rng is None else rng
    params = _driver.make_params(discount, two_player, c_visit=c_visit, c_scale=c_scale)
    rule = gumbel_rule(params, logits, legal, max_num_considered_actions, gumbel_scale, num_simulations, rng)
    tree = _driver.search(Roots(logits, values, legal, root_embedding), recurrent_fn, num_simulations, rule)
    visits, q_values, root_values = _driver.read_root(tree)
    policy, action = improved_policy(tree, rule, logits, legal)
    return SearchResult(action, visits, policy, root_values, q_values)


def check_gumbel_settings(
    discount: float, max_num_considered_actions: int, gumbel_scale: float, c_visit: float, c_scale: float
) -> None:
    """Validate the settings only the Gumbel search has (and the discount)."""
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}")
    if int(max_num_considered_actions) < 1:
        raise ValueError(f"max_num_considered_actions must be >= 1, got {max_num_considered_actions}")
    if gumbel_scale < 0.0 or c_visit < 0.0 or c_scale < 0.0:
        raise ValueError(
            f"gumbel_scale, c_visit and c_scale must be >= 0, got {gumbel_scale}, {c_visit} and {c_scale}"
        )


def gumbel_rule(
    params: np.ndarray,
    logits: np.ndarray,
    legal: np.ndarray,
    max_num_considered_actions: int,
    gumbel_scale: float,
    num_simulations: int,
    rng: np.random.Generator,
) -> Rule:
    """The root's Gumbel-top-k inputs: g + logits per action (g ~ Gumbel, times ``gumbel_scale``),
    the number k of considered actions per tree, and the halving schedule."""
    batch, num_actions = logits.shape
    gumbel = rng.gumbel(size=(batch, num_actions)) if gumbel_scale > 0 else 0.0
    root_score = logits.astype(np.float64) + gumbel_scale * gumbel
    max_considered = min(int(max_num_considered_actions), num_actions)
    num_legal = legal.sum(axis=1).astype(np.int32)
    num_considered = np.minimum(num_legal, max_considered)
    schedule = gumbel_schedule(max_considered, int(num_simulations))
    return Rule(GUMBEL, params, root_score, schedule, num_considered, num_legal)


def improved_policy(
    tree: Tree, rule: Rule, logits: np.ndarray, legal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(completed-Q improved policy float32 [B, A], the halving survivor int64 [B]) of the roots."""
    batch, num_actions = logits.shape
    policy = np.empty((batch, num_actions), dtype=np.float32)
    action = np.empty(batch, dtype=np.int64)
    improved_policy_and_action(
        tree.nodes,
        tree.children,
        tree.children_index,
        tree.children_prior,
        rule.params,
        logits,
        rule.root_score,
        legal,
        rule.num_legal,
        policy,
        action,
        tree.scratch,
    )
    return policy, action
