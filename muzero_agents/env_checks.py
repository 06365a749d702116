"""Checks of what an env gives MuZero: its spaces, observations, rewards, actions and masks.

Each check raises early with the argument, the value received and a fix (a wrapper that exists
in the installed Gymnasium where one helps), instead of a numpy broadcast error or a search
failure many steps later. Layout of image observations: :func:`infer_channels_last`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.preprocessing import maybe_transpose
from stable_baselines3.common.utils import is_vectorized_observation
from stable_baselines3.common.vec_env import VecEnv, VecTransposeImage, is_vecenv_wrapped

from muzero_agents.settings import check_policy_kwargs
from muzero_agents.support import max_support_value

__all__ = [
    "BadObservation",
    "RewardScaleCheck",
    "check_action_masks",
    "check_action_space",
    "check_image_layout",
    "check_not_dict",
    "check_observation_kind",
    "check_observation_space",
    "check_observations",
    "check_policy_kwargs",
    "check_rewards",
    "check_step",
    "infer_channels_last",
    "max_support_value",
]

FLATTEN_FIX = (
    "MuZero has no MultiInputPolicy: its policies take one array. Flatten the observation with "
    "gymnasium.wrappers.FlattenObservation(env) and use MlpPolicy (for PettingZoo boards with an "
    "action mask, wrappers.SelfPlayEnv keeps the board and reads the mask)."
)


def _is_image_policy(policy: Any) -> bool:
    """Whether ``policy`` (a name such as "CnnPolicy", or a policy class) reads images."""
    if isinstance(policy, str):
        return policy in ("CnnPolicy", "MuZeroCnnPolicy")
    return bool(getattr(policy, "expects_images", False))


def check_env_spaces(env: VecEnv | None, policy: Any, required: bool, where: str = "MuZero()") -> None:
    """Raise a ValueError naming the fix unless ``env``'s spaces suit MuZero and ``policy``; without
    an env, only when one is ``required`` (a loaded model may come without one)."""
    if env is None:
        if required:
            raise ValueError(
                f"{where} needs an env (an env id, a gymnasium env or a VecEnv): give it to MuZero(), "
                "MuZero.load(path, env=env) or model.set_env(env)."
            )
        return
    check_action_space(env.action_space)
    check_observation_space(env.observation_space, policy)


def refuse_composite_observations(space: spaces.Space) -> None:
    """Raise a ValueError naming the fix for Dict and Tuple observation spaces."""
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        raise ValueError(f"MuZero cannot read {type(space).__name__} observations ({space}). {FLATTEN_FIX}")


class BadObservation(ValueError):
    """An observation outside the observation space (the env's data, which no restart mends)."""


def wrap_env(env: Any, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
    """SB3's wrapping of an algorithm's env, after MuZero's check of the kind of its observation
    space: before SB3's own (which names a MultiInputPolicy that MuZero does not have for Dict
    spaces) and before DummyVecEnv's buffers, which fail on spaces without a shape (Text)."""
    space = getattr(env, "observation_space", None)
    if space is not None:
        check_observation_kind(space)
    return BaseAlgorithm._wrap_env(env, verbose, monitor_wrapper)


def check_observation_kind(space: spaces.Space) -> None:
    """Raise a ValueError naming the fix unless ``space`` is a kind of space MuZero reads: a Box of
    at least one dimension, Discrete, MultiDiscrete or MultiBinary."""
    refuse_composite_observations(space)
    if not isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        raise ValueError(
            f"MuZero needs a Box, Discrete, MultiDiscrete or MultiBinary observation space, got {space}; "
            "wrap the env so that it returns arrays (gymnasium.wrappers.TransformObservation)."
        )
    if isinstance(space, spaces.Box) and space.shape == ():
        raise ValueError(
            f"MuZero's networks read observations with at least one dimension, got the scalar Box "
            f"observation space {space} (shape ()). Give it one: "
            "gymnasium.wrappers.ReshapeObservation(env, (1,))."
        )
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim != 1:
        flat = f"gymnasium.spaces.MultiDiscrete({space.nvec.reshape(-1).tolist()})"
        raise ValueError(
            f"SB3's one-hot encoding reads MultiDiscrete observations with a flat nvec, got MultiDiscrete({space.nvec.tolist()}) "
            f"(nvec of shape {space.nvec.shape}). Flatten them: gymnasium.wrappers.TransformObservation("
            f"env, lambda o: o.reshape(-1), {flat})."
        )


def check_observation_space(space: spaces.Space, policy: Any) -> None:
    """Raise a ValueError naming the fix unless ``policy`` can read observations of ``space``.

    :param policy: the policy name ("MlpPolicy", "CnnPolicy") or class
    """
    check_observation_kind(space)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)) and np.any(space.start != 0):
        discrete = isinstance(space, spaces.Discrete)
        size, start = (
            (int(space.n), int(space.start)) if discrete else (space.nvec.tolist(), space.start.tolist())
        )
        shift = start if discrete else f"np.array({start})"
        raise ValueError(
            f"SB3's one-hot encoding reads observations from 0, but the observation space is {space} "
            f"(start={start}). Shift them: gymnasium.wrappers.TransformObservation(env, "
            f"lambda o: o - {shift}, gymnasium.spaces.{type(space).__name__}({size}))."
        )
    if _is_image_policy(policy) and (not isinstance(space, spaces.Box) or len(space.shape) != 3):
        fix = "use MlpPolicy for vector observations."
        if isinstance(space, spaces.Box) and len(space.shape) == 2:  # grayscale frames
            fix = (
                "give 2-D images a channel axis: "
                f"gymnasium.wrappers.ReshapeObservation(env, {(*space.shape, 1)}) (or MlpPolicy)."
            )
        raise ValueError(
            f"CnnPolicy needs image-like Box observations of shape (C, H, W) or (H, W, C), got {space}; "
            + fix
        )


def infer_channels_last(space: spaces.Box) -> bool:
    """Whether a 3-D image space is (H, W, C) rather than (C, H, W); ValueError when it cannot tell.

    uint8 images in [0, 255] follow SB3 (the smallest side is the channels; SB3 has already
    transposed channels-last ones). Other arrays (float or int8 boards) are read as square boards
    first: two equal leading sides mean (H, W, C), two equal trailing sides (C, H, W), so a 9x9
    Go board with 17 planes, (9, 9, 17), is channels-last. Else the unique smallest of the first
    and last sides is the channels. Shapes that stay ambiguous, such as (3, 3, 3) or (2, 8, 2),
    are refused with the fix: ``policy_kwargs={"channels_last": True}`` (or False).
    """
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    shape = tuple(int(side) for side in space.shape)
    if is_image_space(space):
        return not is_image_space_channels_first(space)
    first, middle, last = shape
    if first == middle != last:
        return True
    if middle == last != first:
        return False
    if first != last and min(first, last) < middle:
        return last < first
    raise ValueError(
        f"CnnPolicy cannot tell whether the observation shape {shape} is (C, H, W) or (H, W, C). "
        'Say which: policy_kwargs={"channels_last": True} for (H, W, C), False for (C, H, W).'
    )


def check_image_layout(env: VecEnv | None, policy_kwargs: Mapping[str, Any] | None) -> None:
    """Raise a ValueError naming the fix if ``policy_kwargs["channels_last"]`` is True for an env
    that SB3 wrapped in VecTransposeImage: its uint8 (H, W, C) images already arrive (C, H, W), and
    the policy would permute them a second time (reading rows as channels). Without an env
    there is nothing to check."""
    if env is None or not (policy_kwargs or {}).get("channels_last"):
        return
    if is_vecenv_wrapped(env, VecTransposeImage):
        raise ValueError(
            'policy_kwargs["channels_last"]=True, but SB3 has already made this env\'s uint8 images '
            f"channels-first (VecTransposeImage: observation space {env.observation_space}), so "
            "the policy would transpose them a second time. Leave channels_last out (or set it "
            "to False)."
        )


def check_frame_stack_axis(
    axis: int, shape: tuple[int, ...], channels_last: bool, *, transposed: bool, inferred: bool
) -> None:
    """Raise a ValueError naming the fixes if ``VecFrameStack`` stacks frames along ``axis`` of the
    observations (``shape``, as the policy sees them) but a conv policy reads its channels on
    another axis: the frames would sit side by side in one wider image. SB3 stacks along the last
    axis unless the space is a uint8 [0, 255] image or ``channels_order`` says otherwise.

    ``transposed``: a ``VecTransposeImage`` above the stacker (which then sees (H, W, C) frames);
    ``inferred``: the policy guessed its layout from the shape (``channels_last`` not given) and
    may be told it (no ``VecTransposeImage`` in the env)."""
    channels = 2 if channels_last else 0
    if axis == channels:
        return
    order = "last" if transposed or channels_last else "first"  # as the stacker sees the frames
    fixes = f'VecFrameStack(env, n_stack, channels_order="{order}")'
    if inferred:  # the guess from the stacked shape may be wrong, and may change with the stacking
        fixes += f' with policy_kwargs={{"channels_last": {channels_last}}}'
        if axis in (0, 2):
            layout = "(H, W, C)" if axis == 2 else "(C, H, W)"
            fixes = f'policy_kwargs={{"channels_last": {axis == 2}}} if the frames are {layout}, else {fixes}'
    raise ValueError(
        f"VecFrameStack stacks the frames along axis {axis} of the observations {tuple(shape)}, "
        f"but CnnPolicy reads them as {'(H, W, C)' if channels_last else '(C, H, W)'} images "
        f"with channels on axis {channels}: each frame would sit beside the others in one "
        f"image. Pass {fixes}."
    )


def check_action_space(space: spaces.Space) -> None:
    """Raise a ValueError naming a wrapper that fixes it unless ``space`` is Discrete from 0."""
    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError(
                f"MuZero's actions are 0..n-1, but the action space is {space} (start={space.start}). "
                f"Shift them: gymnasium.wrappers.TransformAction(env, lambda a: a + {int(space.start)}, "
                f"gymnasium.spaces.Discrete({int(space.n)}))."
            )
        return
    if isinstance(space, spaces.Box):
        fix = "Discretize it: gymnasium.wrappers.DiscretizeAction(env, bins=5) (one Discrete action per bin combination)."
    elif isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)):
        fix = (
            "Number the combinations: gymnasium.wrappers.TransformAction(env, lambda a: "
            "np.array(np.unravel_index(a, sizes)), gymnasium.spaces.Discrete(int(np.prod(sizes)))) "
            "with sizes the space's nvec (2 per entry for MultiBinary)."
        )
    else:
        fix = "Wrap the env so that it takes an action index (gymnasium.wrappers.TransformAction)."
    raise ValueError(
        f"MuZero plans over a finite action set and needs a Discrete action space, got {space}. {fix}"
    )


def check_not_dict(observation: Any) -> None:
    """Raise a ValueError naming the fix if ``observation`` is a dict or tuple of arrays, or
    Gymnasium's ``(observation, info)`` pair."""
    if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
        raise ValueError(
            "predict() got an (observation, info) tuple: pass the observation alone "
            "(Gymnasium's reset returns both; SB3's VecEnv.reset only the observations)."
        )
    if isinstance(observation, (Mapping, tuple)):
        raise ValueError(
            f"MuZero takes array observations, got a {type(observation).__name__}. {FLATTEN_FIX}"
        )


def _observation_shape(space: spaces.Space) -> tuple[int, ...]:
    if isinstance(space, spaces.Discrete):
        return ()
    if isinstance(space, spaces.MultiDiscrete):
        return tuple(space.nvec.shape)
    return tuple(space.shape)


def check_observations(
    observations: Any, space: spaces.Space, *, where: str, first_env: int = 0
) -> np.ndarray:
    """A batch ``[N, *space.shape]`` of observations as an array, or an error naming ``where``.

    :param where: where the batch comes from (``"predict()"``, ``"self-play step 120"``); the
        error adds the env index (``first_env`` + the batch row) of the first bad observation
    """
    batch = np.asarray(observations)
    expected = _observation_shape(space)
    if batch.dtype.kind not in "biuf":
        raise TypeError(f"{where}: observations must be numbers, got an array of dtype {batch.dtype}.")
    if batch.ndim != len(expected) + 1 or batch.shape[1:] != expected:
        raise BadObservation(
            f"{where}: observations must have shape (n_envs, *{expected}) to match the observation "
            f"space {space}, got an array of shape {batch.shape}. Make the env return arrays of the "
            "shape its observation_space declares (or declare the shape it returns)."
        )
    if batch.shape[0] == 0:
        raise BadObservation(
            f"{where}: got an empty batch of observations (shape {batch.shape}); pass at least one "
            "observation."
        )
    flat = batch.reshape(batch.shape[0], -1)
    if batch.dtype.kind == "f":
        finite = np.isfinite(flat).all(axis=1)
        if not finite.all():
            row = int(np.argmin(finite))
            raise BadObservation(
                f"{where}: the observation of env {first_env + row} holds NaN or infinite values; the network "
                "cannot plan from it. Fix the env, or replace them with gymnasium.wrappers."
                "TransformObservation(env, np.nan_to_num, env.observation_space)."
            )
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        _check_integer_observations(batch, space, where, first_env)
    return batch


def _integer_range(space: spaces.Space) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and one past the highest value of each entry of a Discrete, MultiDiscrete or
    MultiBinary observation."""
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, np.int64), np.full(space.shape, 2, np.int64)
    start = np.asarray(space.start, np.int64)
    size = space.n if isinstance(space, spaces.Discrete) else space.nvec
    return start, start + np.asarray(size, np.int64)


def _check_integer_observations(batch: np.ndarray, space: spaces.Space, where: str, first_env: int) -> None:
    """Raise a ValueError naming the env (batch row) and entry of the first value that is not a
    whole number in the space's range, which SB3's one-hot encoding would refuse or misread."""
    low, high = _integer_range(space)
    whole = np.equal(np.mod(batch, 1), 0) if batch.dtype.kind == "f" else np.ones(batch.shape, bool)
    inside = (whole & (batch >= low) & (batch < high)).reshape(batch.shape[0], -1)
    if inside.all():
        return
    row = int(np.argmin(inside.all(axis=1)))
    fix = "Make the env return observations inside its observation_space (or declare the space it returns)."
    if isinstance(space, spaces.Discrete):
        raise BadObservation(
            f"{where}: the observation of env {first_env + row} is {batch[row].tolist()!r}, outside the observation space "
            f"{space} (integers {int(low)}..{int(high) - 1}). {fix}"
        )
    entry = np.unravel_index(int(np.argmin(inside[row])), low.shape)
    name = int(entry[0]) if len(entry) == 1 else tuple(int(index) for index in entry)
    raise BadObservation(
        f"{where}: the observation of env {first_env + row} is {batch[row].tolist()!r}, outside the observation space "
        f"{space}: entry {name} is {batch[row][entry].item()!r}, not an integer in "
        f"{int(low[entry])}..{int(high[entry]) - 1}. {fix}"
    )


class RewardScaleCheck:
    """Warns once when rewards reach beyond what the value support can represent.

    :param support_size: the policy's ``support_size``; rewards above ``max_support_value`` of it
        are predicted as that bound (1e9 rewards read as about 420 for the default 20)
    """

    def __init__(self, support_size: int) -> None:
        self.support_size = int(support_size)
        self.limit = max_support_value(self.support_size)
        self.warned = False

    def __call__(self, rewards: Any, *, where: str) -> None:
        values = np.asarray(rewards, dtype=np.float64).reshape(-1)
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.argmin(finite))
            raise ValueError(
                f"{where}: env {row} returned the reward {float(values[row])!r}; rewards must be finite. Fix "
                "the env, or replace them with gymnasium.wrappers.TransformReward(env, np.nan_to_num)."
            )
        largest = float(np.abs(values).max(initial=0.0))
        if largest > self.limit and not self.warned:
            self.warned = True
            warnings.warn(
                f"{where}: a reward of magnitude {largest:g} exceeds {self.limit:.0f}, the most that "
                f'policy_kwargs["support_size"]={self.support_size} represents: values and rewards '
                'saturate there. Raise policy_kwargs["support_size"], or scale the rewards (SB3\'s '
                "VecNormalize(env, norm_reward=True), or gymnasium.wrappers.TransformReward).",
                UserWarning,
                stacklevel=3,
            )


def check_rewards(
    rewards: Any, support_size: int, reward_check: RewardScaleCheck | None = None, *, where: str
) -> None:
    """Non-finite rewards raise; rewards beyond the support warn once per ``reward_check``.

    Without ``reward_check``, one shared check per support size warns once per process.
    """
    if reward_check is None:
        reward_check = _SHARED_REWARD_CHECKS.setdefault(int(support_size), RewardScaleCheck(support_size))
    reward_check(rewards, where=where)


_SHARED_REWARD_CHECKS: dict[int, RewardScaleCheck] = {}


def check_step(
    new_obs: Any,
    rewards: Any,
    observation_space: spaces.Space,
    support_size: int,
    num_timesteps: int,
    reward_check: RewardScaleCheck | None = None,
) -> None:
    """Check one self-play env step's observations and rewards (see :func:`check_observations`).

    :param num_timesteps: the model's step count before this step, named in errors
    :param reward_check: the model's own :class:`RewardScaleCheck` (warns once per model)
    """
    where = f"self-play at timestep {num_timesteps}"
    check_observations(new_obs, observation_space, where=where)
    check_rewards(rewards, support_size, reward_check, where=where)


def check_action_masks(
    masks: Any, batch: int, action_count: int, *, require_legal: bool = True
) -> np.ndarray:
    """Legal-action masks as a bool array ``[batch, action_count]``, or a clear error.

    Booleans are taken as they are; integer masks of only 0 and 1 are converted. Other integers,
    floats and wrong shapes are refused. A ``(action_count,)`` mask serves a batch of one.

    :param require_legal: refuse a row without any legal action (the search needs one)
    """
    array = np.asarray(masks)
    if array.shape == (action_count,) and batch == 1:
        array = array[None]
    if array.shape != (batch, action_count):
        raise ValueError(
            f"action_masks must have shape ({batch}, {action_count}) (one row per observation, one "
            f"entry per action), got {array.shape}."
        )
    if array.dtype.kind in "iu":
        if not np.isin(array, (0, 1)).all():
            raise ValueError(
                f"action_masks must be booleans (True = legal); integer masks may hold only 0 and 1, got "
                f"values {np.unique(array)[:8].tolist()}."
            )
        array = array.astype(bool)
    elif array.dtype.kind != "b":
        raise TypeError(
            f"action_masks must be booleans (True = legal), got dtype {array.dtype}; pass mask.astype(bool) "
            "of an exact 0/1 mask."
        )
    if require_legal and not array.any(axis=1).all():
        row = int(np.argmin(array.any(axis=1)))
        raise ValueError(
            f"action_masks row {row} allows no action; the search needs at least one legal action."
        )
    return array


def predict_inputs(
    observation: Any, space: spaces.Space, action_masks: Any, action_count: int
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """``predict``'s inputs checked: the batch of observations (channel-last images transposed as
    SB3 does), its legal-action masks (or None), and whether the input was already a batch."""
    check_not_dict(observation)
    observation = maybe_transpose(np.asarray(observation), space)
    vectorized = is_vectorized_observation(observation, space)
    batch = check_observations(observation if vectorized else observation[None], space, where="predict()")
    masks = None if action_masks is None else check_action_masks(action_masks, batch.shape[0], action_count)
    return batch, masks, vectorized
