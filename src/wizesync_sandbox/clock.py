"""The sandbox's clock: real time plus an offset the control plane can move, or frozen.

Tests expire tokens and empty rate-limit windows by moving this clock instead of sleeping.
Webhook delivery timestamps use real time (the service checks them against its own clock).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._frozen_at: float | None = None  # epoch seconds

    def time(self) -> float:
        """Epoch seconds as the sandbox sees them."""
        return self._frozen_at if self._frozen_at is not None else time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def freeze(self) -> None:
        self._frozen_at = self.time()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            self._offset = self._frozen_at - time.time()
            self._frozen_at = None

    def advance(self, seconds: float) -> None:
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset += seconds

    def reset(self) -> None:
        self._offset, self._frozen_at = 0.0, None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def describe(self) -> dict[str, object]:
        return {
            "now": iso(self.now()),
            "frozen": self.frozen,
            "offset_seconds": round(self.time() - time.time(), 3),
        }


def iso(moment: datetime) -> str:
    """GHL's timestamp format: `2023-11-20T10:23:36.515Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_moment(value: str, *, end_of_day: bool = False) -> datetime | None:
    """Parse GHL's `startAt`/`endAt` filters: a date (`2024-02-13`) or an ISO timestamp.
    A bare date as an upper bound covers that whole day."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
