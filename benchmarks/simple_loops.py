"""The drain against the simple loops a first consumer is written as, across a simulated WAN.

Not a test: it prints figures. It proves the template, so it lives here, not in the app; it drives a baked
app's own drain benchmark (its latency proxy, queues and meters) and adds, at each round trip:

- a sequential loop: receive 10, then handle and delete each message one at a time (about 1.1 requests a
  message, the peer package's shape);
- receive 10 + delete them in one batch, no handler: one caller's ceiling.

    python -m benchmarks.simple_loops                                      # starts the app's moto
    python -m benchmarks.simple_loops --endpoint-url http://127.0.0.1:4566  # e.g. LocalStack

On moto a rate measures moto (it scans the queue on every receive): count requests with it, measure rates
on LocalStack or AWS. The README's "Figures" give dated runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .baked_app import app_benchmark, bake


def sequential_loop(client: Any, url: str, handler_seconds: float, handled: Any) -> None:
    """The usual first consumer: one message at a time, one delete per message."""
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        for message in messages:
            time.sleep(handler_seconds)
            handled.add(message.get("Body", ""))
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def receive_and_batch_delete(client: Any, url: str, handled: Any) -> None:
    """No handler: as fast as one caller can move messages through the endpoint."""
    while messages := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    ):
        for message in messages:
            handled.add(message.get("Body", ""))
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def loops_at_rtt(
    bench: Any, proxy: Any, args: argparse.Namespace, endpoint: str, direct: Any, rtt: float
) -> list[Any]:
    figures = []
    with proxy.latency_proxy_process(endpoint, one_way_ms=rtt / 2) as proxy_url:
        client = bench.app_client(bench.settings_for(args, 1), proxy_url)
        meter = bench.Meter(client)
        loops: list[tuple[str, Callable[[str, Any], None]]] = [
            ("sequential loop", lambda url, h: sequential_loop(client, url, args.handler_ms / 1000, h)),
            (
                "receive 10 + batch delete, no handler",
                lambda url, h: receive_and_batch_delete(client, url, h),
            ),
        ]
        for name, loop in loops:
            with bench.fresh_queue(direct, args.loop_messages, args.visibility_timeout) as url:
                handled = bench.Handled()
                started = meter.reset()
                loop(url, handled)
                figures.append(handled.figures(rtt, name, args.loop_messages, started=started, meter=meter))
            print(figures[-1], file=sys.stderr)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simple_loops", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--endpoint-url", help="an SQS endpoint (default: start the app's moto server)")
    parser.add_argument("--rtt-ms", default="0,20,80,160", help="round trips, e.g. 0,20,80,160")
    parser.add_argument("--messages", type=int, help="messages per drain run (default: 2,000; 300 on moto)")
    parser.add_argument("--loop-messages", type=int, help="messages per simple loop (default: a tenth)")
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--visibility-timeout", type=int, default=20, help="seconds (default 20)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--app", type=Path, help="a baked app (default: the defaults, baked)")
    args = parser.parse_args(argv)
    app = args.app or bake()
    bench = app_benchmark(app, "drain_benchmark")
    proxy = app_benchmark(app, "latency_proxy")
    args.messages = args.messages or (2_000 if args.endpoint_url else bench.MOTO_MESSAGES)
    args.loop_messages = args.loop_messages or max(10, args.messages // 10)
    args.concurrency = [32]  # the drain at its default, beside the loops
    args.handler = "sleep"  # the same sleeping handler in the drain and the loops
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    figures = []
    with bench.endpoint_for(args.endpoint_url) as endpoint:
        direct = bench.app_client(bench.settings_for(args, 32), endpoint)
        for rtt in bench.numbers(args.rtt_ms):
            drains, _ = bench.at_rtt(args, endpoint, direct, rtt)
            figures += drains + loops_at_rtt(bench, proxy, args, endpoint, direct, rtt)
    print("\n".join(bench.figures_table(figures)))
    print()
    print(bench.environment(endpoint, not args.endpoint_url, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
