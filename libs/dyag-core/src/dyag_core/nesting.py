"""JSON from outside, with a depth limit: a document that nests lists and objects deeper than anything the project
reads (a catalog, a dataset line, a test set, a result document) is refused by name, before the standard parser's
RecursionError or a recursive walk further on can turn it into a server error."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

# A catalog record sits 3 levels deep ({"key": [{...}]}), its nested fields 2 or 3 more; chat messages as deep.
MAX_DEPTH = 64


class NotJson(json.JSONDecodeError):
    """What Python's parser accepts but JSON has not, or what it cannot hold: NaN and Infinity, a number too large
    for a float (1e400), an integer of more than 4,300 digits. A JSONDecodeError without a position: `msg` says
    what."""

    def __init__(self, msg: str):
        super().__init__(msg, "", 0)

    def __str__(self) -> str:
        return self.msg


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotJson(f"the number {text[:20]}{'…' if len(text) > 20 else ''} is too large for a float")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise NotJson(f"an integer of {len(text.lstrip('-')):,} digits (at most {MAX_DIGITS:,})")
    return int(text)


MAX_DIGITS = 4300  # Python's own limit on converting a string to an int


class TooDeep(ValueError):
    """The document nests lists and objects more than `limit` levels deep."""

    def __init__(self, limit: int = MAX_DEPTH):
        super().__init__(f"lists and objects are nested more than {limit} levels deep (at most {limit} are accepted)")
        self.limit = limit


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """`value` itself when its lists and objects nest at most `limit` levels deep (a scalar: 0, [] or {}: 1); else
    TooDeep. Iterative: any depth is measured without recursion, and it stops at the first level past the limit."""
    if not isinstance(value, (list, dict)):
        return value
    level, stack = 1, [iter(value.values() if isinstance(value, dict) else value)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, dict)):
                level += 1
                if level > limit:
                    raise TooDeep(limit)
                stack.append(iter(item.values() if isinstance(item, dict) else item))
                break
        else:
            stack.pop()
            level -= 1
    return value


def loads(
    data: str | bytes, limit: int = MAX_DEPTH, loader: Callable[..., Any] = json.loads, *, strict: bool = True
) -> Any:
    """`loader(data)` (json.loads by default) with the depth limit: TooDeep, a ValueError, however deep the nesting
    (the standard parser's RecursionError past about 1,000 levels included); JSONDecodeError as before. `strict`
    (json.loads only): NaN, Infinity, 1e400 and integers of more than 4,300 digits are NotJson, a JSONDecodeError."""
    try:
        if strict and loader is json.loads:
            value = json.loads(data, parse_constant=_constant, parse_float=_float, parse_int=_int)
        else:
            value = loader(data)
    except RecursionError:
        raise TooDeep(limit) from None
    return check_depth(value, limit)
