"""MuZero's batched pUCT search (Schrittwieser et al., 2020), one tree per root, B roots at once.

``muzero_search`` arguments (``gumbel_muzero_search`` shares the first eight):

- ``prior_logits`` [B, A] and ``root_value`` [B]: the initial inference's outputs at the roots.
- ``root_embedding`` [B, *S]: the root hidden states, torch tensor or numpy array.
- ``recurrent_fn``: ``(embedding [B, *S], action int64 [B]) -> (reward f32 [B], value f32 [B],
  prior_logits f32 [B, A], next_embedding [B, *S])``, called once per simulation for all B
  trees. ``embedding`` is a reused buffer, valid only during the call.
- ``num_simulations``: simulations per root (>= 1); each adds one node to every tree.
- ``legal_mask`` [B, A] bool, root only: priors are softmaxed over legal actions and illegal
  actions are never selected. Inside the tree every action is allowed.
- ``discount``: per-step discount of rewards and values.
- ``two_player``: zero-sum alternating turns (negamax): the per-ply discount becomes
  ``-discount`` since each node's value is from its own player-to-move's view.
- ``pb_c_init``, ``pb_c_base``: the pUCT constants c1 and c2.
- ``dirichlet_alpha``, ``dirichlet_fraction``: root noise over legal actions (fraction 0: off).
- ``temperature``: the action is sampled from visits^(1/temperature); 0 takes the most
  visited (ties to the lowest index).
- ``rng``: numpy Generator for noise and sampling (a fresh one if None).

Semantics (the paper's pseudocode with these explicit choices):

- A node's value_sum is from the view of the player to move there; its reward is the reward of
  the transition into it, from the mover's view. With ``disc`` the per-ply discount,
  Q(child) = reward + disc * value_sum / visits.
- The root is expanded from ``prior_logits`` and counts as visited once with ``root_value``
  (as mctx does), so the first selection already follows the priors. The min-max stats start
  empty (the root value enters them at the first backup).
- pUCT: Q min-max normalized per tree (raw Q while max <= min), unvisited children score
  Q = 0, ties go to the lowest action index.
- Backup with g = leaf value: at each node up to the root, value_sum += g, visits += 1, the
  min-max stats see reward + disc * value, then g = reward + disc * g.

The tree arrays and hidden-state buffers are cached per shape (and thread) and reused by later
searches, so a search allocates nothing per simulation. Memory: 8 bytes per node and action
([B, N, A] int32 child index + float32 prior), plus the hidden states of all B * N nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from muzero_agents.search import _driver
from muzero_agents.search._checks import check_root, check_settings
from muzero_agents.search._driver import RecurrentFn, Roots, Rule
from muzero_agents.search._engine import PUCT
from muzero_agents.search._result import SearchResult, policy_and_action_from_visits


def muzero_search(
    prior_logits: np.ndarray,
    root_value: np.ndarray,
    root_embedding: Any,
    recurrent_fn: RecurrentFn,
    num_simulations: int,
    legal_mask: np.ndarray | None = None,
    discount: float = 0.997,
    two_player: bool = False,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    dirichlet_alpha: float = 0.25,
    dirichlet_fraction: float = 0.25,
    temperature: float = 1.0,
    rng: np.random.Generator | None = None,
) -> SearchResult:
    """MuZero's pUCT search from B roots; returns actions, visits, policy target, values, Q.

    The arguments and the search's exact semantics are described in the module docstring.
    """
    logits, values, legal = check_root(prior_logits, root_value, root_embedding, legal_mask, num_simulations)
    check_settings(discount, pb_c_init, pb_c_base, dirichlet_alpha, dirichlet_fraction, temperature)
    rng = np.random.default_rng() if rng is None else rng
    params = _driver.make_params(discount, two_player, pb_c_init, pb_c_base, max_visits=num_simulations + 1)
    roots = Roots(logits, values, legal, root_embedding)
    if dirichlet_fraction > 0:
        roots = dirichlet_roots(roots, dirichlet_alpha, float(dirichlet_fraction), rng)
    tree = _driver.search(roots, recurrent_fn, num_simulations, Rule(PUCT, params))
    visits, q_values, root_values = _driver.read_root(tree)
    policy, action = policy_and_action_from_visits(visits, temperature, rng)
    return SearchResult(action, visits, policy, root_values, q_values)


def dirichlet_roots(roots: Roots, alpha: float, fraction: float, rng: np.random.Generator) -> Roots:
    """``roots`` with Dirichlet(alpha) noise replacing ``fraction`` of each root prior.

    The noise is drawn as Gamma(alpha) per action; ``_engine.init_roots`` normalizes the draws
    over each root's legal actions, which makes them Dirichlet(alpha) over those actions.
    """
    gammas = rng.standard_gamma(alpha, size=roots.logits.shape)
    return Roots(roots.logits, roots.value, roots.legal, roots.embedding, gammas, fraction)
