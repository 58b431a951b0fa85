"""``costs``: the bill of the delivery configuration the ``delivery_latency`` answer derived. It agrees with
the settings table this app was baked with and with the README's table, picks the cheapest configuration
that meets the answer, and refuses an answer none meets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.engine import delivery_plan as rule
from {{ cookiecutter.package_name }}.engine.settings import TABLE
from {{ cookiecutter.package_name }}.ops.cli import main
from {{ cookiecutter.package_name }}.ops.commands.costs import FIFO

PROJECT = Path(__file__).resolve().parents[1]


def costs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["costs", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_bakes_answers_derive_the_settings_tables_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = costs(capsys)
    assert code == 0
    bill: dict[str, Any] = json.loads(out)
    defaults = {setting.name: setting.default_text for setting in TABLE}
    # After an update of the engine (its prices, its rule), a stale default shows here.
    assert {name: defaults[name] for name in bill["chosen"]["settings"]} == bill["chosen"]["settings"]
    assert bill["answers"]["delivery_latency"] == float("{{ cookiecutter.delivery_latency }}")
    assert bill["prices_read"] == rule.PRICES_READ
    assert all(price["source"] and price["usd"] > 0 for price in bill["prices"])


@pytest.mark.parametrize("latency", ["1", "2", "10", "60", "600"])
@pytest.mark.parametrize("plan", rule.PLANS)
def test_the_choice_is_the_cheapest_configuration_that_meets_the_answer(
    capsys: pytest.CaptureFixture[str], plan: str, latency: str
) -> None:
    code, out, _ = costs(
        capsys, "--plan", plan, "--delivery-latency", latency, "--instance-memory-mb", "2048"
    )
    assert code == 0
    bill: dict[str, Any] = json.loads(out)
    idle = {row["configuration"]: row for row in bill["bills"] if row["traffic"] == "idle"}
    [chosen] = [row for row in idle.values() if row["chosen"]]
    assert chosen["meets"]
    assert chosen["usd"] == min(row["usd"] for row in idle.values() if row["meets"])
    # Against every configuration the rule weighs, not only the ones printed.
    meeting = [c for c in rule.candidates(plan) if rule.promised_p99(c) <= float(latency)]
    weighed = [rule.bill(c, rule.IDLE, fifo=FIFO) for c in meeting]
    assert round(chosen["usd"], 6) == round(min(b.usd for b in weighed), 6)


def test_busy_stays_fast_costs_nothing_on_a_quiet_queue_and_more_under_traffic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = costs(capsys, "--plan", "flex_consumption", "--delivery-latency", "60")
    assert code == 0
    rows = json.loads(out)["bills"]
    busy = {r["traffic"]: r for r in rows if "busy stays fast" in r["configuration"]}
    default = {r["traffic"]: r for r in rows if r["chosen"]}
    assert busy["idle"]["gb_seconds"] == default["idle"]["gb_seconds"]
    assert busy["sparse"]["gb_seconds"] > 10 * default["sparse"]["gb_seconds"]
    assert busy["sparse"]["p99"] < 1 < default["sparse"]["p99"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--delivery-latency", "0.5"], "The nearest answer that works is 1"),
        (["--delivery-latency", "soon"], "must be a number of seconds"),
        (["--plan", "premium", "--instance-memory-mb", "512"], "only Flex Consumption"),
    ],
)
def test_an_answer_no_configuration_meets_is_refused_with_the_reason(
    capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    code, out, err = costs(capsys, *args)
    assert code == 2
    assert out == ""
    assert words in err


def test_the_readmes_bill_is_the_costs_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = costs(capsys, "--markdown")
    assert code == 0
    readme = (PROJECT / "README.md").read_text(encoding="utf-8").splitlines()
    chosen = rule.derive(
        "{{ cookiecutter.hosting_plan }}",
        "{{ cookiecutter.delivery_latency }}",
        "{{ cookiecutter.instance_memory_mb }}",
    )
    printed = [line for line in out.splitlines() if line.startswith(f"| {chosen.label} | yes")]
    assert len(printed) == len(rule.PATTERNS)
    for pattern, line in zip(rule.PATTERNS, printed, strict=True):
        # The README's table is the printed one without its two configuration columns.
        [row] = [row for row in readme if row.startswith(f"| {pattern.title} |")]
        assert line.endswith(row[1:])
