"""``idempotency purge``: delete the idempotency records past their TTL, and the FIFO attempt
ledger's records past their expiry (``sqsattempts``: 14 days, SQS's longest retention).

Reads the environment (in Azure: the app settings), or fills it from ``--settings FILE``
(``local.settings.json``) the way ``func start`` does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...engine.settings import fill_environment, local_settings_path
from .common import EXIT_OK, add_settings_file_option, emit, settings_file_hint

if TYPE_CHECKING:
    from .common import Commands


def register_idempotency(commands: Commands) -> None:
    parser = commands.add_parser("idempotency", help="the idempotency records (see docs/idempotency.md)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    purge = actions.add_parser(
        "purge",
        help="delete the records past their TTL (IDEMPOTENCY_TTL_SECONDS), and the FIFO attempt "
        "ledger's past 14 days",
    )
    add_settings_file_option(purge)
    purge.set_defaults(run=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    from ...engine.attempt_ledger import TABLE, purge_expired_records
    from ...engine.idempotency.table_store import TableStore

    if args.settings:  # as the queue commands: never ./local.settings.json unasked (commands/common.py)
        fill_environment(local_settings_path(args.settings))
    with settings_file_hint():
        store = TableStore.from_environment()
    records = store.purge_expired()
    emit(
        {
            "table": store.settings.table,
            **records,
            "attempt_ledger": {"table": TABLE, **purge_expired_records()},
        }
    )
    return EXIT_OK


REGISTER: list[Callable[[Commands], None]] = [register_idempotency]
