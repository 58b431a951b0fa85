"""``python -m <package>.idempotency purge``: delete the idempotency records past their TTL.

Reads the environment (in Azure: the app settings), or fills it from ``--settings FILE``
(``local.settings.json``) the way ``func start`` does. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from ..settings import SettingsError, local_settings_path, local_settings_values
from .table_store import TableStore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purge = commands.add_parser("purge", help="delete the records past their TTL (IDEMPOTENCY_TTL_SECONDS)")
    purge.add_argument("--settings", help="a local.settings.json to read (default: ./local.settings.json)")
    args = parser.parse_args(argv)
    try:
        path = local_settings_path(args.settings)
        if path is not None:
            for name, value in local_settings_values(path).items():
                os.environ.setdefault(name, value)
        store = TableStore.from_environment()
        counts = store.purge_expired()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"table": store.settings.table, **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
