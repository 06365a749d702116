"""Input validation for the searches: clear errors that name the fix, raised before any work."""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


def to_numpy(x: Any, dtype: type, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor or sequence) as a C-contiguous array of ``dtype``."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    try:
        return np.ascontiguousarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err


@njit(cache=True)
def all_finite(logits: np.ndarray, value: np.ndarray) -> bool:
    """No NaN or inf in either array (a compiled loop: numpy's isfinite().all() costs ~5 us at B=1)."""
    for x in logits.ravel():
        if not np.isfinite(x):
            return False
    for x in value:
        if not np.isfinite(x):
            return False
    return True


_FLOAT32 = np.dtype(np.float32)


def _float32(x: Any, name: str) -> np.ndarray:
    """``x`` as C-contiguous float32; the common case (already so) costs no conversion."""
    if type(x) is np.ndarray and x.dtype is _FLOAT32 and x.flags.c_contiguous:
        return x
    return to_numpy(x, np.float32, name)


def check_root(
    prior_logits: Any,
    root_value: Any,
    root_embedding: Any,
    legal_mask: Any,
    num_simulations: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the root inputs; return (logits f32 [B, A], value f64 [B], legal bool [B, A])."""
    if isinstance(num_simulations, bool) or not isinstance(num_simulations, (int, np.integer)):
        raise TypeError(f"num_simulations must be an int, got {type(num_simulations).__name__}")
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    logits = _float32(prior_logits, "prior_logits")
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"prior_logits must have shape [B, A] with B, A >= 1, got {logits.shape}")
    batch, num_actions = logits.shape
    value = to_numpy(root_value, np.float64, "root_value").reshape(-1)
    if value.shape != (batch,):
        raise ValueError(
            f"root_value must have shape [B] = [{batch}] (one value per root), got {np.shape(root_value)}"
        )
    if not all_finite(logits, value):
        raise ValueError("prior_logits and root_value must be finite (no NaN or inf)")
    emb_shape = tuple(getattr(root_embedding, "shape", ()))
    if len(emb_shape) < 1 or emb_shape[0] != batch:
        raise ValueError(
            f"root_embedding must be a tensor or array of shape [B, *S] with B = {batch}, "
            f"got shape {emb_shape}"
        )
    legal = check_mask(legal_mask, batch, num_actions)
    return logits, value, legal


def check_mask(legal_mask: Any, batch: int, num_actions: int) -> np.ndarray:
    """The root legal mask as bool [B, A] (all legal if None); every row needs a legal action."""
    if legal_mask is None:
        return np.ones((batch, num_actions), dtype=np.bool_)
    mask = to_numpy(legal_mask, np.bool_, "legal_mask")
    if mask.shape != (batch, num_actions):
        raise ValueError(
            f"legal_mask must have the shape of prior_logits {(batch, num_actions)}, got {mask.shape}"
        )
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"legal_mask rows {empty.tolist()} have no legal action; search only positions "
            "where the player to move has a legal move (end the episode otherwise)"
        )
    return mask


def check_settings(
    discount: float,
    pb_c_init: float,
    pb_c_base: float,
    dirichlet_alpha: float,
    dirichlet_fraction: float,
    temperature: float,
) -> None:
    """Validate the pUCT, noise and temperature settings."""
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be in [0, 1], got {discount}")
    if pb_c_base <= 0.0:
        raise ValueError(f"pb_c_base must be > 0, got {pb_c_base}")
    if pb_c_init < 0.0:
        raise ValueError(f"pb_c_init must be >= 0, got {pb_c_init}")
    if not 0.0 <= dirichlet_fraction <= 1.0:
        raise ValueError(f"dirichlet_fraction must be in [0, 1] (0 disables noise), got {dirichlet_fraction}")
    if dirichlet_fraction > 0.0 and dirichlet_alpha <= 0.0:
        raise ValueError(f"dirichlet_alpha must be > 0 when noise is on, got {dirichlet_alpha}")
    if temperature < 0.0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be finite and >= 0 (0 = most visited), got {temperature}")


def check_step(outputs: Any, batch: int, num_actions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Validate one ``recurrent_fn`` output: (reward [B], value [B], logits [B, A], next [B, *S])."""
    try:
        reward, value, logits, next_embedding = outputs
    except (TypeError, ValueError) as err:
        raise TypeError(
            "recurrent_fn must return a 4-tuple (reward [B], value [B], prior_logits [B, A], "
            "next_embedding [B, *S])"
        ) from err
    reward = _float32(reward, "recurrent_fn reward")
    value = _float32(value, "recurrent_fn value")
    logits = _float32(logits, "recurrent_fn prior_logits")
    if reward.shape != (batch,) or value.shape != (batch,):
        reward, value = reward.reshape(-1), value.reshape(-1)  # accept [B, 1]
        if reward.shape != (batch,) or value.shape != (batch,):
            raise ValueError(
                f"recurrent_fn must return reward and value of shape [B] = [{batch}], got "
                f"{reward.shape} and {value.shape}"
            )
    if logits.shape != (batch, num_actions):
        raise ValueError(
            f"recurrent_fn must return prior_logits of shape [B, A] = {(batch, num_actions)}, "
            f"got {logits.shape}"
        )
    return reward, value, logits, next_embedding
