"""Drain throughput and SQS requests per message: the app's consumer next to simple loops.

Not a test: it prints figures. From the project root:

    python -m benchmarks.drain_benchmark                                      # starts moto itself
    python -m benchmarks.drain_benchmark --endpoint-url http://127.0.0.1:4566  # e.g. LocalStack

In one run, each on a fresh queue of ``--messages`` messages, it measures:

- the app's drain with a handler that sleeps ``--handler-ms``;
- a sequential loop: receive 10, then handle and delete each message one at a time;
- the app's drain with a handler that does nothing;
- receive 10 + delete them in one batch, no handler: the endpoint's raw ceiling.

``--messages`` defaults to 2,000, or 300 on the moto server it starts itself.

Rates run from the first request to the last delete; the drain's final empty long poll
is left out of them and shown as the wall time. Requests are HTTP requests to SQS,
retries included. moto scans the whole queue on every receive, so on moto a rate measures
moto: count requests with it, measure rates on LocalStack or AWS.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from {{ cookiecutter.package_name }}.consumer import SqsMessage


MOTO_MESSAGES = 300


@dataclass(frozen=True)
class Figures:
    name: str
    messages: int
    seconds: float
    requests: int
    wall_seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def requests_per_message(self) -> float:
        return self.requests / self.messages if self.messages else 0.0


class Meter:
    """Counts the client's HTTP requests to SQS and notes when the last delete came back."""

    def __init__(self, client: SQSClient) -> None:
        self.requests = 0
        self.last_delete = 0.0
        self.lock = threading.Lock()
        client.meta.events.register("before-send.sqs", self._request)
        client.meta.events.register("after-call.sqs.DeleteMessage", self._deleted)
        client.meta.events.register("after-call.sqs.DeleteMessageBatch", self._deleted)

    def _request(self, **_: Any) -> None:
        with self.lock:
            self.requests += 1

    def _deleted(self, **_: Any) -> None:
        with self.lock:
            self.last_delete = time.monotonic()

    def measure(self, name: str, messages: int, run: Callable[[], None]) -> Figures:
        with self.lock:
            self.requests, self.last_delete = 0, 0.0
        started = time.monotonic()
        run()
        ended = time.monotonic()
        with self.lock:
            return Figures(name, messages, self.last_delete - started, self.requests, ended - started)


def fill(client: SQSClient, url: str, count: int) -> None:
    from {{ cookiecutter.package_name }}.producer import OutgoingMessage, Sender

    sender = Sender(client, url)
    chunks = [range(start, min(start + 100, count)) for start in range(0, count, 100)]
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(
            lambda chunk: sender.send_batch([OutgoingMessage(f"m-{n}") for n in chunk]), chunks
        )
        failed = sum(result.failed for result in results)
    if failed:
        raise SystemExit(f"could not fill the queue: {failed} messages failed")


@contextmanager
def fresh_queue(client: SQSClient, count: int) -> Iterator[str]:
    url = client.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        fill(client, url, count)
        yield url
    finally:
        client.delete_queue(QueueUrl=url)


def sleeper(milliseconds: float) -> Callable[[SqsMessage], None]:
    def handle(_: SqsMessage) -> None:
        time.sleep(milliseconds / 1000)

    return handle


def sequential_loop(client: SQSClient, url: str, handler_seconds: float, wait: int) -> None:
    """The usual first consumer: one message at a time, one delete per message."""
    while True:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", []
        )
        if not messages:
            return
        for message in messages:
            time.sleep(handler_seconds)
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def receive_and_batch_delete(client: SQSClient, url: str, wait: int) -> None:
    """No handler: as fast as one caller can move messages through the endpoint."""
    while True:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", []
        )
        if not messages:
            return
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def run(args: argparse.Namespace, endpoint: str) -> list[Figures]:
    from {{ cookiecutter.package_name }}.aws_session import sqs_client
    from {{ cookiecutter.package_name }}.consumer import DrainOptions, drain
    from {{ cookiecutter.package_name }}.settings import Settings

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    settings = Settings(
        input_queue="benchmark",
        output_queue="benchmark",
        dlq="",
        region=args.region,
        max_concurrency=args.concurrency,
        wait_time_seconds=args.wait_time_seconds,
        auth_mode="default_chain",
    )
    client = sqs_client(settings)
    meter = Meter(client)
    options = DrainOptions(
        wait_time_seconds=args.wait_time_seconds,
        max_concurrency=args.concurrency,
        budget_seconds=3_600,
        visibility_timeout_seconds=300,
    )
    n, sequential_n, wait = args.messages, args.sequential_messages or args.messages, args.wait_time_seconds
    handler_ms = args.handler_ms
    figures = []
    print(f"filling queues of {n} messages on {endpoint} ...", file=sys.stderr)
    with fresh_queue(client, n) as url:
        name = f"drain, {handler_ms:g} ms handler, {args.concurrency} at once"
        figures.append(
            meter.measure(name, n, lambda: check(drain(client, url, sleeper(handler_ms), options), n))
        )
    print(figures[-1], file=sys.stderr)
    with fresh_queue(client, sequential_n) as url:
        name = f"sequential loop, {handler_ms:g} ms handler"
        figures.append(
            meter.measure(name, sequential_n, lambda: sequential_loop(client, url, handler_ms / 1000, wait))
        )
    print(figures[-1], file=sys.stderr)
    with fresh_queue(client, n) as url:
        name = f"drain, no-op handler, {args.concurrency} at once"
        figures.append(meter.measure(name, n, lambda: check(drain(client, url, lambda _: None, options), n)))
    print(figures[-1], file=sys.stderr)
    with fresh_queue(client, n) as url:
        name = "receive 10 + batch delete, no handler (ceiling)"
        figures.append(meter.measure(name, n, lambda: receive_and_batch_delete(client, url, wait)))
    print(figures[-1], file=sys.stderr)
    return figures


def check(summary: Any, expected: int) -> None:
    if summary.deleted != expected:
        raise SystemExit(f"the drain deleted {summary.deleted} of {expected}: {summary}")


def table(figures: list[Figures]) -> str:
    lines = [
        "| consumer | messages | msg/s | SQS requests per message | wall time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {f.name} | {f.messages} | {f.per_second:,.0f} | {f.requests_per_message:.3f}"
        f" | {f.wall_seconds:.1f} |"
        for f in figures
    ]
    drain, sequential, no_op, ceiling = figures
    lines += [
        "",
        f"- drain vs sequential loop: {drain.per_second / sequential.per_second:.1f}x (target: at least 20x)",
        f"- drain requests per message: {drain.requests_per_message:.3f} (target: 0.22 at most)",
        f"- no-op drain vs the raw ceiling: {no_op.per_second / ceiling.per_second:.0%}",
    ]
    return "\n".join(lines)


def environment(endpoint: str, started_moto: bool) -> str:
    where = "moto server started by this script (rates measure moto)" if started_moto else endpoint
    return (
        f"endpoint: {where}; Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


@contextmanager
def endpoint_for(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from {{ cookiecutter.package_name }}.local_dev.emulator import start_emulator

    emulator = start_emulator(port=0)  # the app's embedded emulator, on a free port
    try:
        yield emulator.url
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.drain_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", help="an SQS endpoint (default: start a moto server)")
    parser.add_argument(
        "--messages", type=int, help="messages per queue (default: 2,000; 300 on the moto it starts)"
    )
    parser.add_argument(
        "--sequential-messages", type=int, help="messages for the sequential loop (default: same)"
    )
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32, help="the drain's SQS_MAX_CONCURRENCY")
    parser.add_argument("--wait-time-seconds", type=int, default=1)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    if args.messages is None:
        # moto's receive time grows with the queue's depth: 2,000 would take many minutes.
        args.messages = 2_000 if args.endpoint_url else MOTO_MESSAGES
    with endpoint_for(args.endpoint_url) as endpoint:
        figures = run(args, endpoint)
    print(table(figures))
    print()
    print(environment(endpoint, not args.endpoint_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
