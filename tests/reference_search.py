"""A plain-Python MuZero search for one root, written from the paper's pseudocode.

It is the yardstick for the batched Numba engine: Node objects, a MinMaxStats object, and the
same explicit choices as ``muzero_agents.search.muzero_search`` (see its docstring):

- values are from the view of the player to move at each node, rewards from the mover's view,
  and the per-ply discount ``disc`` is ``-discount`` in two-player zero-sum games (negamax);
- the root counts as visited once with its network value; the min-max stats start empty;
- pUCT as in the paper (c1 + log((N + c2 + 1) / c2)) * sqrt(N) / (1 + n) * prior, unvisited
  children score Q = 0, ties go to the lowest action (the paper's ``max`` over tuples would
  take the highest);
- priors are the softmax of the logits computed in float64 and stored as float32, as the
  engine stores them, so both sum up bit for bit the same.

Also the deterministic fake network used to compare the two: everything it returns is a hash
of the action path, which the embedding carries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


class MinMaxStats:
    """The smallest and largest Q seen in the tree, to normalize Q to [0, 1]."""

    def __init__(self) -> None:
        self.maximum = -math.inf
        self.minimum = math.inf

    def update(self, value: float) -> None:
        self.maximum = max(self.maximum, value)
        self.minimum = min(self.minimum, value)

    def normalize(self, value: float) -> float:
        if self.maximum > self.minimum:
            return (value - self.minimum) / (self.maximum - self.minimum)
        return value


class Node:
    """One search node: prior, visits, value sum (mover-to-play's view), reward into it."""

    def __init__(self, prior: float) -> None:
        self.prior = prior
        self.visit_count = 0
        self.value_sum = 0.0
        self.reward = 0.0
        self.raw_value = 0.0  # the network's value of the node (Gumbel's v_mix uses it)
        self.embedding = None
        self.children: dict[int, Node] = {}

    def expanded(self) -> bool:
        return len(self.children) > 0

    def value(self) -> float:
        return self.value_sum / self.visit_count


def softmax_f32(logits: Sequence[float], actions: Sequence[int]) -> dict[int, float]:
    """Softmax over ``actions`` in float64 (exp(l - max) * (1 / sum)), rounded to float32."""
    m = max(float(logits[a]) for a in actions)
    total = 0.0
    for a in actions:
        total += math.exp(float(logits[a]) - m)
    inv_total = 1.0 / total
    return {a: float(np.float32(math.exp(float(logits[a]) - m) * inv_total)) for a in actions}


def expand_node(
    node: Node, actions: Sequence[int], logits: Sequence[float], reward: float, embedding
) -> None:
    node.reward = reward
    node.embedding = embedding
    for a, p in softmax_f32(logits, actions).items():
        node.children[a] = Node(p)


def ucb_score(
    parent: Node, child: Node, stats: MinMaxStats, disc: float, pb_c_init: float, pb_c_base: float
) -> float:
    pb_c = math.log((parent.visit_count + pb_c_base + 1) / pb_c_base) + pb_c_init
    pb_c *= math.sqrt(parent.visit_count) / (child.visit_count + 1)
    prior_score = pb_c * child.prior
    if child.visit_count > 0:
        value_score = stats.normalize(child.reward + disc * child.value())
    else:
        value_score = 0.0
    return prior_score + value_score


def select_child(
    node: Node, stats: MinMaxStats, disc: float, pb_c_init: float, pb_c_base: float
) -> tuple[int, Node]:
    best_action, best_score = -1, -math.inf
    for action in sorted(node.children):
        score = ucb_score(node, node.children[action], stats, disc, pb_c_init, pb_c_base)
        if best_action < 0 or score > best_score:
            best_action, best_score = action, score
    return best_action, node.children[best_action]


def backpropagate(path: list[Node], value: float, disc: float, stats: MinMaxStats) -> None:
    for node in reversed(path):
        node.value_sum += value
        node.visit_count += 1
        stats.update(node.reward + disc * node.value())
        value = node.reward + disc * value


# (embedding, action) -> (reward, value, logits [A], next embedding), for one tree.
SingleRecurrentFn = Callable[[object, int], tuple]


def reference_search(
    prior_logits: Sequence[float],
    root_value: float,
    root_embedding,
    recurrent_fn: SingleRecurrentFn,
    num_simulations: int,
    legal: Sequence[bool] | None = None,
    discount: float = 0.997,
    two_player: bool = False,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
) -> tuple[list[int], float, list[float]]:
    """Search one root without noise; returns (root visit counts, root value, root Q)."""
    num_actions = len(prior_logits)
    disc = -discount if two_player else discount
    legal_actions = [a for a in range(num_actions) if legal is None or legal[a]]
    root = Node(0.0)
    expand_node(root, legal_actions, prior_logits, 0.0, root_embedding)
    root.visit_count, root.value_sum = 1, float(root_value)
    stats = MinMaxStats()
    for _ in range(num_simulations):
        node, path = root, [root]
        while node.expanded():
            action, node = select_child(node, stats, disc, pb_c_init, pb_c_base)
            path.append(node)
        parent = path[-2]
        reward, value, logits, embedding = recurrent_fn(parent.embedding, action)
        expand_node(node, range(num_actions), logits, float(reward), embedding)
        backpropagate(path, float(value), disc, stats)
    visits = [0] * num_actions
    q = [0.0] * num_actions
    for a, child in root.children.items():
        visits[a] = child.visit_count
        if child.visit_count > 0:
            q[a] = child.reward + disc * child.value()
    return visits, root.value(), q


# ------------------------------------------------------------------------- Gumbel MuZero


def halving_targets(k: int, n: int) -> list[int]:
    """Sequential halving written out: per phase each remaining action gets its visits."""
    if k <= 1:
        return list(range(n))
    phases = math.ceil(math.log2(k))
    targets, remaining, count = [], k, 0
    while len(targets) < n:
        for _ in range(max(1, n // (phases * remaining))):
            targets += [count] * remaining
            count += 1
        remaining = max(2, remaining // 2)
    return targets[:n]


def completed_sigma(node: Node, disc: float, c_visit: float, c_scale: float) -> dict[int, float]:
    """sigma(completed Q) of each child: visited keep Q, unvisited get v_mix; min-max rescaled."""
    visited = {a: c for a, c in node.children.items() if c.visit_count > 0}
    sum_n = sum(c.visit_count for c in visited.values())
    v_mix = node.raw_value
    if sum_n > 0:
        sum_p = sum(c.prior for c in visited.values())
        weighted = sum(c.prior * (c.reward + disc * c.value()) for c in visited.values())
        v_mix = (node.raw_value + sum_n * weighted / sum_p) / (1 + sum_n)
    completed = {
        a: (c.reward + disc * c.value()) if a in visited else v_mix for a, c in node.children.items()
    }
    lo, hi = min(completed.values()), max(completed.values())
    max_n = max((c.visit_count for c in node.children.values()), default=0)
    factor = (c_visit + max_n) * c_scale
    return {a: factor * (q - lo) / max(hi - lo, 1e-8) for a, q in completed.items()}


def improved_policy(node: Node, sigma: dict[int, float]) -> dict[int, float]:
    """pi' = softmax(log prior + sigma) = prior * exp(sigma) / sum, over the node's children."""
    top = max(sigma.values())
    weights = {a: c.prior * math.exp(sigma[a] - top) for a, c in node.children.items()}
    total = sum(weights.values())
    return {a: w / total for a, w in weights.items()}


def _argmax(scores: dict[int, float]) -> int:
    best = None
    for a in sorted(scores):
        if best is None or scores[a] > scores[best]:
            best = a
    return best


def reference_gumbel_search(
    prior_logits: Sequence[float],
    root_value: float,
    root_embedding,
    recurrent_fn: SingleRecurrentFn,
    num_simulations: int,
    gumbel: Sequence[float],
    legal: Sequence[bool] | None = None,
    discount: float = 0.997,
    two_player: bool = False,
    max_considered: int = 16,
    c_visit: float = 50.0,
    c_scale: float = 0.1,
) -> tuple[list[int], float, list[float], int]:
    """Gumbel MuZero for one root: (visit counts, root value, improved policy, action).

    ``gumbel`` holds the (already scaled) Gumbel noise g of each action.
    """
    num_actions = len(prior_logits)
    disc = -discount if two_player else discount
    legal_actions = [a for a in range(num_actions) if legal is None or legal[a]]
    root = Node(0.0)
    expand_node(root, legal_actions, prior_logits, 0.0, root_embedding)
    root.visit_count, root.value_sum, root.raw_value = 1, float(root_value), float(root_value)
    base = {a: float(gumbel[a]) + float(prior_logits[a]) for a in legal_actions}
    k = min(max_considered, len(legal_actions), num_actions)
    targets = halving_targets(k, num_simulations)
    for sim in range(num_simulations):
        sigma = completed_sigma(root, disc, c_visit, c_scale)
        candidates = {
            a: base[a] + sigma[a] for a in legal_actions if root.children[a].visit_count == targets[sim]
        }
        action = _argmax(candidates)
        node, path = root.children[action], [root, root.children[action]]
        while node.expanded():
            sigma = completed_sigma(node, disc, c_visit, c_scale)
            pi = improved_policy(node, sigma)
            total_n = 1 + sum(c.visit_count for c in node.children.values())
            action = _argmax({a: pi[a] - c.visit_count / total_n for a, c in node.children.items()})
            node = node.children[action]
            path.append(node)
        reward, value, logits, embedding = recurrent_fn(path[-2].embedding, action)
        expand_node(node, range(num_actions), logits, float(reward), embedding)
        node.raw_value = float(value)
        backpropagate(path, float(value), disc, MinMaxStats())
    sigma = completed_sigma(root, disc, c_visit, c_scale)
    top = max(float(prior_logits[a]) + sigma[a] for a in legal_actions)
    weights = {a: math.exp(float(prior_logits[a]) + sigma[a] - top) for a in legal_actions}
    total = sum(weights.values())
    policy = [weights.get(a, 0.0) / total for a in range(num_actions)]
    visits = [root.children[a].visit_count if a in root.children else 0 for a in range(num_actions)]
    most = max(visits)
    action = _argmax({a: base[a] + sigma[a] for a in legal_actions if visits[a] == most})
    return visits, root.value(), policy, action


# ---------------------------------------------------------------- deterministic fake network

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a well-spread uint64 hash."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _unit(h: np.ndarray, levels: int) -> np.ndarray:
    """Hash to a float in [-1, 1); with ``levels`` > 0, rounded to multiples of 1 / levels."""
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2.0 - 1.0
    if levels > 0:
        u = np.round(u * levels) / levels
    return u.astype(np.float32)


class FakeNet:
    """Batched fake MuZero network whose outputs are hashes of the action path.

    The embedding is ``[B, 1]`` uint64 (the path hash); ``levels`` > 0 quantizes the outputs to
    a few values so that exact ties (and their tie-breaking) happen often.
    """

    def __init__(self, num_actions: int, seed: int = 0, levels: int = 0, logit_scale: float = 2.0) -> None:
        self.num_actions = num_actions
        self.seed = seed
        self.levels = levels
        self.logit_scale = logit_scale

    def _outputs(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(over="ignore"):
            reward = _unit(_mix(h ^ np.uint64(1)), self.levels)
            value = _unit(_mix(h ^ np.uint64(2)), self.levels)
            salts = (np.arange(self.num_actions, dtype=np.uint64) + np.uint64(3)) * _GOLDEN
            logits = _unit(_mix(h[:, None] ^ salts[None, :]), self.levels) * self.logit_scale
        return reward, value, logits.astype(np.float32)

    def root(self, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prior_logits [B, A], value [B], embedding [B, 1]) for B distinct roots."""
        with np.errstate(over="ignore"):
            h = _mix(np.arange(batch, dtype=np.uint64) + np.uint64(self.seed) * _GOLDEN)
        _, value, logits = self._outputs(h)
        return logits, value, h[:, None].copy()

    def recurrent(self, embedding: np.ndarray, action: np.ndarray) -> tuple:
        """The batched recurrent function: next hash = mix(hash * golden + action + 1)."""
        with np.errstate(over="ignore"):
            h = np.asarray(embedding)[:, 0].astype(np.uint64)
            nxt = _mix(h * _GOLDEN + np.asarray(action).astype(np.uint64) + np.uint64(1))
        reward, value, logits = self._outputs(nxt)
        return reward, value, logits, nxt[:, None]

    def single(self, embedding, action: int) -> tuple:
        """The recurrent function for one tree, for ``reference_search``."""
        reward, value, logits, nxt = self.recurrent(np.asarray(embedding)[None], np.array([action]))
        return float(reward[0]), float(value[0]), [float(x) for x in logits[0]], nxt[0]
