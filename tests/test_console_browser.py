"""The console in a real browser: Debian's chromium driven by Playwright, against the real app served on 127.0.0.1 and
wired to the fake OpenAI and Graph APIs. Skipped where chromium is missing, except in CI (CI=true), where .ci/run
installs it and its absence fails.

With CONSOLE_SCREENSHOTS=<folder>, the flows save the screenshots docs/console.md shows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from werkzeug.serving import make_server

from inboxgpt.console.staff import Staff
from inboxgpt.console.testsets import TESTING
from inboxgpt.conversation.transcript import Transcripts
from inboxgpt.tools.leads import KIND, Lead
from inboxgpt.web.app import EXTENSION
from tests.fakes import completion
from tests.helpers import DATA, PSID, load, meta_json, page_body, recent, signed_headers, text_event
from tests.test_console import PASSWORD, SECRET_KEY, WA_KEY, WABA_ID
from tests.test_console_outcomes import Clock, talk

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's waits: long enough for a loaded CI machine; each passes as soon as the page shows what is awaited.
WAIT_MS = 15_000
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Live:
    """The app served over HTTP, as a browser reaches it."""

    url: str
    app: Flask

    def post(self, text: str, days_ago: float = 0.0, psid: str = PSID) -> None:
        """A person's message, signed as Meta sends it; returns once it is answered (or left to the staff)."""
        event = text_event(text, psid=psid)
        event["timestamp"] = int((time.time() - days_ago * 86400) * 1000)
        self.post_body(page_body(event))

    def post_body(self, body: dict) -> None:
        """A webhook body, signed as Meta sends it; returns once it is answered (or left to the staff)."""
        raw = meta_json(body)
        assert requests.post(self.url + "/", data=raw, headers=signed_headers(raw), timeout=10).status_code == 200
        assert self.app.extensions[EXTENSION].dispatcher.wait_idle(timeout=30)


@pytest.fixture
def live(make_app, config, tmp_path) -> Iterator[Live]:
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", SECRET_KEY=SECRET_KEY, CONSOLE_INSECURE_COOKIES="on")
    config.update(WHATSAPP_BUSINESS_ACCOUNT_ID=WABA_ID)
    config.update(MODEL_PRICES="gpt-4.1-mini=0.40/0.10/1.60")  # replies cost money, for the Usage page
    app = make_app(config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", app)
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(chromium, live):
    context = chromium.new_context(base_url=live.url)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


@pytest.fixture
def phone_page(chromium, live):
    """A page as a phone shows it, signed in."""
    context = chromium.new_context(base_url=live.url, viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    sign_in(page)
    yield page
    context.close()


def fits_the_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def sign_in(page, password: str = PASSWORD) -> None:
    page.goto("/console/login")
    page.get_by_label("Name").fill("maria")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_a_conversation_arrives_is_taken_over_answered_noted_handed_back_and_resolved(page, live, graph, openai_server):
    graph.profiles[PSID] = {"first_name": "Ada", "last_name": "Lovelace"}
    sign_in(page)
    expect(page.get_by_role("link", name="Conversations")).to_be_visible()
    page.get_by_role("link", name="Everyone").click()
    live.post("Hi! Do you deliver on Sundays?")
    # It appears without reloading the page.
    rows = page.locator(".rows")
    expect(rows).to_contain_text("You said: Hi! Do you deliver on Sundays?")
    expect(page.locator(".row", has_text="Sundays")).to_contain_text("Ada Lovelace")  # the name Meta gave
    live.post_body(load("whatsapp/text.json"))  # WhatsApp's own name: "Ada" (another Ada)
    live.post("/human", psid="7000000000000001")
    page.get_by_role("link", name="Needs a person").click()
    expect(rows).to_contain_text("Needs a person")
    shot(page, "conversations")
    page.get_by_role("link", name="Everyone").click()
    expect(rows).to_contain_text("Ada Lovelace")
    shot(page, "conversations-names")
    page.locator(".row", has_text="Ada Lovelace").click()

    entries = page.locator(".entries")
    expect(entries).to_contain_text("Hi! Do you deliver on Sundays?")
    page.get_by_role("button", name="Take over").click()
    expect(page.locator(".head .state")).to_have_text("Taken over by maria")
    asked = len(openai_server.requests)
    live.post("Hello? Anyone there?")
    expect(entries).to_contain_text("Hello? Anyone there?")
    assert len(openai_server.requests) == asked  # the assistant stayed silent
    assert graph.texts(PSID) == ["You said: Hi! Do you deliver on Sundays?"]

    page.get_by_label("Message to").fill("Hi, Maria here: yes, we deliver on Sundays until 2 pm.")
    page.get_by_role("button", name="Send").click()
    expect(entries).to_contain_text("Hi, Maria here")
    assert graph.texts(PSID)[-1] == "Hi, Maria here: yes, we deliver on Sundays until 2 pm."
    assert graph.calls[-1]["messaging_type"] == "RESPONSE"

    sent = len(graph.calls)
    page.get_by_label("Private note (never sent)").fill("Asked about Sunday delivery twice: add it to the FAQ.")
    page.get_by_role("button", name="Note").click()
    expect(entries).to_contain_text("Note by maria")
    assert len(graph.calls) == sent  # a note is never sent
    shot(page, "conversation")

    page.get_by_role("button", name="Hand back").click()
    expect(page.locator(".head .state")).to_have_text("Assistant")
    live.post("Great, thanks!")
    assert graph.texts(PSID)[-1].endswith("Great, thanks!")  # the assistant answers again
    expect(entries).to_contain_text("Great, thanks!")

    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".head .state")).to_have_text("Resolved")


def test_a_staff_message_two_days_later_carries_the_human_agent_tag(page, live, graph):
    live.post("Is my order ready?", days_ago=2)
    sign_in(page)
    page.goto(f"/console/c/{PSID}")
    expect(page.locator(".hint")).to_contain_text("HUMAN_AGENT")
    page.get_by_label("Message to").fill("Sorry for the wait: it is ready.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".entries")).to_contain_text("Sorry for the wait")
    call = graph.calls[-1]
    assert call["message"]["text"] == "Sorry for the wait: it is ready."
    assert (call["messaging_type"], call["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_past_24_hours_on_whatsapp_an_approved_template_is_filled_in_and_sent(page, live, graph):
    graph.templates = json.loads((DATA / "whatsapp/message_templates.json").read_text())
    late = load("whatsapp/text.json")
    recent(late, -2 * 86400)
    live.post_body(late)
    sign_in(page)
    page.goto(f"/console/c/{WA_KEY}")
    expect(page.get_by_label("Message to")).to_be_disabled()
    expect(page.locator(".compose .hint").first).to_contain_text("only approved templates now: choose one below")
    form = page.locator("form.template", has_text="order_ready")
    fields = form.locator('input[name="parameter"]')
    expect(fields).to_have_count(2)
    fields.nth(0).fill("Ada")
    fields.nth(1).fill("A-1042")
    shot(page, "templates")
    form.get_by_role("button", name="Send template").click()
    expect(page.locator(".entries")).to_contain_text("Hi Ada, your order A-1042 is ready for pickup.")
    template = graph.calls[-1]["template"]
    assert (template["name"], template["language"]) == ("order_ready", {"code": "en_US"})
    assert [p["text"] for p in template["components"][0]["parameters"]] == ["Ada", "A-1042"]


def test_the_console_fits_a_phone(phone_page, live):
    live.post("Can I book a table for 4 tonight?")
    phone_page.get_by_role("link", name="Everyone").click()
    expect(phone_page.locator(".rows")).to_contain_text("book a table")
    assert fits_the_phone(phone_page)
    shot(phone_page, "conversations-phone")
    phone_page.locator(".row", has_text="book a table").click()
    expect(phone_page.get_by_role("button", name="Take over")).to_be_visible()
    assert fits_the_phone(phone_page)
    shot(phone_page, "conversation-phone")


# --- the bad paths ---


def test_six_wrong_passwords_lock_the_account(page):
    for _ in range(5):
        sign_in(page, password="not the password")
        expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    sign_in(page)  # the right password, too late
    expect(page.get_by_role("alert")).to_have_text("Too many failed logins: try again in 15 minutes.")
    shot(page, "login-locked")


def test_a_post_without_its_token_is_refused(page, live, graph):
    live.post("hello")
    sign_in(page)
    page.goto(f"/console/c/{PSID}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach((field) => field.remove())")
    with page.expect_response(lambda response: response.url.endswith("/take")) as taken:
        page.get_by_role("button", name="Take over").click()
    assert taken.value.status == 400
    assert live.app.extensions[EXTENSION].store.transcript_summary(PSID)["state"] == "assistant"


def test_a_session_cookie_from_another_secret_key_is_not_a_session(page, live):
    other = Flask("another")
    other.secret_key = "another key entirely, 32 characters or more"
    forged = SecureCookieSessionInterface().get_signing_serializer(other)
    assert forged is not None
    value = forged.dumps({"staff": "maria", "since": time.time(), "csrf": "x"})
    page.context.add_cookies([{"name": "console_session", "value": value, "url": live.url + "/console/"}])
    page.goto("/console/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_staff_page_after_signing_out_asks_to_sign_in(page):
    sign_in(page)
    expect(page.get_by_role("link", name="Everyone")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.goto("/console/?view=everyone")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    shot(page, "login")


def test_html_in_a_message_is_shown_as_text_never_run(page, live):
    dialogs: list[str] = []

    def opened(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", opened)
    written = '<img src=x onerror="alert(1)"><b>bold</b><script>alert(2)</script>'
    live.post(written)
    sign_in(page)
    page.goto(f"/console/c/{PSID}")
    person = page.locator(".entry.kind-person .text")
    expect(person).to_have_text(written)
    assert page.locator(".entries b, .entries script, .entries img").count() == 0
    assert dialogs == []


# --- Leads and Usage ---


def test_the_leads_csv_downloads_with_formulas_escaped(page, live):
    store = live.app.extensions[EXTENSION].store
    for number, name in enumerate(('=HYPERLINK("http://evil.example","win")', "Ada Lovelace", "Grace Hopper")):
        lead = Lead(
            f"lead{number}",
            time.time() - 3600 + number,
            "messenger",
            f"70000000000000{number:02d}",
            name=name,
            phone="+44 7700 900123",
            note="Call back about a birthday cake",
        )
        store.keep_record(KIND, lead.id, json.dumps(asdict(lead)), lead.time)
    sign_in(page)
    page.get_by_role("link", name="Leads").click()
    expect(page.locator("table.leads")).to_contain_text("Grace Hopper")
    shot(page, "leads")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download CSV").click()
    download = downloading.value
    assert download.suggested_filename == "leads.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0] == ["time", "channel", "person", "name", "phone", "email", "note"]
    assert rows[1][3] == '\'=HYPERLINK("http://evil.example","win")'  # text in a spreadsheet, never a formula
    assert rows[1][4] == "'+44 7700 900123"


def test_the_usage_page_plots_the_days_by_channel(chromium, live, openai_server):
    openai_server.default = lambda request: completion("An answer.", prompt_tokens=125_000, completion_tokens=2_000)
    for number in range(3):
        live.post(f"Question {number}", psid=f"700000000000010{number}")
    for width, name in ((1000, "usage"), (PHONE["width"], "usage-phone")):
        context = chromium.new_context(base_url=live.url, viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            sign_in(page)
            page.get_by_role("link", name="Usage").click()
            replies = page.locator("svg#plot-replies")
            expect(replies).to_be_visible()
            assert replies.locator("title").first.text_content() == "Replies per day by channel, the last 30 days"
            bar = replies.locator("rect.series-0 title")
            expect(bar).to_have_count(1)
            assert bar.text_content().endswith(": Messenger 3 replies")
            spent = page.locator("svg#plot-dollars rect.series-0 title")
            expect(spent).to_have_count(1)
            assert spent.text_content().endswith(": Messenger $0.1596")  # 3 x (125,000 x $0.40 + 2,000 x $1.60) / 1M
            assert replies.bounding_box()["height"] > 100  # drawn, at a readable size
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, name)
        finally:
            context.close()


def test_leads_fit_a_phone(phone_page, live):
    store = live.app.extensions[EXTENSION].store
    lead = Lead(
        "lead0",
        time.time(),
        "whatsapp",
        "wa:447700900123",
        name="Ada Lovelace",
        phone="+44 7700 900123",
        email="ada@example.com",
        note="Wants a cake for 12 people on Saturday, gluten free",
    )
    store.keep_record(KIND, lead.id, json.dumps(asdict(lead)), lead.time)
    phone_page.get_by_role("link", name="Leads").click()
    expect(phone_page.locator("table.leads")).to_contain_text("Ada Lovelace")
    assert fits_the_phone(phone_page)
    shot(phone_page, "leads-phone")


def test_the_usage_page_shows_the_outcomes_and_what_was_not_covered(chromium, live):
    transcripts = Transcripts(live.app.extensions[EXTENSION].store, 90, clock=(clock := Clock()))
    for number in range(6):
        psid, hours = f"70000000000002{number:02d}", 30 + 24 * number
        talk(transcripts, clock, psid, (hours, "person", "When do you open?"), (hours - 0.1, "assistant", "At 9."))
    talk(transcripts, clock, "7000000000000300", (50, "person", "a person please"), (49.9, "handover", "asked"))
    for number, question in enumerate(("Do you sell pizza?", "do you sell pizza", "Is there a play area?")):
        answer = (100 + number, "assistant", "Sorry, I don't know that.")
        talk(transcripts, clock, f"70000000000004{number:02d}", (100.1 + number, "person", question), answer)
    for width, name in ((1000, "usage-outcomes"), (PHONE["width"], "usage-outcomes-phone")):
        context = chromium.new_context(base_url=live.url, viewport={"width": width, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            sign_in(page)
            page.get_by_role("link", name="Usage").click()
            plot = page.locator("svg#plot-conversations")
            expect(plot).to_be_visible()
            expect(plot.locator("rect.series-1 title")).to_have_count(1)  # handed over, one day
            assert plot.locator("rect.series-1 title").text_content().endswith(": Handed over 1 conversations")
            assert plot.bounding_box()["height"] > 100
            first = page.locator("#not-covered tbody tr").first
            expect(first).to_contain_text("pizza sell")
            expect(first).to_contain_text("2")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            section = page.locator("#outcomes")
            if folder := os.environ.get("CONSOLE_SCREENSHOTS"):
                section.screenshot(path=str(Path(folder) / f"{name}.png"))
        finally:
            context.close()


def test_try_it_shows_the_answer_and_what_it_drew_on(chromium, make_app, config, openai_server, tmp_path):
    config.update(KNOWLEDGE_DIR=str(Path(__file__).resolve().parent.parent / "examples" / "knowledge"))
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", SECRET_KEY=SECRET_KEY, CONSOLE_INSECURE_COOKIES="on")
    config.update(MODEL_PRICES="gpt-4.1-mini=0.40/0.10/1.60")
    app = make_app(config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    openai_server.default = lambda request: completion("A small sourdough loaf is **£3.80**, the large one £5.50.")
    for width, name in ((1000, "try-it"), (PHONE["width"], "try-it-phone")):
        context = chromium.new_context(
            base_url=f"http://127.0.0.1:{server.server_port}", viewport={"width": width, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            sign_in(page)
            page.get_by_role("link", name="Try it").click()
            page.get_by_label("Message").fill("how much is the sourdough?")
            page.get_by_label("Channel").select_option("messenger")
            page.get_by_role("button", name="Try").click()
            expect(page.locator("#answer")).to_contain_text("A small sourdough loaf is £3.80")
            expect(page.locator("#explanation")).to_contain_text("prices.md")
            expect(page.locator("#tool-calls")).to_contain_text("No tool was called.")
            expect(page.locator("#cost")).to_contain_text("50 prompt + 10 completion tokens in 1 model call")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, name)
        finally:
            context.close()
    server.shutdown()


def test_test_sets_run_and_show_what_broke(chromium, make_app, config, openai_server, tmp_path):
    folder = tmp_path / "evals"
    folder.mkdir()
    (folder / "bakery.toml").write_text(
        '[[case]]\nname = "sunday hours"\nsay = "are you open on sunday?"\nmentions = ["9"]\n\n'
        '[[case]]\nname = "no pizza"\nsay = "do you sell pizza?"\nnot_mentions = ["pizza"]\n'
    )
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", SECRET_KEY=SECRET_KEY, CONSOLE_INSECURE_COOKIES="on")
    app = make_app({**config, "EVALS_DIR": str(folder)})
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tester = app.extensions[TESTING]
    for width, name in ((1000, "test-sets"), (PHONE["width"], "test-sets-phone")):
        context = chromium.new_context(
            base_url=f"http://127.0.0.1:{server.server_port}", viewport={"width": width, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            sign_in(page)
            page.get_by_role("link", name="Test sets").click()
            for answer in ("Sunday from 9 to 2. We only bake bread.", "Sunday from 10. We only bake bread."):
                openai_server.default = lambda request, answer=answer: completion(answer)
                page.get_by_label("Test set").select_option("bakery.toml")
                page.get_by_role("button", name="Run").click()
                assert tester.thread is not None
                tester.thread.join()
                page.goto("/console/tests?file=bakery.toml")
            expect(page.locator("#summary")).to_contain_text("1 of 2 passed")
            broke = page.locator("#cases tr.broke")
            expect(broke).to_have_count(1)
            expect(broke).to_contain_text("sunday hours")
            expect(broke).to_contain_text("was passing")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, name)
        finally:
            context.close()
    server.shutdown()
