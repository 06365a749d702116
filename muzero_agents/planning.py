"""Planning from observations: one network call for the roots, then the batched tree search.

Self-play, ``predict`` and Reanalyze all plan the same way and differ only in the network they
plan with, their noise and temperature, and their simulation count; ``Planner`` holds what they
share (the search kind, its constants and the game's discount and player count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from muzero_agents.policies import MuZeroPolicy
from muzero_agents.search import SearchResult, gumbel_muzero_search, muzero_search


class Planner:
    """Runs ``search`` ("muzero": pUCT with root noise; "gumbel": Gumbel MuZero) from observations.

    :param search: ``"muzero"`` or ``"gumbel"``
    :param search_kwargs: the search's constants (``pb_c_init``, ``pb_c_base``, ``dirichlet_alpha``,
        ``dirichlet_fraction``, ``max_considered_actions``)
    :param discount: per-step discount of the values backed up in the tree
    :param two_player: values alternate sign per ply (zero-sum games)
    """

    def __init__(
        self, search: str, search_kwargs: Mapping[str, Any], discount: float, two_player: bool
    ) -> None:
        self.search = search
        self.search_kwargs = search_kwargs  # the model's own group: changes to it apply
        self.discount = discount
        self.two_player = two_player

    def plan(
        self,
        policy: MuZeroPolicy,
        observations: np.ndarray,
        legal_mask: np.ndarray | None,
        *,
        num_simulations: int,
        explore: bool,
        temperature: float,
        rng: np.random.Generator,
    ) -> SearchResult:
        """One batched search from ``observations`` [B, *obs] with ``policy``'s network.

        ``explore`` adds root noise (Dirichlet for pUCT; Gumbel noise for Gumbel MuZero, which
        also explores at a positive ``temperature``); ``temperature`` 0 plays the best action.
        """
        policy.set_training_mode(False)
        hidden, value, logits = policy.initial_inference_numpy(observations)
        common = dict(
            num_simulations=num_simulations,
            legal_mask=legal_mask,
            discount=self.discount,
            two_player=self.two_player,
            rng=rng,
        )
        settings = self.search_kwargs
        if self.search == "gumbel":
            result = gumbel_muzero_search(
                logits,
                value,
                hidden,
                policy.recurrent_numpy,
                max_num_considered_actions=settings["max_considered_actions"],
                gumbel_scale=1.0 if explore or temperature > 0 else 0.0,
                **common,
            )
            return result._replace(prior_logits=logits)
        result = muzero_search(
            logits,
            value,
            hidden,
            policy.recurrent_numpy,
            pb_c_init=settings["pb_c_init"],
            pb_c_base=settings["pb_c_base"],
            dirichlet_alpha=settings["dirichlet_alpha"],
            dirichlet_fraction=settings["dirichlet_fraction"] if explore else 0.0,
            temperature=temperature,
            **common,
        )
        return result._replace(prior_logits=logits)  # for the search's statistics
