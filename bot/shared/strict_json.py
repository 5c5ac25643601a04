"""JSON from outside, read so that no body can crash a handler or stall the loop.

`json.loads` as aiohttp calls it accepts `NaN` and `Infinity`, turns `1e999999` into
`inf`, parses a 100,000-digit integer (or raises a bare ValueError past Python's digit
limit), keeps lone surrogates and NUL characters that a database cannot store, and raises RecursionError on
deep nesting. Each of these is refused here with a message the client can act on.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32  # no request of ours nests deeper than a few levels
MAX_NUMBER_CHARS = 40  # enough for any id or amount; a long number is not data


class BadJson(ValueError):
    """The body is not JSON we accept; the message says why."""


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not a JSON number")


def _number(text: str) -> Decimal | int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BadJson(f"a number of {len(text)} characters is too long")
    return Decimal(text) if any(c in text for c in ".eE") else int(text)


def loads(raw: bytes | str) -> Any:
    """The decoded value; floats come back as `Decimal` (exact, never `inf`)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadJson("the body must be UTF-8 JSON") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_number, parse_int=_number)
    except json.JSONDecodeError as error:
        raise BadJson(f"malformed JSON: {error.msg} at position {error.pos}") from None
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    """Depth and strings, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _text(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadJson(f"JSON nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, inner in item.items():
                    _text(key)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)


def _text(text: str) -> None:
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        raise BadJson("a string holds a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson("a string holds a lone surrogate (an unpaired \\ud800-\\udfff escape)") from None
