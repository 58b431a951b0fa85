"""``python -m <package>``: the ops commands (see cli.py)."""

import sys

from .ops.cli import main

sys.exit(main())
