"""Operator tools, not functions: the ``python -m <package>`` CLI and, never deployed, ``local_dev``."""
