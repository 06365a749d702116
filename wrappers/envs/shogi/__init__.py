"""Pieces of the shogi PettingZoo env (``wrappers.envs.shogi_v0``): action encoding,
observation planes, repetition rules and text rendering, each in its own module."""
