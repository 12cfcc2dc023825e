"""The console through Flask's test client: off until a staff account exists, staff accounts from the command line,
sessions, CSRF, locks after failed logins, and every button's effect on what reaches the Graph API and the model.
(tests/test_console_browser.py drives the same console in a real browser.)"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inboxgpt.console.staff import CHECKS_AT_ONCE, Login, Staff, StaffError
from inboxgpt.web.app import EXTENSION
from tests.fakes import FakeHook, Media
from tests.helpers import DATA, PSID, load, page_body, poster, recent, text_event

SECRET_KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console_config(config, tmp_path) -> dict:
    config.update(STORE_URL=f"sqlite:///{tmp_path}/bot.db", SECRET_KEY=SECRET_KEY, CONSOLE_INSECURE_COOKIES="on")
    config.update(ALLOW_HTTP_MEDIA="on")  # the fake Graph API serves WhatsApp's media over http
    return config


@pytest.fixture
def app(make_app, console_config):
    app = make_app(console_config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    return app


@pytest.fixture
def browser(app):
    """A test client signed in as maria."""
    client = app.test_client()
    sign_in(client)
    return client


def token(client, path: str = "/console/") -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client, name: str = "maria", password: str = PASSWORD):
    csrf = token(client, "/console/login")
    return client.post("/console/login", data={"name": name, "password": password, "csrf_token": csrf})


def act(client, key: str, action: str, **form: str | list[str]):
    return client.post(f"/console/c/{key}/{action}", data={"csrf_token": token(client), **form})


def now_ms(days_ago: float = 0.0) -> int:
    return int((time.time() - days_ago * 86400) * 1000)


def message(text: str, days_ago: float = 0.0) -> dict:
    event = text_event(text)
    event["timestamp"] = now_ms(days_ago)
    return page_body(event)


# --- off until a staff account exists ---


def test_the_console_is_off_without_a_staff_account(make_app, console_config):
    client = make_app(console_config).test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404


def test_the_console_is_off_without_a_secret_key(make_app, console_config, caplog):
    del console_config["SECRET_KEY"]
    app = make_app(console_config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    assert app.test_client().get("/console/login").status_code == 404
    assert "SECRET_KEY is not set" in caplog.text


def test_staff_accounts_are_added_listed_and_removed_from_the_command_line(make_app, console_config):
    app = make_app(console_config)
    runner = app.test_cli_runner()
    added = runner.invoke(args=["staff", "add", "ana", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["staff", "list"]).output == "ana\n"
    record = app.extensions[EXTENSION].store.staff_record("ana")
    assert record is not None
    assert PASSWORD not in record
    assert '"scrypt:' in record  # werkzeug's scrypt hash, salted
    assert sign_in(app.test_client(), "ana").status_code == 302
    assert runner.invoke(args=["staff", "remove", "ana"]).exit_code == 0
    assert app.test_client().get("/console/login").status_code == 404


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"STORE_URL": "memory://"}, "memory:// ends with this command"),
        ({"SECRET_KEY": ""}, "set SECRET_KEY first"),
    ],
)
def test_staff_add_refuses_a_store_that_forgets_and_a_missing_key(make_app, console_config, change, refusal):
    runner = make_app({**console_config, **change}).test_cli_runner()
    result = runner.invoke(args=["staff", "add", "ana", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code != 0
    assert refusal in result.output


def test_a_short_password_is_refused(make_app, console_config):
    runner = make_app(console_config).test_cli_runner()
    result = runner.invoke(args=["staff", "add", "ana", "--password-stdin"], input="short\n")
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output


# --- sessions ---


def test_the_session_cookie_is_httponly_samesite_and_secure_by_default(make_app, console_config):
    del console_config["CONSOLE_INSECURE_COOKIES"]
    app = make_app(console_config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    client = app.test_client()
    page = client.get("/console/login", base_url="https://bot.example.com")
    cookie = page.headers["Set-Cookie"]
    for flag in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/console/"):
        assert flag in cookie


def test_a_staff_page_needs_a_signed_in_session(app):
    client = app.test_client()
    page = client.get("/console/")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/console/login")


def test_a_wrong_password_is_refused(app):
    response = sign_in(app.test_client(), password="wrong password")
    assert response.status_code == 401
    assert "Wrong name or password." in response.get_data(as_text=True)


def test_a_post_without_its_csrf_token_gets_400(browser):
    assert browser.post("/console/logout").status_code == 400
    assert browser.post("/console/logout", data={"csrf_token": "forged"}).status_code == 400
    assert browser.get("/console/").status_code == 200  # still signed in


def test_five_failed_logins_lock_the_account_for_everyone(app):
    attacker, owner = app.test_client(), app.test_client()
    for _ in range(5):
        assert sign_in(attacker, password="guess guess").status_code == 401
    assert sign_in(attacker).status_code == 429  # even the right password, now
    # The account is locked wherever the login comes from (counted in the store).
    assert sign_in(owner).status_code == 429


def test_wrong_passwords_sent_at_once_are_checked_five_times_at_most(app, monkeypatch):
    # Each try is counted before its password is checked: tries that arrive together cannot all pass the lock.
    monkeypatch.setattr(Staff, "_checks", threading.BoundedSemaphore(30))
    staff = Staff(app.extensions[EXTENSION].store)
    start = threading.Barrier(30)

    def guess(n: int) -> Login:
        start.wait()
        return staff.log_in("maria", f"guess {n}", f"203.0.113.{n}")

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(guess, range(30)))
    assert outcomes.count(Login.WRONG) == 5
    assert outcomes.count(Login.LOCKED) == 25
    assert staff.log_in("maria", PASSWORD, "198.51.100.1") is Login.LOCKED


def test_logins_beyond_the_password_checks_under_way_are_asked_to_wait(app):
    # Each check takes scrypt's memory and a core's time: anyone may ask for one, so only a few run at once.
    held = [Staff._checks.acquire(blocking=False) for _ in range(CHECKS_AT_ONCE)]
    try:
        assert all(held)
        response = sign_in(app.test_client())
    finally:
        for _ in held:
            Staff._checks.release()
    assert response.status_code == 503
    assert sign_in(app.test_client()).status_code == 302  # and the try was not counted as a failure


def test_a_right_password_gives_its_try_back(app):
    client = app.test_client()
    for _ in range(4):
        assert sign_in(client, password="guess guess").status_code == 401
    for _ in range(3):
        assert sign_in(app.test_client()).status_code == 302
    assert sign_in(client, password="guess guess").status_code == 401  # the fifth failure, not a lock yet


def test_a_forged_token_beyond_ascii_is_a_400_not_a_500(browser):
    assert browser.post("/console/logout", data={"csrf_token": "é"}).status_code == 400


def test_a_session_ends_twelve_hours_after_its_login_however_busy(app, browser, monkeypatch):
    assert browser.get("/console/").status_code == 200
    later = time.time() + 12 * 3600 + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert browser.get("/console/").status_code == 302


def test_error_pages_under_the_console_carry_its_headers(browser):
    for response in (browser.get("/console/no-such-page"), browser.get("/console/logout")):
        assert response.status_code in (404, 405)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["maria\n", "ｍａｒｉａ", ""])
def test_a_staff_name_is_plain_letters_digits_and_a_few_signs(app, name):
    with pytest.raises(StaffError):
        Staff(app.extensions[EXTENSION].store).add(name, PASSWORD)


def test_a_cookie_signed_with_another_secret_key_is_not_a_session(make_app, console_config, app):
    other = make_app({**console_config, "SECRET_KEY": "another" + SECRET_KEY})
    stranger = other.test_client()
    Staff(other.extensions[EXTENSION].store).add("maria", PASSWORD)
    sign_in(stranger)
    forged = stranger.get_cookie("console_session", path="/console/")
    assert forged is not None
    client = app.test_client()
    client.set_cookie("console_session", forged.value, path="/console/")
    assert client.get("/console/").status_code == 302


def test_signing_out_ends_the_session_even_for_a_copied_cookie(browser):
    copied = browser.get_cookie("console_session", path="/console/")
    assert browser.post("/console/logout", data={"csrf_token": token(browser)}).status_code == 302
    assert browser.get("/console/").status_code == 302
    browser.set_cookie("console_session", copied.value, path="/console/")
    assert browser.get("/console/").status_code == 302


# --- the conversations ---


def test_a_conversation_appears_in_the_list_with_its_last_message(app, browser):
    poster(app)(message("Do you have oat milk?"))
    page = browser.get("/console/?view=everyone").get_data(as_text=True)
    assert "You said: Do you have oat milk?" in page
    assert "Messenger" in page
    needs = browser.get("/console/?view=needs&part=list").get_data(as_text=True)
    assert "oat milk" not in needs
    poster(app)(message("/human"))
    needs = browser.get("/console/?view=needs&part=list").get_data(as_text=True)
    assert "Needs a person" in needs


def test_search_finds_a_conversation_by_what_was_said(app, browser):
    post = poster(app)
    post(message("Do you have oat milk?"))
    found = browser.get("/console/?view=everyone&q=OAT&part=list").get_data(as_text=True)
    assert PSID[:6] in found
    none = browser.get("/console/?view=everyone&q=almond&part=list").get_data(as_text=True)
    assert "No conversations here" in none


def test_search_results_are_not_read_again_every_few_seconds(app, browser):
    # A search reads every transcript kept: the page asks for it once, while the plain list stays live.
    poster(app)(message("Do you have oat milk?"))
    assert 'data-live="' in browser.get("/console/?view=everyone").get_data(as_text=True)
    assert "data-live" not in browser.get("/console/?view=everyone&q=oat").get_data(as_text=True)


def test_html_in_a_message_is_shown_as_text(app, browser):
    poster(app)(message('<img src=x onerror="alert(1)"><script>alert(2)</script>'))
    page = browser.get(f"/console/c/{PSID}").get_data(as_text=True)
    assert "<script>alert(2)</script>" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "script-src 'self'" in browser.get(f"/console/c/{PSID}").headers["Content-Security-Policy"]


def test_an_unknown_conversation_is_404(browser):
    assert browser.get("/console/c/nobody").status_code == 404
    assert act(browser, "nobody", "take").status_code == 404


# --- the buttons ---


def test_take_over_silences_the_assistant_until_handed_back(app, browser, graph, openai_server):
    post = poster(app)
    post(message("hello"))
    assert act(browser, PSID, "take").status_code == 302
    asked = len(openai_server.requests)
    post(message("is anyone there?"))
    assert len(openai_server.requests) == asked  # no assistant reply
    assert graph.texts(PSID) == ["You said: hello"]
    page = browser.get(f"/console/c/{PSID}").get_data(as_text=True)
    assert "Taken over by maria" in page
    act(browser, PSID, "handback")
    post(message("and now?"))
    # Answered again; what the person said meanwhile was kept for the model too.
    assert graph.texts(PSID)[-1].endswith("and now?")


def test_send_reaches_the_person_as_a_reply_within_24_hours(app, browser, graph, openai_server):
    poster(app)(message("hello"))
    act(browser, PSID, "send", text="Hi, this is Maria from the shop.")
    call = graph.calls[-1]
    assert call["message"]["text"] == "Hi, this is Maria from the shop."
    assert call["messaging_type"] == "RESPONSE"
    assert "tag" not in call
    # Like a message written in the Page Inbox, it quiets the assistant; handed back, the model hears it as the
    # page's words.
    asked = len(openai_server.requests)
    poster(app)(message("thanks"))
    assert len(openai_server.requests) == asked
    act(browser, PSID, "handback")
    poster(app)(message("and the price?"))
    assert any("Maria from the shop" in str(m["content"]) for m in openai_server.requests[-1]["messages"])


def test_send_two_days_later_carries_the_human_agent_tag(app, browser, graph):
    poster(app)(message("hello", days_ago=2))
    act(browser, PSID, "send", text="Sorry for the wait!")
    call = graph.calls[-1]
    assert call["message"]["text"] == "Sorry for the wait!"
    assert (call["messaging_type"], call["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_send_past_seven_days_is_refused_in_the_console(app, browser, graph):
    poster(app)(message("hello", days_ago=8))
    sent = len(graph.calls)
    act(browser, PSID, "send", text="Anyone?")
    assert len(graph.calls) == sent
    page = browser.get(f"/console/c/{PSID}").get_data(as_text=True)
    assert "no longer lets the page write to them" in page


def test_a_note_is_kept_and_never_sent(app, browser, graph):
    poster(app)(message("hello"))
    sent = len(graph.calls)
    act(browser, PSID, "note", text="Regular customer, prefers mornings")
    assert len(graph.calls) == sent
    page = browser.get(f"/console/c/{PSID}").get_data(as_text=True)
    assert "Note by maria" in page
    assert "Regular customer, prefers mornings" in page


def test_resolve_takes_the_person_out_of_needs_a_person(app, browser):
    poster(app)(message("/human"))
    assert "Needs a person" in browser.get("/console/?view=needs&part=list").get_data(as_text=True)
    act(browser, PSID, "resolve")
    assert "No conversations here" in browser.get("/console/?view=needs&part=list").get_data(as_text=True)
    assert "Resolved" in browser.get("/console/?view=assistant&part=list").get_data(as_text=True)


def test_staff_actions_are_logged_with_the_name_and_key_never_the_text(app, browser, caplog):
    poster(app)(message("hello"))
    with caplog.at_level(logging.INFO):
        act(browser, PSID, "send", text="secret discount code 4242")
        act(browser, PSID, "note", text="internal remark 9999")
    assert f"staff=maria sent 1 message(s) to psid={PSID}" in caplog.text
    assert f"staff=maria noted on psid={PSID}" in caplog.text
    assert "4242" not in caplog.text
    assert "9999" not in caplog.text


def test_a_whatsapp_photo_is_shown_through_the_service(app, browser, graph):
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    graph.media["1037543291543636"] = Media(photo, "image/png")
    body = load("whatsapp/image.json")
    poster(app)(body)
    key = "wa:16505551234"
    page = browser.get(f"/console/c/{key}").get_data(as_text=True)
    (src,) = re.findall(r'<img src="([^"]+)"', page)
    assert "token" not in src
    shown = browser.get(src)
    assert shown.status_code == 200
    assert shown.data == photo
    # Kept by the staff member's browser alone, so the live conversation does not fetch it again and again.
    assert shown.headers["Cache-Control"] == "private, max-age=3600"


def test_check_says_whether_the_console_is_on(make_app, console_config, graph):
    app = make_app(console_config)
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    result = app.test_cli_runner().invoke(args=["check"])
    assert "✓ console: on at /console/ for 1 staff account(s)" in result.output
    del console_config["SECRET_KEY"]
    result = make_app(console_config).test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "✗ console: 1 staff account(s) but no SECRET_KEY: set it to turn it on" in result.output


# --- behind a proxy ---


def failed_logins_from(client, address: str, times: int = 5) -> None:
    """Failed logins, each for a different name (so that no account locks), as a proxy forwards them."""
    csrf = token(client, "/console/login")
    for number in range(times):
        form = {"name": f"guess{number}", "password": "guess guess", "csrf_token": csrf}
        assert client.post("/console/login", data=form, headers={"X-Forwarded-For": address}).status_code == 401


def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address(make_app, console_config):
    app = make_app({**console_config, "TRUSTED_PROXIES": "1"})
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    attacker, owner = app.test_client(), app.test_client()
    failed_logins_from(attacker, "203.0.113.5")
    csrf = token(owner, "/console/login")
    form = {"name": "maria", "password": PASSWORD, "csrf_token": csrf}
    # Both come through the same proxy (the test client's 127.0.0.1): only the attacker's address is locked.
    assert owner.post("/console/login", data=form, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 302
    csrf = token(attacker, "/console/login")
    form["csrf_token"] = csrf
    assert attacker.post("/console/login", data=form, headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 429


def test_without_trusted_proxies_a_forwarded_address_is_not_believed(app, caplog):
    attacker = app.test_client()
    # An attacker naming a new address each time is still counted by the address it connects from.
    for number in range(5):
        failed_logins_from(attacker, f"203.0.113.{number}", times=1)
    assert sign_in(attacker).status_code == 429
    assert "a failed login from 127.0.0.1" in caplog.text


# --- WhatsApp's late failures ---


@pytest.fixture
def hook():
    server = FakeHook()
    yield server
    server.close()


def test_an_answer_whatsapp_fails_later_shows_failed_and_the_person_needs_someone(
    console_config, make_app, graph, openai_server, hook
):
    app = make_app({**console_config, "HANDOVER_NOTIFY_URL": hook.url + "/hooks/T0123/secret-key"})
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    browser = app.test_client()
    sign_in(browser)
    post = poster(app)
    post(load("whatsapp/text.json"))
    key = "wa:16505551234"
    failed = load("whatsapp/failed.json")  # WhatsApp took the answer (200, an id), then reports it failed: 131047
    failed["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = graph.message_ids[-1]
    post(failed)
    page = browser.get(f"/console/c/{key}").get_data(as_text=True)
    assert "failed: the person last wrote more than 24 hours ago" in page
    assert "Not delivered" not in page  # the report is folded into the answer it names
    needs = browser.get("/console/?view=needs&part=list").get_data(as_text=True)
    assert "a late answer refused by WhatsApp" in needs
    app.extensions[EXTENSION].notifier.close()  # sends what is waiting
    assert [notice["why"] for notice in hook.requests] == ["undelivered"]  # told once, not again as needs_person


# --- names ---


def profile_reads(graph, scoped_id: str) -> list[dict]:
    return [call for call in graph.all_calls if call["endpoint"] == scoped_id]


def test_the_list_shows_the_name_whatsapp_gives_with_each_message(app, browser, graph):
    poster(app)(load("whatsapp/text.json"))  # contacts[0].profile.name: "Ada"
    row = browser.get("/console/?view=everyone&part=list").get_data(as_text=True)
    assert "Ada" in row
    assert "Ada" in browser.get("/console/c/wa:16505551234").get_data(as_text=True)
    assert profile_reads(graph, "16505551234") == []  # WhatsApp's names come with its webhooks


def test_a_messenger_name_is_read_from_the_profile_once(app, browser, graph):
    graph.profiles[PSID] = {"first_name": "Maria", "last_name": "Silva", "profile_pic": "https://x/p.jpg"}
    post = poster(app)
    post(message("hello"))
    post(message("are you open?"))
    assert "Maria Silva" in browser.get("/console/?view=everyone&part=list").get_data(as_text=True)
    (read,) = profile_reads(graph, PSID)
    assert read["params"]["fields"] == "first_name,last_name"


def test_a_profile_meta_refuses_is_asked_once_and_the_key_is_shown(app, browser, graph):
    graph.profiles[PSID] = {"first_name": "Maria"}
    graph.fail_next(400, 230, endpoint=PSID)  # no Advanced Access to the profile
    post = poster(app)
    post(message("hello"))
    post(message("still there?"))
    assert graph.texts(PSID) == ["You said: hello", "You said: still there?"]  # answered all the same
    assert len(profile_reads(graph, PSID)) == 1  # "no name" is kept too
    row = browser.get("/console/?view=everyone&part=list").get_data(as_text=True)
    assert "Maria" not in row
    assert PSID[:6] in row


def test_an_instagram_name_is_its_name_or_else_its_username(app, browser, graph):
    body = load("instagram/text.json")
    scoped_id = body["entry"][0]["messaging"][0]["sender"]["id"]
    graph.profiles[scoped_id] = {"username": "ada.bakes"}
    poster(app)(body)
    assert "@ada.bakes" in browser.get("/console/?view=everyone&part=list").get_data(as_text=True)
    (read,) = profile_reads(graph, scoped_id)
    assert read["params"]["fields"] == "name,username"


# --- WhatsApp past 24 hours: templates ---

WA_KEY = "wa:16505551234"
WABA_ID = "102290129340398"


@pytest.fixture
def templates_app(make_app, console_config, graph):
    graph.templates = json.loads((DATA / "whatsapp/message_templates.json").read_text())
    app = make_app({**console_config, "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID})
    Staff(app.extensions[EXTENSION].store).add("maria", PASSWORD)
    late = load("whatsapp/text.json")
    recent(late, -2 * 86400)  # they last wrote two days ago
    poster(app)(late)
    return app


def template_reads(graph) -> list[dict]:
    return [call for call in graph.all_calls if call["endpoint"] == "message_templates"]


def test_past_24_hours_whatsapp_offers_only_the_approved_templates_with_their_fields(templates_app, graph):
    client = templates_app.test_client()
    sign_in(client)
    page = client.get(f"/console/c/{WA_KEY}").get_data(as_text=True)
    assert re.search(r'<textarea id="send-text"[^>]*disabled', page)
    assert "order_ready" in page
    assert "hello_world" in page
    for not_offered in ("spring_sale", "receipt", "booking_reminder"):  # pending; a document header; named
        assert f'value="{not_offered}"' not in page
    assert page.count('name="parameter"') == 2  # order_ready's {{1}} and {{2}}
    # Three pages of two, read once, and kept: the page read again asks Meta nothing.
    assert [call["params"].get("after") is not None for call in template_reads(graph)] == [False, True, True]
    client.get(f"/console/c/{WA_KEY}")
    assert len(template_reads(graph)) == 3


def test_a_template_goes_with_its_parameters_and_joins_the_transcript(templates_app, graph):
    client = templates_app.test_client()
    sign_in(client)
    form: dict[str, str | list[str]] = {"name": "order_ready", "language": "en_US", "parameter": ["Ada", "A-1042"]}
    assert act(client, WA_KEY, "template", **form).status_code == 302
    assert graph.calls[-1] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "template",
        "template": {
            "name": "order_ready",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-1042"}]}
            ],
        },
        "params": {},
    }
    page = client.get(f"/console/c/{WA_KEY}").get_data(as_text=True)
    assert "Hi Ada, your order A-1042 is ready for pickup." in page


def test_a_template_without_every_field_is_not_sent(templates_app, graph):
    client = templates_app.test_client()
    sign_in(client)
    sent = len(graph.calls)
    act(client, WA_KEY, "template", name="order_ready", language="en_US", parameter=["Ada", " "])
    assert len(graph.calls) == sent
    assert "Fill in all 2 fields of the template." in client.get(f"/console/c/{WA_KEY}").get_data(as_text=True)


def test_templates_meta_refuses_to_list_are_said_so_never_a_500(templates_app, graph):
    graph.fail_next(400, 100, endpoint="message_templates")
    client = templates_app.test_client()
    sign_in(client)
    page = client.get(f"/console/c/{WA_KEY}")
    assert page.status_code == 200
    assert "The templates could not be read: Meta rejected a parameter" in page.get_data(as_text=True)
