"""The console's reports: the leads the assistant took down (a table a page at a time, and the CSV `flask leads --csv`
writes), and the model's usage over the last 30 days (replies and dollars per day by channel as plots drawn on the
server in SVG, the top spenders, who a cap stopped), read from the store as `flask usage` reads it, with the
conversations' outcomes of the same days as `flask report` computes them (docs/outcomes.md).

The plots need no script and no plotting library: each is an <svg> with its axes, labels, legend and a <title> on
the plot and on every bar, with the figures also in a table beneath.
"""

from __future__ import annotations

import io
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request

from inboxgpt.channels import NAMES
from inboxgpt.console.views import CHANNEL_NAMES, blueprint, console, short_key, staff_name
from inboxgpt.conversation.outcomes import ByDay, Outcomes, OutcomeSettings, outcomes_by_day
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.metrics import OUTCOME_EVERY, Every
from inboxgpt.periods import Periods
from inboxgpt.tools.leads import Lead, kept_leads, write_csv
from inboxgpt.usage import Totals, Usage

# Leads a page of the table shows, newest first.
LEADS_PER_PAGE = 50
# Days the usage page plots, today last (the store keeps usage.DAYS_KEPT).
DAYS = 30

# The legend of the plots by channel.
_CHANNELS = tuple(CHANNEL_NAMES.get(name, name) for name in NAMES)
# The outcomes plotted, stacked: the rest of a day's conversations are open, unanswered or greetings only.
OUTCOME_LEGEND = ("Resolved", "Handed over", "Other")

# A plot's size in SVG units (it scales to the page's width), and the room its axes' labels take.
WIDTH, HEIGHT = 400, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 26, 30, 34
# An x-axis label every this many days (from the last), so that labels never overlap, even on a phone.
LABEL_EVERY = 7


@dataclass(frozen=True)
class Bar:
    """One channel's part of one day's bar."""

    x: float
    y: float
    width: float
    height: float
    day: int  # the day's place on the x axis
    series: int  # the channel's place in the legend (its colour)
    title: str


@dataclass(frozen=True)
class Tick:
    """A label on an axis, at `at` along it."""

    at: float
    label: str


@dataclass(frozen=True)
class Mark:
    """A note above a day's bar: part of its figure is estimated."""

    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Plot:
    """A stacked bar plot of one figure per day and channel, laid out for the template."""

    id: str
    title: str
    description: str
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    legend: tuple[str, ...]
    marks: tuple[Mark, ...] = ()
    legend_step: int = 95  # from one legend entry to the next, room for the longest name


# --- leads ---


@blueprint.route("/leads")
def leads() -> str:
    since, since_text = _since()
    found = kept_leads(console().store, since)
    pages = max(1, math.ceil(len(found) / LEADS_PER_PAGE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    newest_first = found[::-1][(page - 1) * LEADS_PER_PAGE : page * LEADS_PER_PAGE]
    return render_template(
        "console/leads.html",
        leads=newest_first,
        total=len(found),
        page=page,
        pages=pages,
        since=since_text,
        when=_lead_time,
        channel_name=lambda name: CHANNEL_NAMES.get(name, name),
        short_key=short_key,
        me=staff_name(),
    )


@blueprint.route("/leads.csv")
def leads_csv() -> Response:
    """Every lead kept (from `since`), oldest first, as `flask leads --csv` writes them: formula-safe cells."""
    since, since_text = _since()
    out = io.StringIO()
    write_csv(kept_leads(console().store, since), out)
    name = f"leads-since-{since_text}.csv" if since_text else "leads.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _since() -> tuple[float, str]:
    """The `since` day asked for (YYYY-MM-DD, UTC as in `flask leads`): its start, and the day; 400 if malformed."""
    text = request.args.get("since", "").strip()
    if not text:
        return 0.0, ""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        abort(HTTPStatus.BAD_REQUEST, "A day as YYYY-MM-DD.")
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp(), day.isoformat()


def _lead_time(lead: Lead) -> str:
    return lead.cells()[0]


# --- usage ---


@blueprint.route("/usage")
def usage() -> str:
    found = console()
    now = time.time()
    counted = Usage(found.store, Periods(found.timezone))
    days = counted.recent(now, DAYS)[::-1]  # oldest first, as the plots read left to right
    today = days[-1]
    dates = [day.date for day in days]
    figures, daily = found.usage_outcomes() or (Outcomes(DAYS), {})
    return render_template(
        "console/usage.html",
        days=days,
        shown=[day for day in days[::-1] if day.replies or day.dollars or day.stopped],
        plots=(replies_plot(days), dollars_plot(days)),
        outcome_plots=(conversations_plot(dates, daily), reopened_plot(dates, daily)),
        outcomes=figures,
        today=today,
        month_replies=sum(day.replies for day in days),
        month_dollars=sum(day.dollars for day in days),
        month_estimated=sum(day.estimated_dollars for day in days),
        spenders=counted.top_spenders(now, DAYS),
        stops=[(day.date, stop) for day in days[::-1] for stop in day.stopped],
        channels=[CHANNEL_NAMES.get(name, name) for name in NAMES],
        timezone=found.timezone,
        dollars=_dollars,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        me=staff_name(),
    )


def usage_outcomes(transcripts: Transcripts, timezone: str, settings: OutcomeSettings, people_cap: int) -> Every[ByDay]:
    """The outcomes of the conversations started in the Usage page's DAYS, by the day they started: one read of the
    transcripts of the people active since (at most MAX_CONVERSATIONS of them), which takes seconds on Redis at the
    store's bounds, so made again at most every OUTCOME_EVERY seconds, as /metrics does."""
    zone = ZoneInfo(timezone)

    def read() -> ByDay:
        now = time.time()
        first_day = datetime.fromtimestamp(now, zone).date() - timedelta(days=DAYS - 1)
        since = datetime.combine(first_day, datetime.min.time(), zone).timestamp()
        return outcomes_by_day(
            transcripts.active_since(since, people_cap),
            now,
            (now - since) / 86400,
            settings,
            lambda at: datetime.fromtimestamp(at, zone).date().isoformat(),
        )

    return Every(read, OUTCOME_EVERY)


def conversations_plot(dates: Sequence[str], daily: dict[str, Counter[str]]) -> Plot:
    """Conversations per day by how they ended: resolved by the assistant, handed over, or neither yet."""
    counts = [daily.get(day, Counter()) for day in dates]
    return _plot(
        "conversations",
        f"Conversations per day by outcome, the last {len(dates)} days",
        [
            [day["resolved"], day["handed_over"], day["conversation"] - day["resolved"] - day["handed_over"]]
            for day in counts
        ],
        dates,
        OUTCOME_LEGEND,
        lambda value, step=0: f"{value:,.0f}",
        "conversations",
        least_step=1,
        legend_step=115,
    )


def reopened_plot(dates: Sequence[str], daily: dict[str, Counter[str]]) -> Plot:
    """Conversations per day that the person reopened after a resolution."""
    return _plot(
        "reopened",
        f"Reopened conversations per day, the last {len(dates)} days",
        [[daily.get(day, Counter())["reopened"]] for day in dates],
        dates,
        ("Reopened",),
        lambda value, step=0: f"{value:,.0f}",
        "reopened",
        least_step=1,
    )


def replies_plot(days: Sequence[Totals]) -> Plot:
    """Replies per day by channel."""
    return _plot(
        "replies",
        f"Replies per day by channel, the last {len(days)} days",
        [[day.replies_by_channel.get(name, 0) for name in NAMES] for day in days],
        [day.date for day in days],
        _CHANNELS,
        lambda value, step=0: f"{value:,.0f}",
        "replies",
        least_step=1,
    )


def dollars_plot(days: Sequence[Totals]) -> Plot:
    """Dollars per day by channel; a day whose figure is partly estimated (usage the server did not report) marked."""
    plot = _plot(
        "dollars",
        f"Dollars per day by channel, the last {len(days)} days",
        [[(day.dollars_by_channel or {}).get(name, 0.0) for name in NAMES] for day in days],
        [day.date for day in days],
        _CHANNELS,
        _dollars,
        "",
        least_step=0.005,
    )
    slot = _slot(len(days))
    marks = tuple(
        Mark(
            x=LEFT + slot * (index + 0.5),
            y=min((bar.y for bar in plot.bars if bar.day == index), default=HEIGHT - BOTTOM) - 4,
            title=f"{_day_label(day.date)}: {_dollars(day.estimated_dollars)} of {_dollars(day.dollars)} estimated "
            f"({day.estimated_calls:,} model calls whose usage the server did not report)",
        )
        for index, day in enumerate(days)
        if day.estimated_calls
    )
    return Plot(
        plot.id,
        plot.title,
        plot.description + (" Days marked * are partly estimated." if marks else ""),
        plot.bars,
        plot.y_ticks,
        plot.x_ticks,
        plot.legend,
        marks,
    )


def _plot(
    plot_id: str,
    title: str,
    values: Sequence[Sequence[float]],
    days: Sequence[str],
    legend: tuple[str, ...],
    show: Callable[..., str],
    unit: str,
    least_step: float,
    legend_step: int = 95,
) -> Plot:
    """Stacked bars, one a day (YYYY-MM-DD), one part a series of the legend, on an axis from 0 to four round steps,
    the highest day within."""
    unit = " " + unit if unit else ""
    step = _step(max((sum(day) for day in values), default=0.0) / 4, least_step)
    top = 4 * step
    scale = (HEIGHT - TOP - BOTTOM) / top
    slot = _slot(len(days))
    bars = []
    for index, (day, parts) in enumerate(zip(days, values, strict=True)):
        base = float(HEIGHT - BOTTOM)
        for series, value in enumerate(parts):
            if value <= 0:
                continue
            height = value * scale
            base -= height
            label = f"{_day_label(day)}: {legend[series]} {show(value)}{unit}"
            bars.append(Bar(LEFT + slot * (index + 0.15), base, slot * 0.7, height, index, series, label))
    y_ticks = tuple(Tick(HEIGHT - BOTTOM - count * step * scale, show(count * step, step)) for count in range(5))
    x_ticks = tuple(
        Tick(LEFT + slot * (index + 0.5), _day_label(day))
        for index, day in enumerate(days)
        if (len(days) - 1 - index) % LABEL_EVERY == 0
    )
    total, most = sum(sum(day) for day in values), max((sum(day) for day in values), default=0.0)
    description = f"{show(total)}{unit} in all, at most {show(most)}{unit} a day."
    return Plot(plot_id, title, description, tuple(bars), y_ticks, x_ticks, legend, legend_step=legend_step)


def _slot(count: int) -> float:
    return (WIDTH - LEFT - RIGHT) / max(1, count)


def _step(value: float, least: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above `value` and `least`: an axis's round step."""
    value = max(value, least)
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9))


def _dollars(value: float, step: float = 0.0) -> str:
    """Dollars to the cent, or to the hundredth of a cent below a dollar; on an axis, as precise as its `step`."""
    if step:
        return f"${value:,.{max(2, -math.floor(math.log10(step)))}f}"
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def _day_label(day: str) -> str:
    return date.fromisoformat(day).strftime("%d %b")
