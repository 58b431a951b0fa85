"""Sample work for the trigger: messages that fit ``message_handler.WorkItem``, and poison ones.

``python -m <package>.sample_messages`` puts them on the input queue of the endpoint the
settings point at (``local.settings.json``: the local emulator or LocalStack); the
trigger drains them on its next tick. The smoke command sends the same ones.
When you change the message model, change these too.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from botocore.exceptions import BotoCoreError, ClientError

from ..aws_session import reset_clients, sqs_client
from ..producer import OutgoingMessage, Sender
from ..queues import is_fifo, queue_url
from ..settings import SettingsError, local_settings_path, use_local_settings

GOOD_GROUP = "samples"
POISON_GROUP = "samples-poison"  # its own FIFO group, so it blocks no good message


def good_message(run: str, number: int) -> str:
    return json.dumps({"id": f"{run}-{number}", "action": "sample", "payload": {"number": number}})


def poison_message(run: str, number: int) -> str:
    """Valid JSON the handler refuses (no "action"): it fails on every receive, then goes to the DLQ."""
    return json.dumps({"id": f"{run}-poison-{number}", "payload": {}})


def new_run_id() -> str:
    """Makes bodies unique per run, so FIFO content-based deduplication never drops a rerun."""
    return uuid.uuid4().hex[:8]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.sample_messages",
        description="Put sample messages (and poison ones) on the input queue.",
    )
    parser.add_argument("--count", type=int, default=5, help="good messages (default 5)")
    parser.add_argument("--poison", type=int, default=1, help="poison messages (default 1)")
    parser.add_argument("--settings", help="settings file (default: ./local.settings.json if present)")
    parser.add_argument("--endpoint-url", help="SQS endpoint (default: AWS_ENDPOINT_URL, else AWS)")
    args = parser.parse_args(argv)
    overrides: dict[str, str | None] = {}
    if args.endpoint_url:
        overrides = {"AWS_ENDPOINT_URL": args.endpoint_url, "AWS_ENDPOINT_URL_SQS": None}
    try:
        settings = use_local_settings(local_settings_path(args.settings), overrides)
        reset_clients()
        client = sqs_client(settings)
        url = queue_url(client, settings.input_queue)
        fifo = is_fifo(url)
        run = new_run_id()
        messages = [
            OutgoingMessage(good_message(run, n), group_id=GOOD_GROUP if fifo else None)
            for n in range(1, args.count + 1)
        ] + [
            OutgoingMessage(poison_message(run, n), group_id=POISON_GROUP if fifo else None)
            for n in range(1, args.poison + 1)
        ]
        result = Sender(client, url, max_message_bytes=settings.max_message_bytes).send_batch(messages)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: could not reach the input queue: {error}", file=sys.stderr)
        return 1
    for failure in result.failures:
        print(
            f"error: message {failure.index} was not sent: {failure.code}: {failure.reason}", file=sys.stderr
        )
    print(
        f"Sent {result.sent} of {len(messages)} messages ({args.count} good, {args.poison} poison, "
        f"run {run}) to {url}."
    )
    return 0 if not result.failures else 1


if __name__ == "__main__":
    sys.exit(main())
