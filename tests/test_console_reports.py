"""The console's Leads and Usage pages through Flask's test client: the leads a page at a time and as the CSV `flask
leads --csv` writes, the usage of the last 30 days as SVG plots with their figures, top spenders and who a cap
stopped. (tests/test_console_browser.py opens the same pages in a real browser.)"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import asdict
from datetime import datetime
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient

from inboxgpt.console.staff import Staff
from inboxgpt.limits import Limits, LimitSettings
from inboxgpt.model.completion import Completion
from inboxgpt.periods import Periods
from inboxgpt.tools.leads import KIND, Lead
from inboxgpt.usage import Usage
from inboxgpt.web.app import EXTENSION
from tests.fakes import completion, streamed
from tests.helpers import PSID, page_body, poster, text_event
from tests.test_console import PASSWORD, SECRET_KEY, sign_in
from tests.test_costs import PRICES
from tests.test_store import backend  # noqa: F401 (a fixture: every store)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def console(make_app, config, tmp_path):
    """Makes an app with the console on (its replies priced, with `settings`) and a client signed in as maria."""

    def make(**settings: str) -> tuple[Flask, FlaskClient]:
        config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", SECRET_KEY=SECRET_KEY, CONSOLE_INSECURE_COOKIES="on")
        made = make_app({**config, "MODEL_PRICES": PRICES, **settings})
        Staff(made.extensions[EXTENSION].store).add("maria", PASSWORD)
        client = made.test_client()
        sign_in(client)
        return made, client

    return make


def keep_lead(app, number: int, **details: str) -> Lead:
    lead = Lead(f"lead{number:04d}", time.time() - 3600 + number, "messenger", f"7000{number:012d}", **details)
    app.extensions[EXTENSION].store.keep_record(KIND, lead.id, json.dumps(asdict(lead)), lead.time)
    return lead


def plots(page: str) -> dict[str, ElementTree.Element]:
    """The page's SVG plots, parsed as XML, by their id."""
    found = re.findall(r"<svg id=\"plot-.*?</svg>", page, re.DOTALL)
    parsed = [ElementTree.fromstring(svg) for svg in found]
    return {svg.attrib["id"]: svg for svg in parsed}


def bar_titles(svg: ElementTree.Element) -> list[str]:
    return [title.text or "" for rect in svg.iter(f"{SVG}rect") if (title := rect.find(f"{SVG}title")) is not None]


def today_label() -> str:
    return datetime.now().strftime("%d %b")  # the test settings' TIMEZONE is the machine's UTC


# --- leads ---


def test_the_leads_page_shows_the_newest_first_a_page_at_a_time(console):
    app, browser = console()
    for number in range(51):
        keep_lead(app, number, name=f"Person {number}", note="<b>call</b> me")
    first = browser.get("/console/leads").get_data(as_text=True)
    assert first.index("Person 50") < first.index("Person 49")
    assert "Person 0<" not in first  # on the second page
    assert "&lt;b&gt;call&lt;/b&gt; me" in first  # what a person wrote is text
    assert "Page 1 of 2" in first
    second = browser.get("/console/leads?page=2").get_data(as_text=True)
    assert "Person 0<" in second
    assert "Person 1<" not in second


def test_the_leads_csv_is_what_flask_leads_writes_with_formulas_escaped(console):
    app, browser = console()
    keep_lead(app, 1, name='=HYPERLINK("http://evil.example","click")', phone="+44 7700 900123", note="a cake")
    keep_lead(app, 2, name="Ada", email="@ada.example", note="-1 flour")
    download = browser.get("/console/leads.csv")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="leads.csv"'
    written = app.test_cli_runner().invoke(args=["leads", "--csv"]).output
    assert download.get_data(as_text=True) == written
    header, first, second = csv.reader(io.StringIO(written))
    assert header == ["time", "channel", "person", "name", "phone", "email", "note"]
    assert first[3:] == ['\'=HYPERLINK("http://evil.example","click")', "'+44 7700 900123", "", "a cake"]
    assert second[3:] == ["Ada", "", "'@ada.example", "'-1 flour"]


def test_leads_since_a_day_and_a_malformed_day(console):
    app, browser = console()
    keep_lead(app, 1, name="Ada", note="x")
    assert "No leads since 2999-01-01" in browser.get("/console/leads?since=2999-01-01").get_data(as_text=True)
    assert browser.get("/console/leads.csv?since=2999-01-01").get_data(as_text=True).count("\n") == 1  # the header
    assert browser.get("/console/leads?since=yesterday").status_code == 400
    assert browser.get("/console/leads.csv?since=2024-13-01").status_code == 400


def test_the_reports_need_a_signed_in_staff_member(console):
    app, _ = console()
    client = app.test_client()
    for path in ("/console/leads", "/console/leads.csv", "/console/usage"):
        assert client.get(path).status_code == 302


def test_the_navigation_bar_has_leads_and_usage(console):
    _, browser = console()
    for path in ("/console/", "/console/leads", "/console/usage"):
        page = browser.get(path).get_data(as_text=True)
        assert 'href="/console/leads"' in page
        assert 'href="/console/usage"' in page
    usage = browser.get("/console/usage").get_data(as_text=True)
    assert re.search(r'href="/console/usage" aria-current="page">Usage<', usage)


# --- usage ---


def test_the_usage_page_plots_replies_and_dollars_per_day_by_channel(console, openai_server):
    app, client = console()
    openai_server.default = lambda request: completion("An answer.", prompt_tokens=125_000, completion_tokens=0)
    for n in range(3):
        poster(app)(page_body(text_event(f"question {n}", mid=f"m_{n}")))
    page = client.get("/console/usage").get_data(as_text=True)
    found = plots(page)
    replies, dollars = found["plot-replies"], found["plot-dollars"]
    assert replies.findtext(f"{SVG}title") == "Replies per day by channel, the last 30 days"
    assert bar_titles(replies) == [f"{today_label()}: Messenger 3 replies"]
    assert bar_titles(dollars) == [f"{today_label()}: Messenger $0.1500"]
    legend = [text.text for text in replies.iter(f"{SVG}text") if text.text in ("Messenger", "Instagram", "WhatsApp")]
    assert legend == ["Messenger", "Instagram", "WhatsApp"]
    y_labels = [text.text for text in replies.iter(f"{SVG}text") if "y-label" in text.attrib.get("class", "")]
    assert y_labels == ["0", "1", "2", "3", "4"]
    x_labels = [text.text for text in replies.iter(f"{SVG}text") if "x-label" in text.attrib.get("class", "")]
    assert x_labels[-1] == today_label()
    assert len(x_labels) == 5  # every seventh day of the 30, back from today
    assert "3 replies, $0.1500" in page
    assert "6543…4321" in page  # the top spender, shortened
    assert PSID not in page


def test_estimated_usage_is_marked_as_such(console, openai_server):
    app, client = console(STREAM="on")
    openai_server.default = lambda request: streamed(completion("Opening hours are 9 to 5."), include_usage=False)
    poster(app)(page_body(text_event("When do you open?")))
    page = client.get("/console/usage").get_data(as_text=True)
    dollars = plots(page)["plot-dollars"]
    (mark,) = [text for text in dollars.iter(f"{SVG}text") if text.attrib.get("class") == "estimated-mark"]
    assert "estimated (1 model calls whose usage the server did not report)" in (mark.findtext(f"{SVG}title") or "")
    assert "partly estimated" in ElementTree.tostring(dollars, encoding="unicode")
    assert "estimated: usage the server did not report" in page


def test_who_was_stopped_by_which_cap_is_shown(console, openai_server):
    app, client = console(LIMIT_PER_MINUTE="1", SPEND_PER_PERSON_PER_DAY="0.05")
    openai_server.default = lambda request: completion("An answer.", prompt_tokens=125_000, completion_tokens=0)
    post = poster(app)
    post(page_body(text_event("first", mid="m_1")))
    post(page_body(text_event("second, too fast", mid="m_2")))  # within the minute: LIMIT_PER_MINUTE
    post(page_body(text_event("third", psid="7000000000000001", mid="m_3")))
    later = text_event("fourth", psid="7000000000000001", mid="m_4")
    later["timestamp"] += 61_000  # the next minute: the money cap refuses it, not LIMIT_PER_MINUTE
    post(page_body(later))
    page = client.get("/console/usage").get_data(as_text=True)
    stopped = page[page.index("Stopped by a cap") :]
    assert re.search(r"6543…4321</code></td><td><code>LIMIT_PER_MINUTE<", stopped)
    assert re.search(r"7000…0001</code></td><td><code>SPEND_PER_PERSON_PER_DAY<", stopped)
    output = app.test_cli_runner().invoke(args=["usage"]).output
    assert "6543…4321 (LIMIT_PER_MINUTE)" in output


def test_a_days_usage_is_kept_for_the_30_days_plotted_with_money_caps_on(backend):  # noqa: F811 (the fixture)
    store = backend()
    settings = LimitSettings(0, 0, 0, spend_per_person_per_day=1.0, spend_per_day=5.0, timezone="UTC")
    limits = Limits(settings, store, clock=lambda: backend.clock.now)
    usage = Usage(store, Periods("UTC"))
    decision, held = limits.hold(PSID, 0.02, backend.clock.now)  # the caps' hold makes the day's counters first
    assert decision.allowed
    usage.record(Completion("a", "stop", 1000, 100, cost=0.01), backend.clock.now, psid=PSID, held=held)
    spent_on = usage.totals(backend.clock.now).date
    if backend.kind == "redis":  # Redis expires keys on its own clock: their lifetimes are what can be checked
        keys = store._redis.keys("mgpt:*usage*")
        assert keys
        assert all(store._redis.pttl(key) > 30 * 86_400_000 for key in keys)
        return
    backend.clock.now += 29 * 86_400
    store.expire()
    (day,) = [totals for totals in usage.recent(backend.clock.now, 30) if totals.date == spent_on]
    assert day.replies == 1
    assert day.dollars == pytest.approx(0.01)
    assert usage.top_spenders(backend.clock.now, 30)[0].dollars == pytest.approx(0.01)
