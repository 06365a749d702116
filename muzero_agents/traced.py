"""The network's recurrent step, traced, for the search's once-per-simulation call.

The search calls dynamics and prediction once per simulation. At small batches that call is
mostly Python dispatching some sixty small torch ops. ``torch.jit.trace`` records them once
and replays them without the interpreter, which pays most at small batches.

The trace shares the network's parameters and buffers, so optimizer steps and in-place
``load_state_dict`` (what SB3's ``load`` and ``set_parameters`` do) are seen at once. It is
made again when the hidden states' dtype or shape changes or a parameter tensor is replaced,
and it is checked against the eager network on a second batch size when made: on any mismatch
or tracing error the eager network is used instead (e.g. the scaled single action plane of
conv networks with more than 32 non-board actions, whose shape a trace would freeze). The
eager network also serves training mode (batch norm would update its statistics), calls with
gradients enabled, and devices other than the CPU (where the profiling executor's optimised,
fused graph would go unchecked).

Cost: PyTorch keeps about 1.6 MiB per trace after the trace is gone (a known leak), and each
policy traces once, so a process that builds or loads many hundreds of models should set
``MuZeroPolicy.trace_recurrent = False``.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from muzero_agents.networks import MuZeroNetwork
from muzero_agents.support import support_to_scalar


class RecurrentStep(nn.Module):
    """(hidden, action) -> (reward [B], value [B], policy logits [B, A], next hidden)."""

    def __init__(self, network: MuZeroNetwork, support_size: int) -> None:
        super().__init__()
        self.network = network
        self.support_size = support_size

    def forward(self, hidden: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network.recurrent_inference(hidden, action)
        # one support conversion for reward and value together: half the small-op overhead
        both = support_to_scalar(torch.stack([out.reward_logits, out.value_logits]), self.support_size)
        return both[0], both[1], out.policy_logits, out.hidden


class TracedRecurrent:
    """Calls ``RecurrentStep`` through a cached trace where that is safe (module docstring)."""

    def __init__(self, network: MuZeroNetwork, support_size: int) -> None:
        self.step = RecurrentStep(network, support_size)
        self._traced: Any = None
        self._key: tuple | None = None

    def __call__(self, hidden: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, ...]:
        network = self.step.network
        if network.training or torch.is_grad_enabled() or hidden.device.type != "cpu":
            return self.step(hidden, action)
        first_parameter = next(network.parameters())
        key = (hidden.dtype, tuple(hidden.shape[1:]), id(first_parameter), first_parameter.data_ptr())
        if key != self._key:
            self._traced, self._key = self._trace(hidden, action), key
        return (self._traced or self.step)(hidden, action)

    def _trace(self, hidden: torch.Tensor, action: torch.Tensor) -> Any:
        """The checked trace for inputs like these, or None (then the eager step is used)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(self.step, (hidden, action), check_trace=False)
            probe_hidden = torch.cat([hidden, hidden[:1]])
            probe_action = torch.cat([action, action[:1]])
            expected = self.step(probe_hidden, probe_action)
            got = traced(probe_hidden, probe_action)
        except Exception:  # any tracing failure means: stay eager
            return None
        same = all(
            g.shape == e.shape and torch.allclose(g, e, rtol=1e-5, atol=1e-6) for g, e in zip(got, expected)
        )
        return traced if same else None

    def __getstate__(self) -> dict:
        """Pickle without the trace (TorchScript modules do not pickle); it is made again."""
        return {"step": self.step, "_traced": None, "_key": None}
