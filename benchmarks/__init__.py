"""Benchmarks of MuZero against SB3's algorithms, run from the repository root (not installed).

- ``python -m benchmarks run --suite NAME``: the harness (``benchmarks.harness``);
- ``python -m benchmarks.cartpole``, ``.boardgame_play``, ``.engine_games``, ``.search``,
  ``.shogi_speed``: one benchmark each;
- ``python -m benchmarks.diagnostics.<name> MODEL.zip``: where a saved board-game model goes wrong.
"""
