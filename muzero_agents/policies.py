"""SB3 policies that own MuZero's networks and turn numpy batches into network outputs.

The policy knows nothing of the search: it offers ``initial_inference`` and a
``recurrent_fn``-shaped method in the array conventions the search expects. ``_predict`` (used
only when someone calls ``model.policy.predict`` directly) acts on the raw prior without search;
``MuZero.predict`` is the planning agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import preprocess_obs
from stable_baselines3.common.type_aliases import Schedule

from muzero_agents import env_checks
from muzero_agents.consistency import ConsistencyHead
from muzero_agents.networks import ConvMuZeroNetwork, MlpMuZeroNetwork, MuZeroNetwork
from muzero_agents.settings import check_group_keys, check_group_value, check_policy_kwargs
from muzero_agents.support import support_to_scalar
from muzero_agents.traced import TracedRecurrent


def align_state_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give loaded per-parameter state (Adam's moments) its parameter's memory layout.

    Adam's fused kernel walks a parameter, its gradient and its moments as flat memory, so moments
    saved from a network of the other layout (boards were contiguous before conv networks all
    became channels-last) would update the wrong elements. Saves keep their strides, so moments
    saved by a network of the same layout are left as they are. Runs after every
    ``optimizer.load_state_dict``.
    """
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


class MuZeroPolicy(BasePolicy):
    """Holds representation, dynamics and prediction networks plus their optimizer.

    :param support_size: value/reward categorical support is {-S..S} (in h-transformed space);
        an int >= 1
    :param network_kwargs: forwarded to the network class (e.g. ``hidden_dim``, ``net_arch`` for
        the MLP; ``channels``, ``num_blocks`` for the conv tower); unknown keys are refused
    :param consistency_kwargs: if given, the policy also owns a
        :class:`~muzero_agents.consistency.ConsistencyHead` (EfficientZero's temporal consistency
        loss) built with these arguments (``projection_dim``, ``predictor_dim``); ``MuZero``
        passes ``{}`` when ``consistency_loss_coef > 0``
    """

    network_class: type[MuZeroNetwork] = MlpMuZeroNetwork
    expects_images: bool = False  # CnnPolicy reads (C, H, W) or (H, W, C) images
    # The search's network step runs through a checked torch.jit.trace (muzero_agents.traced).
    trace_recurrent: bool = True

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        support_size: int = 20,
        network_kwargs: dict[str, Any] | None = None,
        consistency_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        env_checks.check_observation_space(observation_space, type(self))
        env_checks.check_action_space(action_space)
        support_size = check_group_value("policy_kwargs", "support_size", support_size)
        super().__init__(
            observation_space,
            action_space,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs or {},
        )
        self.support_size = support_size
        self.network_kwargs = dict(network_kwargs or {})
        self.action_dim = int(action_space.n)
        self.network = self._build_network()
        self.consistency_kwargs = None if consistency_kwargs is None else dict(consistency_kwargs)
        self.consistency_head = (
            None
            if self.consistency_kwargs is None
            else ConsistencyHead(self._hidden_size(), **self.consistency_kwargs)
        )
        self._recurrent = TracedRecurrent(self.network, self.support_size)
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self._optimizer_arguments()
        )
        self.optimizer.register_load_state_dict_post_hook(align_state_layouts)
        self.optimizer.register_load_state_dict_post_hook(self._keep_weight_decay)

    def _keep_weight_decay(self, optimizer: torch.optim.Optimizer) -> None:
        """A loaded optimizer state keeps this policy's weight decay (a load may set another)."""
        if "weight_decay" in self.optimizer_kwargs:
            for group in optimizer.param_groups:
                group["weight_decay"] = self.optimizer_kwargs["weight_decay"]

    def _optimizer_arguments(self) -> dict[str, Any]:
        """``optimizer_kwargs``, with Adam's and AdamW's fused kernel (one kernel for all
        parameters) where ``optimizer_kwargs`` chooses no implementation."""
        arguments = dict(self.optimizer_kwargs)
        fusable = self.optimizer_class in (torch.optim.Adam, torch.optim.AdamW)
        if fusable and not {"fused", "foreach", "differentiable"} & arguments.keys():
            arguments["fused"] = True
        return arguments

    def _build_network(self) -> MuZeroNetwork:
        check_group_keys(MlpMuZeroNetwork.settings_group, self.network_kwargs)
        obs_dim = int(np.prod(spaces.flatdim(self.observation_space)))
        return MlpMuZeroNetwork(obs_dim, self.action_dim, self.support_size, **self.network_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            lr_schedule=self._dummy_schedule,  # a loaded policy's optimizer is rebuilt (SB3's policies do so)
            support_size=self.support_size,
            network_kwargs=self.network_kwargs,
            consistency_kwargs=self.consistency_kwargs,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def _hidden_size(self) -> int:
        """Elements of one hidden state, from one observation through the new network."""
        sample = torch.as_tensor(np.asarray(self.observation_space.sample())[None])
        was_training = self.network.training
        self.network.eval()  # leave batch-norm statistics untouched
        with torch.no_grad():
            size = self.network.initial_inference(self.preprocess(sample)).hidden[0].numel()
        self.network.train(was_training)
        return int(size)

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observation tensor -> float network input (images scaled, discrete one-hot)."""
        return preprocess_obs(obs, self.observation_space, normalize_images=self.normalize_images).float()

    def prepare_obs(self, observation: np.ndarray) -> torch.Tensor:
        """Numpy batch -> preprocessed float tensor on the policy's device."""
        return self.preprocess(torch.as_tensor(np.asarray(observation), device=self.device))

    @torch.inference_mode()
    def initial_inference_numpy(self, observation: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Observation batch -> (hidden [B,...], scalar value [B], policy logits [B,A]) for the search."""
        out = self.network.initial_inference(self.prepare_obs(observation))
        value = support_to_scalar(out.value_logits, self.support_size)
        return out.hidden, value.float().cpu().numpy(), out.policy_logits.float().cpu().numpy()

    @torch.inference_mode()
    def recurrent_numpy(
        self, hidden: torch.Tensor, action: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.Tensor]:
        """The search's ``recurrent_fn``: (hidden, actions) -> (reward, value, logits, next hidden)."""
        action_tensor = torch.as_tensor(
            action, device=hidden.device
        )  # (SB3's self.device walks the parameters)
        step = self._recurrent if self.trace_recurrent else self._recurrent.step
        reward, value, logits, next_hidden = step(hidden, action_tensor)
        return (
            reward.float().cpu().numpy(),
            value.float().cpu().numpy(),
            logits.float().cpu().numpy(),
            next_hidden,
        )

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3's ``predict`` on the prior policy (no search: ``MuZero.predict`` plans).
        ``action_masks`` (``[batch, actions]``, or ``[actions]`` for one observation) keep it to
        the legal actions, as sb3-contrib's maskable policies do."""
        env_checks.check_not_dict(observation)
        self.set_training_mode(False)
        observation_tensor, vectorized = self.obs_to_tensor(observation)
        with torch.no_grad():
            actions = self._predict(observation_tensor, deterministic, action_masks).cpu().numpy()
        return (actions if vectorized else actions.squeeze(axis=0)), state

    def _predict(
        self, observation: torch.Tensor, deterministic: bool = False, action_masks: np.ndarray | None = None
    ) -> torch.Tensor:
        """Act on the prior policy alone (no search), among the legal actions when masks are given."""
        logits = self.network.initial_inference(self.preprocess(observation)).policy_logits
        if action_masks is not None:
            legal = env_checks.check_action_masks(action_masks, logits.shape[0], logits.shape[1])
            logits = logits.masked_fill(~torch.as_tensor(legal, device=logits.device), -torch.inf)
        if deterministic:
            return logits.argmax(dim=1)
        return torch.distributions.Categorical(logits=logits).sample()

    def forward(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self._predict(observation, deterministic)


class MuZeroCnnPolicy(MuZeroPolicy):
    """Residual conv towers for image-like observations (boards, small images, Atari frames).

    Channels-last arrays that SB3 does not transpose (non-uint8 boards such as PettingZoo's) are
    permuted to channels-first here; :func:`muzero_agents.env_checks.infer_channels_last` reads
    the layout from the shape, or refuses a shape it cannot tell.

    :param channels_last: whether observations are (H, W, C) (True) or (C, H, W) (False); None
        infers it from the shape. Saved with the model, so a loaded model keeps its layout.
    """

    expects_images = True
    # channels-last memory (oneDNN's native layout) trains and searches faster on the CPU, boards
    # included (unmeasured on GPUs)
    memory_format = torch.channels_last

    def __init__(self, *args: Any, channels_last: bool | None = None, **kwargs: Any) -> None:
        self.requested_channels_last = check_group_value("policy_kwargs", "channels_last", channels_last)
        super().__init__(*args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(channels_last=self.channels_last)
        return data

    def _build_network(self) -> MuZeroNetwork:
        check_group_keys(ConvMuZeroNetwork.settings_group, self.network_kwargs)
        shape = self.observation_space.shape
        self.channels_last = self.requested_channels_last
        if self.channels_last is None:
            self.channels_last = env_checks.infer_channels_last(self.observation_space)
        c, h, w = (shape[2], shape[0], shape[1]) if self.channels_last else shape
        network = ConvMuZeroNetwork((c, h, w), self.action_dim, self.support_size, **self.network_kwargs)
        return network.to(memory_format=self.memory_format)

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        obs = super().preprocess(obs)
        obs = obs.permute(0, 3, 1, 2) if self.channels_last else obs
        return obs.contiguous(memory_format=self.memory_format)


MlpPolicy = MuZeroPolicy
CnnPolicy = MuZeroCnnPolicy


def policy_arguments(
    policy_class: type, policy_kwargs: Mapping[str, Any], learner_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments of ``policy_class`` (refused unless a MuZero policy): ``policy_kwargs``,
    checked for that class, with the learner's ``weight_decay`` in its optimizer's arguments (an
    explicit one there wins) and the consistency head when the consistency loss is on."""
    if not (isinstance(policy_class, type) and issubclass(policy_class, MuZeroPolicy)):
        raise TypeError(
            "MuZero's policy must be 'MlpPolicy', 'CnnPolicy' or a subclass of MuZeroPolicy, "
            f"got {policy_class!r}."
        )
    check_policy_kwargs(policy_kwargs, image_policy=policy_class.expects_images)
    arguments = dict(policy_kwargs)
    optimizer_kwargs = arguments.get("optimizer_kwargs", {})
    arguments["optimizer_kwargs"] = {"weight_decay": learner_kwargs["weight_decay"], **optimizer_kwargs}
    if learner_kwargs["consistency_loss_coef"] > 0:
        arguments.setdefault("consistency_kwargs", {})
    return arguments
