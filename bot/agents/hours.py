"""Service hours: when a human can answer, and when the next shift starts.

Outside these hours the bot still opens the ticket but tells the customer when a person will
reply (service rule 6: outside service hours, take a message and say when).
"""

from __future__ import annotations

import datetime as dt

from bot.config import ServiceHoursConfig

_WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_WEEKDAY_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ServiceHours:
    def __init__(self, config: ServiceHoursConfig) -> None:
        schedule = config.schedule()  # ConfigError naming the key (rules: bot.config)
        self.zone = schedule.zone
        self.always = not config.weekly
        self.spans: dict[int, tuple[dt.time, dt.time]] = schedule.spans
        self.holidays: set[dt.date] = set(schedule.holidays)

    def _local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, self.zone)

    def is_open(self, now: float) -> bool:
        if self.always:
            return True
        local = self._local(now)
        if local.date() in self.holidays:
            return False
        span = self.spans.get(local.weekday())
        return span is not None and span[0] <= local.time() < span[1]

    def shift_started(self, now: float) -> float:
        """When the current shift began (0 when always staffed): waiting time for the SLA counts
        from here, so messages left overnight are not all "late" at 09:00:01."""
        if self.always or not self.is_open(now):
            return 0.0
        local = self._local(now)
        start = self.spans[local.weekday()][0]
        return dt.datetime.combine(local.date(), start, self.zone).timestamp()

    def next_open(self, now: float) -> dt.datetime | None:
        """Local start of the next shift (``now`` itself if open), or None if never staffed."""
        if self.is_open(now):
            return self._local(now)
        local = self._local(now)
        for offset in range(0, 400):
            day = local.date() + dt.timedelta(days=offset)
            span = self.spans.get(day.weekday())
            if span is None or day in self.holidays:
                continue
            start = dt.datetime.combine(day, span[0], self.zone)
            if start > local:
                return start
        return None

    def describe_next_open(self, now: float, language: str) -> str:
        """"明天（周二）09:00" / "Tue 24 Nov, 09:00" — what the customer is told."""
        when = self.next_open(now)
        if when is None:
            return "尽快" if language == "zh" else "the earliest opportunity"
        today = self._local(now).date()
        days = (when.date() - today).days
        clock = when.strftime("%H:%M")
        if language == "zh":
            day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{when.month}月{when.day}日")
            return f"{day}（{_WEEKDAY_ZH[when.weekday()]}）{clock}"
        day = {0: "today", 1: "tomorrow"}.get(days, f"{_WEEKDAY_EN[when.weekday()]} {when.day} {when:%b}")
        return f"{clock} {day}" if days <= 1 else f"{day}, {clock}"
