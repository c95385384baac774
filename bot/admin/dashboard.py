"""The numbers behind the dashboard, per day over a selectable period.

Bot-side counters come from :class:`bot.admin.recorder.TurnRecorder`'s daily hashes; wait and
handling times and CSAT come from the human desk's own records (ratings stream and the
tickets it names), so the dashboard never keeps a second copy of the desk's truth.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import BadRequest
from bot.storage.desk import DeskRecords
from bot.storage.records import AdminRecords, day_of
from bot.storage.tickets import TicketStore

PERIODS = {"7d": 7, "30d": 30, "90d": 90}


class Dashboard:
    def __init__(self, records: AdminRecords, desk: DeskRecords, tickets: TicketStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.records = records
        self.desk = desk  # the ratings stream
        self.tickets = tickets
        self.clock = clock

    def days(self, period: str) -> list[str]:
        """The days of ``period`` (``7d``, ``30d``, ``90d`` or a number of days, 1-366); anything
        else is a 400 naming the choices, never a header or key built from it."""
        if period in PERIODS:
            count = PERIODS[period]
        elif period.isascii() and period.isdigit() and 1 <= int(period) <= 366:
            count = int(period)
        else:
            raise BadRequest("'period' must be 7d, 30d, 90d or a number of days from 1 to 366")
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        return [(today - timedelta(days=i)).isoformat() for i in range(count - 1, -1, -1)]

    async def report(self, period: str = "7d") -> dict[str, Any]:
        days = self.days(period)
        raw = await self.records.daily_counters(days)
        daily = []
        totals: Counter[str] = Counter()
        for day, counters in zip(days, raw, strict=True):
            counts = Counter(counters)
            totals.update(counts)
            daily.append({"day": day, "conversations": counts["conversations"], "turns": counts["turns"],
                          "answered": counts["action:answer"], "handoffs": counts["handoffs"],
                          "unanswered": counts["unanswered"]})
        conversations = totals["conversations"]
        handoff_reasons = {k.split(":", 1)[1]: v for k, v in totals.items() if k.startswith("handoff:")}
        top_entries = sorted(((k.split(":", 1)[1], v) for k, v in totals.items() if k.startswith("entry:")),
                             key=lambda kv: -kv[1])[:10]
        desk = await self._desk(days[0])
        return {
            "period": period, "days": days, "daily": daily,
            "totals": {
                "conversations": conversations, "turns": totals["turns"], "answered": totals["action:answer"],
                "handoffs": totals["handoffs"], "unanswered": totals["unanswered"],
                "automatic_resolution_rate": round(1 - totals["handoffs"] / conversations, 4)
                if conversations else None,
                "handoff_rate": round(totals["handoffs"] / conversations, 4) if conversations else None,
                **desk,
            },
            "handoff_reasons": handoff_reasons,
            "top_entries": [{"entry_id": k, "count": v} for k, v in top_entries],
        }

    async def _desk(self, first_day: str) -> dict[str, Any]:
        """Average wait (queued → claimed), handling (claimed → closed) and CSAT since ``first_day``."""
        since_ms = int(datetime.fromisoformat(first_day).replace(tzinfo=UTC).timestamp() * 1000)
        rows = await self.desk.ratings_since(since_ms)
        ratings = [int(f["rating"]) for _, f in rows if str(f.get("rating", "")).isdigit()]
        tickets = [f.get("ticket", "") for _, f in rows if f.get("ticket")]
        waits: list[float] = []
        handles: list[float] = []
        for ticket_id in dict.fromkeys(tickets):
            ticket = await self.tickets.get(ticket_id)
            created, claimed, closed = ((ticket.created_at, ticket.claimed_at, ticket.closed_at)
                                        if ticket is not None else (0.0, 0.0, 0.0))
            if created and claimed:
                waits.append(claimed - created)
            if claimed and closed:
                handles.append(closed - claimed)
        return {
            "csat": round(sum(ratings) / len(ratings), 2) if ratings else None, "ratings": len(ratings),
            "average_wait_seconds": round(sum(waits) / len(waits), 1) if waits else None,
            "average_handling_seconds": round(sum(handles) / len(handles), 1) if handles else None,
        }


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "conversations", "turns", "answered", "handoffs", "unanswered"])
    for row in report["daily"]:
        writer.writerow([row["day"], row["conversations"], row["turns"], row["answered"], row["handoffs"],
                         row["unanswered"]])
    writer.writerow([])
    writer.writerow(["metric", "value"])
    for name, value in report["totals"].items():
        writer.writerow([name, "" if value is None else value])
    for reason, count in report["handoff_reasons"].items():
        writer.writerow([f"handoff:{reason}", count])
    for item in report["top_entries"]:
        writer.writerow([f"entry:{item['entry_id']}", item["count"]])
    return out.getvalue()


__all__ = ["PERIODS", "Dashboard", "day_of", "to_csv"]
