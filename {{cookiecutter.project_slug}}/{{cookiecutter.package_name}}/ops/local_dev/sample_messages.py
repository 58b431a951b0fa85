"""Sample work for the trigger: messages that fit ``handler.handle_message``, and poison ones; in the
envelope of what feeds the queue (the message_source answer, {{ cookiecutter.message_source }}).

``python -m <package> samples`` puts them on the input queue of the endpoint the
settings point at (``local.settings.json``: the local emulator or LocalStack); the
trigger drains them on its next tick. The smoke command sends the same ones, through the
source itself (``good_payload`` and ``poison_payload``: what the source carries).
When you change the message model, change these too.
"""

from __future__ import annotations

import json
import uuid
{%- if cookiecutter.message_source in ("sns", "eventbridge") %}
from typing import Any
{%- elif cookiecutter.message_source == "s3" %}
from urllib.parse import unquote_plus
{%- endif %}

from ...engine.producer import OutgoingMessage
from ...engine.queues import is_fifo
{%- if cookiecutter.message_source == "sns" %}
from .source_events import sns_notification
{%- elif cookiecutter.message_source == "s3" %}
from .source_events import s3_notification
{%- elif cookiecutter.message_source == "eventbridge" %}
from .source_events import eventbridge_event
{%- endif %}

# What feeds the queue (the smoke sends through it), and the source of the events the stack's rule takes
# (infra/aws, EventSource; for eventbridge).
MESSAGE_SOURCE = "{{ cookiecutter.message_source }}"
EVENT_SOURCE = {{ cookiecutter.project_slug | tojson }}
# Why the handler refuses the poison sample (the smoke's report says it).
POISON_WHY = {{ 'not under incoming/' | tojson if cookiecutter.message_source == "s3" else '\'no "action"\'' }}
GOOD_GROUP = "samples"
POISON_GROUP = "samples-poison"  # its own FIFO group, so it blocks no good message


{%- if cookiecutter.message_source == "http" %}


def good_payload(run: str, number: int) -> str:
    return json.dumps({"id": f"{run}-{number}", "action": "sample", "payload": {"number": number}})


def poison_payload(run: str, number: int) -> str:
    """Valid JSON the handler refuses (no "action"): it fails on every receive, then goes to the DLQ."""
    return json.dumps({"id": f"{run}-poison-{number}", "payload": {}})


def envelope(payload: str) -> str:
    """The body is the payload itself: the app's send functions and your own senders send it as it is."""
    return payload


def sample_id(body: str) -> str:
    """The ID a sample body carries (the smoke finds its poison message in the DLQ by it)."""
    return str(json.loads(body).get("id"))
{%- elif cookiecutter.message_source == "s3" %}


# As the bucket's notifications bring them (source_events.py has AWS's shape): keys with a space and a
# non-ASCII letter, which S3 URL-encodes.
BUCKET = "smoke-files"


def good_payload(run: str, number: int) -> str:
    """The key of a new object."""
    return f"incoming/{run} Zoë {number}.json"


def poison_payload(run: str, number: int) -> str:
    """The key of an object the handler refuses (not under incoming/): it fails, then the DLQ."""
    return f"rejected/{run}-poison-{number}.json"


def envelope(key: str) -> str:
    """The bucket's notification of a new object."""
    return s3_notification(BUCKET, key)


def sample_id(body: str) -> str:
    """The ID a sample body carries (the smoke finds its poison message in the DLQ by it)."""
    key = unquote_plus(json.loads(body)["Records"][0]["s3"]["object"]["key"])
    return key.rsplit("/", 1)[-1].removesuffix(".json")
{%- else %}


def _work_item(run: str, name: str, number: int, action: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": f"{run}-{name}", "payload": {"number": number}}
    return item | ({"action": action} if action else {})


def good_payload(run: str, number: int) -> str:
    """A WorkItem, {{ "the Message of a notification" if cookiecutter.message_source == "sns" else "the detail of an event" }}."""
    return json.dumps(_work_item(run, str(number), number, "sample"))


def poison_payload(run: str, number: int) -> str:
    """A WorkItem without "action": it fails on every receive, then goes to the DLQ."""
    return json.dumps(_work_item(run, f"poison-{number}", number, None))
{%- if cookiecutter.message_source == "sns" %}


def envelope(payload: str) -> str:
    """The topic's notification (source_events.py has AWS's shape), the payload its Message."""
    return sns_notification("smoke", payload)


def sample_id(body: str) -> str:
    """The ID a sample body carries (the smoke finds its poison message in the DLQ by it)."""
    return str(json.loads(json.loads(body)["Message"]).get("id"))
{%- else %}


def envelope(payload: str) -> str:
    """The rule's event (source_events.py has AWS's shape), the payload its detail."""
    return eventbridge_event(EVENT_SOURCE, "WorkItem", json.loads(payload))


def sample_id(body: str) -> str:
    """The ID a sample body carries (the smoke finds its poison message in the DLQ by it)."""
    return str(json.loads(body)["detail"].get("id"))
{%- endif %}
{%- endif %}


def good_message(run: str, number: int) -> str:
    return envelope(good_payload(run, number))


def poison_message(run: str, number: int) -> str:
    return envelope(poison_payload(run, number))


def new_run_id() -> str:
    """Makes bodies unique per run, so FIFO content-based deduplication never drops a rerun."""
    return uuid.uuid4().hex[:8]


def sample_messages(queue_url: str, count: int, poison: int) -> list[OutgoingMessage]:
    """``count`` good and ``poison`` poison messages for the queue, in FIFO groups of their own on FIFO."""
    fifo = is_fifo(queue_url)
    run = new_run_id()
    good = [
        OutgoingMessage(good_message(run, n), group_id=GOOD_GROUP if fifo else None)
        for n in range(1, count + 1)
    ]
    bad = [
        OutgoingMessage(poison_message(run, n), group_id=POISON_GROUP if fifo else None)
        for n in range(1, poison + 1)
    ]
    return good + bad
