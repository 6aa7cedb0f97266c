"""JSON from outside, with a depth limit: a document that nests lists and objects deeper than anything the project
reads (a catalog, a dataset line, a test set, a result document) is refused by name, before the standard parser's
RecursionError or a recursive walk further on can turn it into a server error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# A catalog record sits 3 levels deep ({"key": [{...}]}), its nested fields 2 or 3 more; chat messages as deep.
MAX_DEPTH = 64


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


def loads(data: str | bytes, limit: int = MAX_DEPTH, loader: Callable[[Any], Any] = json.loads) -> Any:
    """`loader(data)` (json.loads by default) with the depth limit: TooDeep, a ValueError, however deep the nesting
    (the standard parser's RecursionError past about 1,000 levels included); JSONDecodeError as before."""
    try:
        value = loader(data)
    except RecursionError:
        raise TooDeep(limit) from None
    return check_depth(value, limit)
