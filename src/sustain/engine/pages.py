"""One page of a search, cut by count and by answer size (docs/security.md, "Limits").

The stores read rows in id order and stop after ``limit + 1`` rows, or after the first row
whose running size passes ``max_size``; ``fit`` cuts that the same way, so the page ends
before the row that does not fit and answers a cursor.  A page is never empty while a row
remains: a first row larger than the budget is answered alone (with a cursor), so a client
paging through always progresses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def fit(
    found: list[T], limit: int, max_size: int | None, size: Callable[[T], int]
) -> tuple[list[T], bool]:
    """The page out of ``found`` and whether a cursor follows it."""
    if max_size is None:
        return found[:limit], len(found) > limit
    total = 0
    for i, item in enumerate(found):
        if i == limit:
            return found[:i], True
        total += size(item)
        if total > max_size:
            return (found[:i], True) if i else (found[:1], True)
    return found, False
