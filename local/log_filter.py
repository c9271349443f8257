"""CloudWatch Logs' JSON filter pattern `{ $.Key = "value" }` for the local stack's FilterLogEvents.

moto 5.2.1 (moto/logs/utils.py, EventMessageFilter) knows quoted terms and bare words; any other
pattern, a JSON one included, matches every event. The operator's `status` searches the function's
log with `{ $.SecretId = "<arn>" }` (Sources/AWS/CloudWatchLogs.swift), so on moto a secret would see
every other secret's step lines and a test could not tell an exact search from a loose one.

What is implemented, as CloudWatch Logs documents it ("Using filter patterns to match terms in JSON
log events"): an event matches when its message is a JSON object whose root member `Key` is a string
equal to `value`, the whole of it, case included; a message that is not JSON matches no JSON pattern.
Inside the quotes `*` is a wildcard and `%...%` a regular expression; the function never sends
either, so such a value, and every other JSON form (nested selectors, `!=`, `&&`, numbers), is
refused rather than matched loosely. Patterns that are not JSON go to moto's filter as before.
"""

from __future__ import annotations

import json
import re
from typing import Any

# `{ $.Key = "value" }`, spaces optional around each part; the value's characters exclude the quote,
# the backslash and the two that are not literal there (`*`, `%`).
_MEMBER_EQUALS = re.compile(r'\{\s*\$\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"\\*%]*)"\s*\}')


class UnsupportedFilterPattern(ValueError):
    """A JSON filter pattern this emulation does not implement: an error, never match-everything."""


def member_equality(pattern: str) -> tuple[str, str] | None:
    """(member, value) of a `{ $.member = "value" }` pattern; None when the pattern is not JSON;
    UnsupportedFilterPattern for any other JSON pattern."""
    text = pattern.strip()
    if not text.startswith("{"):
        return None
    found = _MEMBER_EQUALS.fullmatch(text)
    if found is None:
        raise UnsupportedFilterPattern(f"the local stack implements only {{ $.Key = \"value\" }}, not {pattern!r}")
    return found.group(1), found.group(2)


def matches(member: str, value: str, message: str) -> bool:
    """Whether `message` is a JSON object whose root member `member` is the string `value`."""
    try:
        parsed: Any = json.loads(message)
    except ValueError:
        return False
    # A number, a boolean or null never equals a string here, so the compare is of strings alone.
    return isinstance(parsed, dict) and parsed.get(member) == value


def message_filter_class(moto_filter: type) -> type:
    """A drop-in for moto's EventMessageFilter (moto.logs.models imports it by name): JSON
    equality patterns as above, every other pattern as moto's own class matches it."""

    class EventMessageFilter:
        def __init__(self, pattern: str) -> None:
            self._equality = member_equality(pattern or "")
            self._moto = None if self._equality else moto_filter(pattern)

        def matches(self, message: str) -> bool:
            if self._equality is None:
                return self._moto.matches(message)
            return matches(*self._equality, message)

    return EventMessageFilter
