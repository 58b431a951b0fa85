"""A drain token: a request for one more drain pass. It carries no message.

SQS visibility keeps each message with one drain, so a lost token costs parallelism and a
token run twice adds some; neither loses or reorders a message. A token older than one
budget is dropped unrun: the tick that asked for it has ended, and the next tick decides
again with fresh figures.

The same queue carries the watchdog (``watchdog.py``): a ``WatchdogToken``, told apart by its
``kind``. A drain token has no ``kind`` (tokens of earlier versions read the same).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

TOKEN_VERSION = 1
WATCHDOG_KIND = "watchdog"


class BadToken(ValueError):
    """A queue message that is not a drain token of this app."""


@dataclass(frozen=True)
class DrainToken:
    queue: str
    issued_at: float
    budget_seconds: float
    fan_out_id: str
    version: int = TOKEN_VERSION

    def age_seconds(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.issued_at

    def is_stale(self, now: float | None = None) -> bool:
        return self.age_seconds(now) > self.budget_seconds

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> DrainToken:
        try:
            fields = json.loads(text)
            token = cls(
                queue=str(fields["queue"]),
                issued_at=float(fields["issued_at"]),
                budget_seconds=float(fields["budget_seconds"]),
                fan_out_id=str(fields["fan_out_id"]),
                version=int(fields["version"]),
            )
        except (ValueError, TypeError, KeyError) as error:
            raise BadToken(f"not a drain token ({type(error).__name__}: {error}): {text[:200]!r}") from None
        if token.version != TOKEN_VERSION:
            raise BadToken(f"drain token version {token.version}, this app reads {TOKEN_VERSION}")
        return token


@dataclass(frozen=True)
class WatchdogToken:
    """The watchdog's message: whether it runs is for the chain's record to say, not the message."""

    queue: str
    issued_at: float
    kind: str = WATCHDOG_KIND
    version: int = TOKEN_VERSION

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def decode_token(text: str) -> DrainToken | WatchdogToken:
    """A drain token or the watchdog, from a message of the token queue; ``BadToken`` otherwise."""
    try:
        fields = json.loads(text)
        kind = fields.get("kind") if isinstance(fields, dict) else None
    except ValueError:
        kind = None
    if kind != WATCHDOG_KIND:
        return DrainToken.decode(text)
    try:
        token = WatchdogToken(
            queue=str(fields["queue"]), issued_at=float(fields["issued_at"]), version=int(fields["version"])
        )
    except (ValueError, TypeError, KeyError) as error:
        raise BadToken(f"not a watchdog token ({type(error).__name__}: {error}): {text[:200]!r}") from None
    if token.version != TOKEN_VERSION:
        raise BadToken(f"watchdog token version {token.version}, this app reads {TOKEN_VERSION}")
    return token
