"""The delivery_latency answer (issue 25): each plan bakes the configuration the one rule derives
(engine/delivery_plan.py) into the settings table's defaults and the Bicep; answers no configuration
meets are refused with their reason, leaving nothing behind; the always-ready instance names the app's
own timer function; and the printed bill agrees with the rule: its pick is the cheapest of the
configurations that meet the answer."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str
from cookiecutter.exceptions import FailedHookException

from delivery_extension import delivery_rule

from .conftest import Baked, Combination, clean_env, load_hook, run
from .test_hooks import bake, good_answers
from .test_plans_deploy import site_settings

RULE = delivery_rule()
SETTINGS = ("SQS_POLL_SCHEDULE", "SQS_POLL_UNTIL_NEXT_TICK", "SQS_POLL_WHILE_BUSY", "SQS_QUIET_SPELL_SECONDS")

# (plan, delivery_latency, instance_memory_mb) -> what the rule must give: the schedule, continuous
# polling, always-ready instances. The figures behind each choice: `python -m <package> costs`.
EXPECTED = [
    # Today's default bakes: nothing moves unasked.
    (("flex_consumption", "60", "2048"), ("0 */1 * * * *", False, 0)),
    (("premium", "1", "2048"), ("0 */1 * * * *", True, 0)),
    (("consumption", "60", "2048"), ("0 */1 * * * *", False, 0)),
    # Flex: ticks while on-demand execution is cheaper; an always-ready instance once the timer runs
    # most of the time (its baseline plus its lower execution price beat on-demand past ~40% busy).
    (("flex_consumption", "10", "2048"), ("*/10 * * * * *", False, 0)),
    (("flex_consumption", "3", "2048"), ("*/3 * * * * *", False, 1)),
    (("flex_consumption", "1", "512"), ("0 */1 * * * *", True, 1)),
    (("flex_consumption", "1000", "4096"), ("0 */5 * * * *", False, 0)),
    # Premium: its instance is paid anyway; continuous polling makes fewer SQS requests than short ticks.
    (("premium", "10", "2048"), ("0 */1 * * * *", True, 0)),
    (("premium", "120", "2048"), ("0 */2 * * * *", False, 0)),
    # Consumption has no always-ready instance: ticks, or polling continuously for a second.
    (("consumption", "10", "2048"), ("*/10 * * * * *", False, 0)),
    (("consumption", "1", "2048"), ("0 */1 * * * *", True, 0)),
]


def answers_for(plan: str, latency: str, memory: str) -> dict[str, str]:
    python = "3.12" if plan == "consumption" else "3.13"
    return {
        "hosting_plan": plan,
        "delivery_latency": latency,
        "instance_memory_mb": memory,
        "python_version": python,
    }


@pytest.mark.parametrize(("answers", "expected"), EXPECTED, ids=["-".join(a) for a, _ in EXPECTED])
def test_the_rule_picks_each_plans_cheapest_configuration(
    answers: tuple[str, str, str], expected: tuple[str, bool, int]
) -> None:
    chosen = RULE.derive(*answers)
    assert (chosen.schedule, chosen.continuous, chosen.always_ready) == expected
    assert chosen.poll_while_busy is False, "busy stays fast only adds cost: the owner turns it on"


BAKES = [EXPECTED[i] for i in (0, 1, 2, 4, 5, 6, 9, 10)]


@pytest.fixture(scope="module")
def bakes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Baked]:
    baked = {}
    for answers, _ in BAKES:
        out = bake(tmp_path_factory.mktemp("-".join(answers)), answers_for(*answers))
        [project] = out.iterdir()
        context = json.loads((project / ".cookiecutter.json").read_text(encoding="utf-8"))["cookiecutter"]
        baked[answers] = Baked(Combination("-".join(answers), answers_for(*answers)), project, context)
    return baked


@pytest.mark.parametrize(("answers", "expected"), BAKES, ids=["-".join(a) for a, _ in BAKES])
def test_each_bake_writes_what_the_rule_derives_into_the_settings_and_the_bicep(
    bakes: dict[tuple[str, str, str], Baked], answers: tuple[str, str, str], expected: tuple[str, bool, int]
) -> None:
    baked = bakes[answers]
    chosen = RULE.derive(*answers)
    entries = json.loads((baked.path / "infra" / "azure" / "app-settings.json").read_text(encoding="utf-8"))
    written = {entry["name"]: entry["value"] for entry in entries if entry["name"] in SETTINGS}
    assert written == chosen.settings()
    schedule, continuous, always_ready = expected
    assert (written["SQS_POLL_SCHEDULE"], written["SQS_POLL_UNTIL_NEXT_TICK"]) == (
        schedule,
        str(continuous).lower(),
    )
    # The oldest-message alarm's default follows the schedule (AWS stack).
    stack, problems = decode_str((baked.path / "infra" / "aws" / "template.yaml").read_text(encoding="utf-8"))
    assert problems == []
    alarm = stack["Parameters"]["OldestMessageAgeAlarmSeconds"]
    assert alarm["Default"] == chosen.oldest_message_alarm_seconds
    # The Bicep, as ARM would evaluate it for this bake's parameter defaults.
    _, parts = site_settings(baked)
    config = parts["site"]["properties"].get("functionAppConfig")
    if answers[0] != "flex_consumption":
        assert config is None, "only Flex Consumption has a functionAppConfig"
        return
    scale = parts["evaluate"](config["scaleAndConcurrency"])
    assert scale["instanceMemoryMB"] == int(answers[2])
    timer = [{"name": "function:drain_input_queue_on_timer", "instanceCount": 1}]
    assert scale["alwaysReady"] == (timer if always_ready else [])


def test_the_always_ready_group_names_the_apps_timer_function(
    bakes: dict[tuple[str, str, str], Baked],
) -> None:
    baked = bakes[("flex_consumption", "1", "512")]
    script = (
        "import json, azure.functions as func, function_app\n"
        "[app] = [v for v in vars(function_app).values() if isinstance(v, func.FunctionRegister)]\n"
        "print(json.dumps({f.get_function_name(): [json.loads(b)['type'] for b in f.get_raw_bindings()]"
        " for f in app.get_functions()}))"
    )
    result = run([sys.executable, "-c", script], baked.path, clean_env())
    assert result.returncode == 0, result.stderr
    timers = [name for name, types in json.loads(result.stdout).items() if "timerTrigger" in types]
    _, parts = site_settings(baked)
    scale = parts["evaluate"](parts["site"]["properties"]["functionAppConfig"]["scaleAndConcurrency"])
    # A timer is scaled on its own on Flex: its always-ready group is "function:<its name>".
    assert [group["name"] for group in scale["alwaysReady"]] == [f"function:{name}" for name in timers]


def healthy_worst_age(config: Any, receives: int = 5) -> float:
    """The oldest a message gets on a healthy app: it arrives just after a pass and fails ``receives`` - 1
    times, each retry visible after its backoff (5 s doubling, the settings' defaults) and received at the
    next tick, or at once when polling continuously."""
    backoffs = [5 * 2**n for n in range(receives - 1)]
    if config.continuous:
        return float(sum(backoffs))
    period = config.period_seconds
    age = float(period)
    for backoff in backoffs:
        age = math.ceil((age + backoff) / period) * period
    return age


@pytest.mark.parametrize("plan", RULE.PLANS)
def test_the_oldest_message_alarm_stays_quiet_on_every_schedule_the_rule_can_derive(plan: str) -> None:
    for config in RULE.candidates(plan):
        threshold = config.oldest_message_alarm_seconds
        assert threshold >= 2 * healthy_worst_age(config), config.label
        assert threshold <= max(600, 2 * healthy_worst_age(config)), "no slower to fire than it must be"


REFUSED = [
    ("consumption", "0.5", "2048", "delivery_latency", "The nearest answer that works is 1"),
    ("flex_consumption", "0.2", "2048", "delivery_latency", "The nearest answer that works is 1"),
    ("premium", "0", "2048", "delivery_latency", "must be a number of seconds"),
    ("flex_consumption", "soon", "2048", "delivery_latency", "must be a number of seconds"),
    ("flex_consumption", "60", "1024", "instance_memory_mb", "must be one of 512, 2048, 4096"),
    ("premium", "1", "4096", "instance_memory_mb", "only Flex Consumption lets you size its instances"),
]


@pytest.mark.parametrize(("plan", "latency", "memory", "field", "words"), REFUSED)
def test_answers_no_configuration_meets_are_refused_with_the_reason(
    plan: str, latency: str, memory: str, field: str, words: str
) -> None:
    answers = {**good_answers(), **answers_for(plan, latency, memory)}
    errors = load_hook("pre_gen_project").validate(answers)
    assert [(e.field, words in e.rule) for e in errors] == [(field, True)]


@pytest.mark.parametrize(("plan", "latency", "memory", "field", "words"), [REFUSED[0], REFUSED[4]])
def test_a_refused_delivery_bake_names_the_field_and_leaves_nothing_behind(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    plan: str,
    latency: str,
    memory: str,
    field: str,
    words: str,
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path, answers_for(plan, latency, memory))
    err = capfd.readouterr().err
    assert f"error: {field}: " in err
    assert words in err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("latency", ["1", "3", "10", "60", "300"])
def test_the_printed_bill_shows_the_rules_pick_as_the_cheapest_that_meets_the_answer(
    bakes: dict[tuple[str, str, str], Baked], latency: str
) -> None:
    baked = bakes[("flex_consumption", "60", "2048")]
    result = run(
        [sys.executable, "-m", baked.package, "costs", "--delivery-latency", latency], baked.path, clean_env()
    )
    assert result.returncode == 0, result.stderr
    bill: dict[str, Any] = json.loads(result.stdout)
    idle = [row for row in bill["bills"] if row["traffic"] == "idle"]
    [chosen] = [row for row in idle if row["chosen"]]
    meeting = [row for row in idle if row["meets"]]
    assert chosen["meets"]
    assert chosen["usd"] == min(row["usd"] for row in meeting)
    assert len(idle) >= 3, "the bill shows what the pick was weighed against"
    # Each configuration's quiet-queue p99 is within the p99 it promises (the simulation agrees).
    assert all(row["p99"] <= float(latency) for row in meeting)


def in_words(config: Any) -> str:
    """A configuration as docs/delivery-latency.md's table names it."""
    if config.continuous:
        shape = "continuous"
    elif config.period_seconds == 60:
        shape = "a tick a minute"
    elif config.period_seconds > 60:
        shape = f"a tick every {config.period_seconds // 60} minutes"
    else:
        shape = f"a tick every {config.period_seconds} s"
    return shape + (f", {config.always_ready} always-ready instance" if config.always_ready else "")


def test_the_docs_table_of_what_each_plan_derives_is_the_rules(
    bakes: dict[tuple[str, str, str], Baked],
) -> None:
    page = (bakes[("flex_consumption", "60", "2048")].path / "docs" / "delivery-latency.md").read_text(
        encoding="utf-8"
    )
    rows = [line for line in page.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) >= 4
    for row in rows:
        answer, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        latency = answer.split()[0]
        assert cells == [in_words(RULE.derive(plan, latency)) for plan in RULE.PLANS], row
