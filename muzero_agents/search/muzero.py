"""MuZero's batched pUCT search (Schrittwieser et al., 2020), one tree per root, B roots at once."""

from __future__ import annotations

from typing import Any

import numpy as np

from muzero_agents.search import _driver
from muzero_agents.search._checks import check_root, check_settings
from muzero_agents.search._driver import RecurrentFn
from muzero_agents.search._engine import PUCT
from muzero_agents.search._result import SearchResult, visit_policy_and_action
from muzero_agents.search._tree import DISC


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

    Args:
        prior_logits: [B, A] root policy logits (from the initial inference).
        root_value: [B] root values (from the initial inference).
        root_embedding: [B, *S] root hidden states, torch tensor or numpy array.
        recurrent_fn: ``(embedding [B, *S], action int64 [B]) -> (reward f32 [B], value f32 [B],
            prior_logits f32 [B, A], next_embedding [B, *S])``, called once per simulation for
            all B trees. ``embedding`` is a reused buffer, valid only during the call. A Numba
            ``@njit`` function (numpy hidden states) runs the whole loop in Numba instead
            (``_jit_loop``: compiled once per process, no Python per simulation).
        num_simulations: simulations per root (>= 1); each adds one node to every tree.
        legal_mask: [B, A] bool, root only: priors are softmaxed over legal actions and illegal
            actions are never selected. Inside the tree every action is allowed.
        discount: per-step discount of rewards and values.
        two_player: zero-sum alternating turns (negamax): the per-ply discount becomes
            ``-discount`` since each node's value is from its own player-to-move's view.
        pb_c_init, pb_c_base: the pUCT constants c1 and c2.
        dirichlet_alpha, dirichlet_fraction: root noise over legal actions (fraction 0: off).
        temperature: the action is sampled from visits^(1/temperature); 0 takes the most
            visited (ties to the lowest index).
        rng: numpy Generator for noise and sampling (a fresh one if None).

    Semantics (the paper's pseudocode with these explicit choices):
        - A node's value_sum is from the view of the player to move there; its reward is the
          reward of the transition into it, from the mover's view. With ``disc`` the per-ply
          discount, Q(child) = reward + disc * value_sum / visits.
        - The root is expanded from ``prior_logits`` and counts as visited once with
          ``root_value`` (as mctx does), so the first selection already follows the priors.
          The min-max stats start empty (the root value enters them at the first backup).
        - pUCT: Q min-max normalized per tree (raw Q while max <= min), unvisited children
          score Q = 0, ties go to the lowest action index.
        - Backup with g = leaf value: at each node up to the root, value_sum += g, visits += 1,
          the min-max stats see reward + disc * value, then g = reward + disc * g.

    The tree arrays and embedding buffers are cached per shape and reused by later searches,
    so a search allocates nothing per simulation. Not thread-safe for same-shape searches.
    Memory: 8 bytes per node and action ([B, N, A] int32 child index + float32 prior), plus
    the hidden states of all B * N nodes.
    """
    logits, values, legal = check_root(prior_logits, root_value, root_embedding, legal_mask, num_simulations)
    check_settings(discount, pb_c_init, pb_c_base, dirichlet_alpha, dirichlet_fraction, temperature)
    rng = np.random.default_rng() if rng is None else rng
    params = _driver.make_params(discount, two_player, pb_c_init, pb_c_base, max_visits=num_simulations + 1)
    # Dirichlet(alpha) over the legal actions = Gamma(alpha) draws normalized over them (the
    # normalizing happens in init_roots).
    noise = None
    if dirichlet_fraction > 0:
        noise = rng.standard_gamma(dirichlet_alpha, size=logits.shape)
    tree = _driver.search(
        PUCT,
        logits,
        values,
        legal,
        root_embedding,
        recurrent_fn,
        num_simulations,
        params,
        noise,
        float(dirichlet_fraction),
    )
    visits, q_values, root_values = _driver.read_root(tree, params[DISC])
    batch, num_actions = logits.shape
    policy = np.empty((batch, num_actions), dtype=np.float32)
    action = np.empty(batch, dtype=np.int64)
    uniforms = rng.random(batch) if temperature > 0 else _driver.no_uniforms(batch)
    visit_policy_and_action(visits, float(temperature), uniforms, policy, action)
    return SearchResult(action, visits, policy, root_values, q_values)
