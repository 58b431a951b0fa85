"""Drain throughput against the number of drains at once on one queue, each its own process.

Not a test: it prints figures. Fanned-out drains run on separate instances; here they are
separate processes on one machine, so the figures show how SQS (or the emulator) shares one
queue among drains, and where this machine's CPUs, not SQS, become the limit. From the
template's root, against LocalStack's host runtime (or AWS):

    python -m benchmarks.scale_out_benchmark --endpoint-url http://127.0.0.1:4566

For each count of drains (``--drains``, default 1 2 4), on a fresh queue of ``--messages``
messages: the drains start together, each with ``--concurrency`` handlers that sleep
``--handler-ms``, and the rate is the messages deleted over the time from the start to the
last drain's end, its final empty long poll left out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .baked_app import bake, engine_module

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event


@dataclass(frozen=True)
class Run:
    drains: int
    messages: int
    seconds: float
    deleted: int
    per_drain: list[int]

    @property
    def per_second(self) -> float:
        return self.deleted / self.seconds if self.seconds else 0.0


def _sleep(milliseconds: float) -> Any:
    def handle(_: object) -> None:
        time.sleep(milliseconds / 1000)

    return handle


def _drain_process(args: dict[str, Any], go: Event, results: Any) -> None:
    """One drain, in its own process, once every drain is ready."""
    app = Path(args["app"])
    sqs_client = engine_module(app, "aws_session").sqs_client
    consumer = engine_module(app, "consumer")
    DrainOptions, drain = consumer.DrainOptions, consumer.drain
    Settings = engine_module(app, "settings").Settings

    settings = Settings(
        input_queue=args["url"],
        output_queue=args["url"],
        dlq="",
        region=args["region"],
        max_concurrency=args["concurrency"],
        auth_mode="default_chain",
    )
    client = sqs_client(settings)
    client.get_queue_attributes(QueueUrl=args["url"], AttributeNames=["QueueArn"])  # connect first
    options = DrainOptions(
        wait_time_seconds=args["wait"],
        max_concurrency=args["concurrency"],
        budget_seconds=3_600,
        visibility_timeout_seconds=300,
    )
    go.wait()
    summary = drain(client, args["url"], _sleep(args["handler_ms"]), options)
    # The pass ends with one empty long poll: not work.
    results.put((summary.deleted, time.time() - args["wait"]))


def measure(args: argparse.Namespace, client: Any, drains: int) -> Run:
    producer = engine_module(Path(args.app), "producer")
    OutgoingMessage, Sender = producer.OutgoingMessage, producer.Sender

    url = client.create_queue(QueueName=f"scale-bench-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    try:
        sent = Sender(client, url).send_batch([OutgoingMessage(f"m-{n}") for n in range(args.messages)])
        if sent.failed:
            raise SystemExit(f"could not fill the queue: {sent.failed} messages failed")
        context = multiprocessing.get_context("spawn")
        go, results = context.Event(), context.Queue()
        child_args = {
            "app": str(args.app),
            "url": url,
            "region": args.region,
            "concurrency": args.concurrency,
            "wait": args.wait_time_seconds,
            "handler_ms": args.handler_ms,
        }
        processes = [
            context.Process(target=_drain_process, args=(child_args, go, results)) for _ in range(drains)
        ]
        for process in processes:
            process.start()
        time.sleep(args.settle_seconds)  # imports and connections, before the clock starts
        started = time.time()
        go.set()
        finished = [results.get(timeout=3_600) for _ in processes]
        for process in processes:
            process.join()
        deleted = sum(count for count, _ in finished)
        return Run(
            drains,
            args.messages,
            max(end for _, end in finished) - started,
            deleted,
            [c for c, _ in finished],
        )
    finally:
        client.delete_queue(QueueUrl=url)


def table(runs: list[Run]) -> str:
    one = runs[0].per_second or 1.0
    lines = [
        "| drains at once | messages | deleted | msg/s | vs one drain | per drain |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.drains} | {r.messages} | {r.deleted} | {r.per_second:,.0f} | {r.per_second / one:.2f}x"
        f" | {', '.join(map(str, r.per_drain))} |"
        for r in runs
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale_out_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", required=True, help="an SQS endpoint: LocalStack or AWS")
    parser.add_argument("--drains", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--messages", type=int, default=4_000)
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32, help="each drain's SQS_MAX_CONCURRENCY")
    parser.add_argument("--wait-time-seconds", type=int, default=1)
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--app", type=Path, help="a baked app (default: the defaults, baked)")
    args = parser.parse_args(argv)
    args.app = args.app or bake()
    os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    import boto3

    client = boto3.client("sqs", region_name=args.region)
    runs = []
    for drains in args.drains:
        runs.append(measure(args, client, drains))
        print(runs[-1], file=sys.stderr)
    print(table(runs))
    print()
    machine = f"Python {platform.python_version()} on {platform.system()} {platform.machine()}"
    print(
        f"endpoint: {args.endpoint_url}; {args.handler_ms:g} ms handler, {args.concurrency} at once per "
        f"drain; {machine}, {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
