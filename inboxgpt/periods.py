"""Days and months in the owner's time zone (TIMEZONE): when money caps and usage totals turn over."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

DAY = 24 * 3600


class Periods:
    """Names of the day and month a Unix time falls in, in one time zone."""

    def __init__(self, zone: str = "UTC"):
        self._zone = ZoneInfo(zone)

    def day(self, now: float) -> str:
        """YYYY-MM-DD."""
        return datetime.fromtimestamp(now, self._zone).strftime("%Y-%m-%d")

    def days_back(self, now: float, count: int) -> list[str]:
        """The `count` days up to the one `now` falls in, that one first (YYYY-MM-DD): counted by the calendar, since
        a day where the clocks change is not 24 hours long."""
        today = datetime.fromtimestamp(now, self._zone).date()
        return [(today - timedelta(days=back)).isoformat() for back in range(count)]

    def month(self, now: float) -> str:
        """YYYY-MM."""
        return datetime.fromtimestamp(now, self._zone).strftime("%Y-%m")
