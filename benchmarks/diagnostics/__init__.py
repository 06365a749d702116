"""Where a saved board-game MuZero goes wrong: learned rewards, values, missed tactics, losses.

Each module is a command: ``python -m benchmarks.diagnostics.tictactoe_diagnostics MODEL.zip``,
``python -m benchmarks.diagnostics.connect_four_diagnostics MODEL.zip`` and
``python -m benchmarks.diagnostics.connect_four_losses MODEL.zip``.
"""
