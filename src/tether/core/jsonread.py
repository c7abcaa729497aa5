"""Reading JSON from untrusted bytes with a nesting limit, checked before the
parser runs (a linear scan), so that no document reaches a recursive parser
or, later, a recursive encoder, deeper than its reader allows: the client
protocol's frames and /client/register bodies, and a backup's header and
manifest. Every refusal is a ValueError (``TooDeep`` for the nesting)."""

from __future__ import annotations

import json
import re
from itertools import accumulate


class TooDeep(ValueError):
    """JSON nested deeper than the reader allows."""


# a string, or an unterminated one up to the end (which never backtracks: linear on any input)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), without parsing it."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def loads(data: str | bytes, max_depth: int):
    """``json.loads`` refusing nesting deeper than ``max_depth`` before it parses."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # UnicodeDecodeError is a ValueError
    if depth(text) > max_depth:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # not reached within any sane max_depth; kept so no input escapes as a crash
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from None
