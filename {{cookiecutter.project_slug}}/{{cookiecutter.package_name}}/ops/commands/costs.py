"""``costs``: what this app's delivery configuration gives and bills, beside what it was weighed against.

For the bake's answers (or others given on the command line), the configuration the rule derives
(``engine/delivery_plan.py``) and its alternatives: p50 and p99 of a message's wait when the queue is
idle, under sparse steady traffic and under bursts separated by silence; and a month's GB-s,
executions, SQS requests and dollars, with the prices used and where they come from. Figures come from
the rule's simulation, at ``--rtt-ms`` to AWS; ``benchmarks/latency_benchmark.py`` measures them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

from ...engine import delivery_plan as rule
from .common import EXIT_OK, BadInput, emit

if TYPE_CHECKING:
    from .common import Commands

# The bake's answers.
PLAN = "{{ cookiecutter.hosting_plan }}"
DELIVERY_LATENCY = "{{ cookiecutter.delivery_latency }}"
INSTANCE_MEMORY_MB = "{{ cookiecutter.instance_memory_mb }}"
FIFO = {{cookiecutter.input_queue_name | tojson}}.endswith(".fifo")


def register_costs(commands: Commands) -> None:
    parser = commands.add_parser(
        "costs",
        help="p50, p99 and a month's bill of the delivery configuration and its alternatives",
    )
    parser.add_argument(
        "--plan", choices=rule.PLANS, default=PLAN, help="hosting plan (default: %(default)s)"
    )
    parser.add_argument(
        "--delivery-latency",
        default=DELIVERY_LATENCY,
        help="p99 seconds a message on a quiet queue may wait (default: the answer, %(default)s)",
    )
    parser.add_argument(
        "--instance-memory-mb",
        default=INSTANCE_MEMORY_MB,
        help="Flex Consumption's instance memory (default: %(default)s)",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=rule.DEFAULT_RTT_SECONDS * 1000,
        help="round trip to AWS (default: %(default)g)",
    )
    parser.add_argument("--markdown", action="store_true", help="print tables, not JSON")
    parser.set_defaults(run=run_costs)


def run_costs(args: argparse.Namespace) -> int:
    rtt = args.rtt_ms / 1000
    try:
        latency, _ = rule.parse_answers(args.plan, args.delivery_latency, args.instance_memory_mb)
        chosen = rule.derive(args.plan, args.delivery_latency, args.instance_memory_mb, rtt=rtt)
    except rule.Refused as refused:
        raise BadInput(str(refused)) from None
    shown = rule.weighed_against(chosen, latency)
    bills = [bill for config in shown for bill in rule.month_of(config, rtt=rtt, fifo=FIFO)]
    if args.markdown:
        print(
            f"{args.plan}, delivery_latency {latency:g} s, instance_memory_mb {chosen.instance_memory_mb}, "
            f"RTT {args.rtt_ms:g} ms to AWS; a month, before free grants."
        )
        print(f"The rule's choice: {chosen.label}.")
        print(
            "Its settings: "
            + ", ".join(f"{name}={value}" for name, value in {**chosen.settings(), **chosen.bicep()}.items())
        )
        print()
        print("\n".join(rule.bill_rows(bills, delivery_latency=latency)))
        print()
        print("\n".join(rule.price_lines(args.plan)))
        return EXIT_OK
    emit(
        {
            "answers": {
                "hosting_plan": args.plan,
                "delivery_latency": latency,
                "instance_memory_mb": chosen.instance_memory_mb,
            },
            "rtt_ms": args.rtt_ms,
            "chosen": {"label": chosen.label, "settings": chosen.settings(), "bicep": chosen.bicep()},
            "bills": [
                {
                    "configuration": bill.config.label,
                    "meets": rule.promised_p99(bill.config) <= latency,
                    "chosen": bill.config == chosen,
                    "traffic": bill.pattern.name,
                    **{key: value for key, value in asdict(bill).items() if key not in ("config", "pattern")},
                    "usd": bill.usd,
                }
                for bill in bills
            ],
            "prices": [asdict(price) for price in rule.PRICES],
            "prices_read": rule.PRICES_READ,
            "free_grants": rule.FREE_GRANTS,
        }
    )
    return EXIT_OK


REGISTER: list[Callable[[Commands], None]] = [register_costs]
