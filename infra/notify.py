"""Who the alarms reach: e-mail addresses and existing SNS topics, from CDK context.

    npx cdk deploy -c alarm_emails=ops@example.com,oncall@example.com \\
                   -c alarm_topic_arns=arn:aws:sns:us-east-1:111122223333:paging

Each e-mail address gets a subscription to the stack's alarm topic (AWS sends a confirmation mail first);
each topic gets every ALARM and OK notification as well (its policy must let CloudWatch publish, and its
key, if any, let CloudWatch encrypt). A stack with neither still deploys, with a synth warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from osbatch.infra_facts import ConfigError

EMAILS_CONTEXT, TOPICS_CONTEXT = "alarm_emails", "alarm_topic_arns"
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
NO_TARGET_WARNING = (
    "osbatch: no alarm notification target: alarms only change state. Set context alarm_emails and/or "
    "alarm_topic_arns (see docs/deploy.md)."
)


@dataclass(frozen=True)
class AlarmTargets:
    emails: tuple[str, ...] = ()
    topic_arns: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.emails or self.topic_arns)

    @classmethod
    def from_context(cls, emails: Any, topic_arns: Any) -> AlarmTargets:
        """Comma-separated strings (`-c key=a,b`) or lists (cdk.json); every value is checked."""
        return cls(
            emails=_values(EMAILS_CONTEXT, emails, EMAIL, "an e-mail address"),
            topic_arns=_values(TOPICS_CONTEXT, topic_arns, TOPIC_ARN, "an SNS topic ARN"),
        )


def _values(key: str, raw: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ConfigError(f"context {key}: expected a comma-separated string or a list, got {raw!r}")
    values = tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))
    wrong = [value for value in values if not pattern.match(value)]
    if wrong:
        raise ConfigError(f"context {key}: {', '.join(repr(w) for w in wrong)} is not {what}")
    return values
