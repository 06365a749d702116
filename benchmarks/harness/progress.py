"""A progress bar per benchmark run (tqdm), placed on its own line when runs go in parallel."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from benchmarks.harness.evaluation import EvalHistory


class RunProgress(BaseCallback):
    """Env steps done out of the budget, with the latest evaluation in the bar's postfix.

    :param position: the bar's line (one per parallel worker); ``disable=None`` hides the bar
        when the output is not a terminal (logs, tests).
    """

    def __init__(
        self,
        description: str,
        budget: int,
        history: EvalHistory,
        position: int = 0,
        disable: bool | None = None,
    ) -> None:
        super().__init__()
        self.description, self.budget, self.history = description, budget, history
        self.position, self.disable = position, disable
        self.bar: tqdm | None = None
        self._seen_records = 0

    def _on_training_start(self) -> None:
        self.bar = tqdm(
            total=self.budget,
            desc=self.description,
            position=self.position,
            leave=False,
            unit="step",
            dynamic_ncols=True,
            disable=self.disable,
        )

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(min(self.num_timesteps, self.budget) - self.bar.n)
        if len(self.history.records) != self._seen_records:
            self._seen_records = len(self.history.records)
            self.bar.set_postfix(eval=f"{self.history.records[-1].eval_mean:.1f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()
