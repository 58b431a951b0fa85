"""The ops commands, one module per group; ``ops/cli.py`` puts them together.

To add a command, write a ``register_<name>(commands)`` function in its group that adds its
parser and sets ``run``, and list it in the group's ``REGISTER``.
"""
