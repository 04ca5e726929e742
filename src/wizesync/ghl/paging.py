"""Walk any GHL limit/offset list to its end, whatever keys the endpoint answers with.

Each list endpoint names its parts differently (`{data, totalCount}`, `{invoices, total}`,
`{prices, total}`, `{providers}` with no total), so the client turns each answer into a `Page`
and this module only knows `items` and `total`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from wizesync.ghl.errors import GhlError
from wizesync.ghl.models.base import Page

T = TypeVar("T")

# GHL documents no maximum page size for most lists; 100 is what its own UI asks for.
DEFAULT_PAGE_SIZE = 100

FetchPage = Callable[[int, int], Awaitable[Page[T]]]  # (limit, offset) -> page


async def paginate(
    fetch: FetchPage[T], *, page_size: int = DEFAULT_PAGE_SIZE, max_items: int | None = None
) -> AsyncIterator[T]:
    """Yield every item, one page at a time. Stops at the total, at a short or empty page, or at
    `max_items`; a server that ignores `offset` (the same page twice) raises instead of looping."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    offset = 0
    previous: list[T] | None = None
    while True:
        page = await fetch(page_size, offset)
        if not page.items:
            return
        if previous is not None and page.items == previous:
            raise GhlError(f"paging did not advance at offset {offset}: the same page came back")
        for item in page.items:
            yield item
            offset += 1
            if max_items is not None and offset >= max_items:
                return
        if len(page.items) < page_size or (page.total is not None and offset >= page.total):
            return
        previous = page.items
