"""`osbatch jobs --state FAILED --pipeline X --since 1h`: which jobs to show."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


class FilterError(ValueError):
    """A filter the command line got wrong; the message shows the accepted form."""


def parse_since(text: str) -> timedelta:
    """`30m`, `1h`, `2d`: a duration back from now."""
    match = DURATION.match(text.lower())
    if not match:
        raise FilterError(f"--since {text!r}: give a number and a unit, e.g. 90s, 30m, 1h, 2d or 1w")
    return timedelta(**{UNITS[match.group(2)]: float(match.group(1))})


def parse_state(text: str) -> str:
    from osbatch.models import JobStateName

    try:
        return JobStateName(text.upper()).value
    except ValueError:
        known = ", ".join(state.value for state in JobStateName)
        raise FilterError(f"--state {text!r}: not a job state; one of {known}") from None


def _created(job: dict[str, Any]) -> datetime | None:
    # The job table's timestamps are ISO 8601 in UTC (osbatch.dal.items.utc_now).
    text = job.get("created_at")
    if not text:
        return None
    created = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def select_jobs(
    jobs: Iterable[dict[str, Any]],
    *,
    state: str | None = None,
    since: timedelta | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The jobs in that state and created within `since` of `now`, in their order, at most `limit`."""
    cutoff = (now or datetime.now(UTC)) - since if since is not None else None
    chosen = []
    for job in jobs:
        if state is not None and job.get("state") != state:
            continue
        if cutoff is not None:
            created = _created(job)
            if created is None or created < cutoff:
                continue
        chosen.append(job)
        if limit is not None and len(chosen) >= limit:
            break
    return chosen
