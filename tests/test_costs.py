"""Money: each reply's cost from its tokens, caps in dollars across workers, and moderation before the model."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inboxgpt import replies
from inboxgpt.config import ConfigError
from inboxgpt.limits import Limits, LimitSettings
from inboxgpt.model.completion import Completion
from inboxgpt.periods import Periods
from inboxgpt.prices import Price, PriceList, parse_prices
from inboxgpt.store.memory import MemoryStore
from inboxgpt.usage import DAYS_KEPT, KEEP, SPENDERS, STOPPED, Usage
from inboxgpt.web.app import EXTENSION
from tests.fakes import Reply, completion, openai_error, server_tokens, streamed, tool_calls
from tests.helpers import PSID, page_body, poster, text_event
from tests.test_store import BOUNDS, backend  # noqa: F401 (a fixture: every store)

# gpt-4.1-mini's price, named for the fake server (a model on another server is free unless priced).
PRICES = "gpt-4.1-mini=0.40/0.10/1.60"


def costly(prompt_tokens: int, completion_tokens: int, cached: int = 0, text: str = "An answer."):
    reply = completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if cached:
        reply.body["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
    return reply


def spent_today(app) -> float:
    service = app.extensions[EXTENSION]
    return Usage(service.store, Periods(service.settings.timezone)).totals(time.time()).dollars


# --- prices ---


def test_a_reply_costs_its_fresh_cached_and_written_tokens():
    price = parse_prices(PRICES)["gpt-4.1-mini"]
    assert price == Price(0.40, 0.10, 1.60)
    assert price.of(100_000, 40_000, 10_000) == pytest.approx(60_000 * 0.4e-6 + 40_000 * 0.1e-6 + 10_000 * 1.6e-6)


def test_openai_models_are_priced_by_family_and_other_servers_models_are_free_unless_named():
    assert PriceList("gpt-4.1-mini-2025-04-14", on_openai=True, overrides={}).chat == Price(0.40, 0.10, 1.60)
    assert PriceList("gpt-4o-mini", on_openai=True, overrides={}).chat == Price(0.15, 0.075, 0.60)
    assert not PriceList("gpt-4.1-mini", on_openai=False, overrides={}).known  # a compatible server's
    assert not PriceList("llama3.2", on_openai=True, overrides={}).known
    assert PriceList("llama3.2", on_openai=False, overrides=parse_prices("llama3.2=0.1/0.1/0.2")).known


@pytest.mark.parametrize("figure", ["nan", "inf", "1e400"])
def test_a_price_that_is_not_a_finite_number_stops_the_start(config, make_app, figure):
    config["MODEL_PRICES"] = f"gpt-4.1-mini=0.40/{figure}/1.60"
    with pytest.raises(ConfigError) as raised:
        make_app(config)
    assert "MODEL_PRICES is invalid: gpt-4.1-mini: prices must be finite numbers of dollars" in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("plain", 100_000 * 0.4e-6 + 10_000 * 1.6e-6),
        ("cached", 60_000 * 0.4e-6 + 40_000 * 0.1e-6 + 10_000 * 1.6e-6),
        ("streamed", 100_000 * 0.4e-6 + 10_000 * 1.6e-6),
        ("tools", 2 * (100_000 * 0.4e-6 + 10_000 * 1.6e-6)),  # two rounds, each paid
    ],
)
def test_spend_is_counted_from_the_servers_usage(config, tmp_path, make_app, openai_server, answer, expected):
    config.update(MODEL_PRICES=PRICES, STREAM="on" if answer == "streamed" else "off")
    if answer == "tools":
        (tmp_path / "tools.toml").write_text('builtin = ["save_contact"]\n')
        config["TOOLS_FILE"] = str(tmp_path / "tools.toml")
        call = tool_calls(("save_contact", {"note": "call me"}))
        call.body["usage"].update(prompt_tokens=100_000, completion_tokens=10_000)
        openai_server.script.extend([call, costly(100_000, 10_000)])
    elif answer == "streamed":
        openai_server.script.append(streamed(costly(100_000, 10_000)))
    else:
        openai_server.script.append(costly(100_000, 10_000, cached=40_000 if answer == "cached" else 0))
    app = make_app(config)
    poster(app)(page_body(text_event("hello")))
    assert spent_today(app) == pytest.approx(expected, abs=1e-6)


# --- caps ---


def test_a_persons_daily_cap_stops_them_at_its_boundary_across_two_workers(
    config, tmp_path, make_app, openai_server, graph, caplog
):
    config.update(MODEL_PRICES=PRICES, SPEND_PER_PERSON_PER_DAY="0.05", STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    openai_server.default = lambda request: costly(62_500, 0)  # $0.025 a reply
    workers = [poster(make_app(config)), poster(make_app(config))]
    for n in range(5):
        workers[n % 2](page_body(text_event(f"question {n}", mid=f"m_{n}")))
    assert len(openai_server.requests) == 2  # $0.025, then $0.05: the cap is met, a third call is not made
    texts = graph.texts(PSID)
    assert texts.count(replies.SPENT_TODAY) == 1  # told once, not on every message
    assert len(texts) == 3
    assert caplog.text.count("money cap reached: SPEND_PER_PERSON_PER_DAY of $0.05") == 1
    other = text_event("hello from someone else", psid="1111222233334444")
    workers[0](page_body(other))
    assert len(openai_server.requests) == 3  # a cap per person: others are answered


@pytest.mark.parametrize(
    ("setting", "notice"), [("SPEND_PER_DAY", replies.BACK_TOMORROW), ("SPEND_PER_MONTH", replies.BACK_NEXT_MONTH)]
)
def test_the_pages_caps_stop_everyone_across_two_workers(
    config, tmp_path, make_app, openai_server, graph, setting, notice
):
    config.update(MODEL_PRICES=PRICES, STORE_URL=f"sqlite:///{tmp_path}/bot.db", **{setting: "0.05"})
    openai_server.default = lambda request: costly(62_500, 0)  # $0.025 a reply
    workers = [poster(make_app(config)), poster(make_app(config))]
    people = ["1111222233334444", "5555666677778888", "9999000011112222"]
    for n, person in enumerate(people):
        workers[n % 2](page_body(text_event(f"hello {n}", psid=person, mid=f"m_{n}")))
    assert len(openai_server.requests) == 2  # $0.05 spent: the third person is stopped
    assert graph.texts(people[2]) == [notice]


def test_a_cap_turns_over_at_midnight_in_the_configured_time_zone():
    store = MemoryStore(BOUNDS)
    paris = ZoneInfo("Europe/Paris")
    now = [datetime(2026, 11, 30, 23, 30, tzinfo=paris).timestamp()]
    settings = LimitSettings(0, 0, 0, spend_per_person_per_day=0.05, timezone="Europe/Paris")
    limits = Limits(settings, store, clock=lambda: now[0])
    Usage(store, Periods("Europe/Paris")).record(Completion("a", "stop", 1, 1, cost=0.05), now[0], psid="p")
    now[0] += 10 * 60
    assert not limits.check("p", now[0]).allowed  # 23:40 in Paris: the same day
    now[0] = datetime(2026, 12, 1, 0, 10, tzinfo=paris).timestamp()  # 23:10 UTC: still the 30th there
    assert limits.check("p", now[0]).allowed


def test_usage_counts_back_by_the_calendar_across_a_change_of_the_clocks():
    store = MemoryStore(BOUNDS)
    usage = Usage(store, Periods("Europe/Paris"))
    # Paris skipped an hour on 29 March 2026: 24 hours before this moment is the 28th, late.
    after = datetime(2026, 3, 30, 0, 30, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    usage.record(Completion("a", "stop", 1, 1, cost=0.01), after - 12 * 3600, psid="p")
    days = usage.recent(after, 3)
    assert [totals.date for totals in days] == ["2026-03-30", "2026-03-29", "2026-03-28"]
    assert [totals.replies for totals in days] == [0, 1, 0]


# --- moderation ---


def test_a_flagged_message_gets_a_polite_refusal_no_model_call_and_no_text_in_the_logs(
    config, make_app, openai_server, graph, caplog
):
    caplog.set_level(logging.INFO)
    config["MODERATION"] = "input"
    post = poster(make_app(config))
    post(page_body(text_event("you scumbag, tell me the recipe")))
    assert openai_server.paths == ["/v1/moderations"]
    assert graph.texts(PSID) == [replies.MODERATED]
    assert "flagged by moderation: harassment" in caplog.text
    assert "scumbag" not in caplog.text
    post(page_body(text_event("what time do you open?")))
    assert openai_server.paths[-2:] == ["/v1/moderations", "/v1/chat/completions"]
    assert "scumbag" not in str(openai_server.requests[-1]["messages"])  # not kept in the history


def test_a_failing_moderation_lets_the_message_through(config, make_app, openai_server, graph, caplog):
    config["MODERATION"] = "input"
    openai_server.script.append(openai_error(503, "The server is overloaded", "server_error"))
    poster(make_app(config))(page_body(text_event("hello")))
    assert graph.texts(PSID) == ["You said: hello"]
    assert "moderation failed" in caplog.text


def test_with_both_the_answer_is_checked_before_it_is_sent(config, make_app, openai_server, graph):
    config.update(MODERATION="both", STREAM="on")
    openai_server.default = lambda request: completion("Listen, you scumbag.")
    poster(make_app(config))(page_body(text_event("hello")))
    chat = [request for request in openai_server.requests if "messages" in request]
    assert chat[0].get("stream") is not True  # not streamed: it is checked first
    assert graph.texts(PSID) == [replies.ANSWER_WITHHELD]


def test_check_tells_whether_the_server_moderates_and_whether_the_model_has_a_price(config, make_app, openai_server):
    config.update(MODERATION="input", SPEND_PER_DAY="1")
    runner = make_app(config).test_cli_runner()
    output = runner.invoke(args=["check"]).output
    assert "✓ moderation: the server checks messages" in output
    assert "! prices: gpt-4.1-mini has no price" in output
    openai_server.moderates = False
    config["MODEL_PRICES"] = PRICES
    output = make_app(config).test_cli_runner().invoke(args=["check"]).output
    assert "! moderation: the server gave no moderation" in output
    assert "✓ prices: gpt-4.1-mini is priced" in output
    assert "usage the server does not report" in output  # estimated, and said so


def test_usage_shows_money_by_channel_the_top_spenders_and_who_was_stopped(config, tmp_path, make_app, openai_server):
    config.update(MODEL_PRICES=PRICES, SPEND_PER_PERSON_PER_DAY="0.05", STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    openai_server.default = lambda request: costly(125_000, 0)  # $0.05: the cap at once
    app = make_app(config)
    for n in range(2):
        poster(app)(page_body(text_event(f"q{n}", mid=f"m_{n}")))
    output = app.test_cli_runner().invoke(args=["usage"]).output
    assert "1 replies" in output
    assert "$0.0500" in output
    assert "by channel: messenger $0.0500" in output
    assert "top people: 6543…4321 $0.0500" in output
    assert "stopped by a cap: 6543…4321 (SPEND_PER_PERSON_PER_DAY)" in output


def test_a_messages_embedding_is_paid_with_its_answer(config, tmp_path, make_app, openai_server):
    knowledge = shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "knowledge", tmp_path / "k")
    config.update(KNOWLEDGE_DIR=str(knowledge), EMBEDDING_MODEL="text-embedding-3-small")
    app = make_app(config)
    model = app.extensions[EXTENSION].model
    model.prices = PriceList("gpt-4.1-mini", on_openai=True, overrides={})  # priced as on OpenAI itself
    poster(app)(page_body(text_event("When do you open?")))
    embedded = [request for request in openai_server.requests if "input" in request and "model" in request][-1]
    tokens = sum(len(text) // 4 + 1 for text in embedded["input"])  # as the fake server counts them
    reply = 50 * 0.40e-6 + 10 * 1.60e-6
    assert spent_today(app) == pytest.approx(reply + tokens * 0.02e-6, abs=1e-9)


def test_transcription_is_priced_by_the_minute_on_openai_only():
    assert PriceList("gpt-4.1-mini", True, {}).transcription("gpt-4o-mini-transcribe", 90) == pytest.approx(0.0045)
    assert PriceList("gpt-4.1-mini", False, {}).transcription("gpt-4o-mini-transcribe", 90) == 0.0


# --- spend the server did not report, spend of calls that did not answer, spend in flight ---

# A price at which a few tokens cost cents: what long prompts cost at real prices.
DEAR = "gpt-4.1-mini=400/100/1600"


def test_streamed_replies_without_usage_are_estimated_and_count_against_the_caps(
    config, tmp_path, make_app, openai_server, graph
):
    config.update(MODEL_PRICES=DEAR, SPEND_PER_DAY="0.01", STREAM="on", STORE_URL=f"sqlite:///{tmp_path}/bot.db")
    # A server that streams no usage (llama-cpp-python's), or a stream left before its usage chunk.
    openai_server.default = lambda request: streamed(completion("Opening hours are 9 to 5."), include_usage=False)
    app = make_app(config)
    for n in range(3):
        poster(app)(page_body(text_event(f"when do you open? {n}", mid=f"m_{n}")))
    assert len(openai_server.requests) == 1  # the first reply's estimate is past the cap: the others are refused
    assert graph.texts(PSID) == ["Opening hours are 9 to 5.", replies.BACK_TOMORROW]
    assert spent_today(app) > 0.01
    output = app.test_cli_runner().invoke(args=["usage"]).output
    assert "estimated (the server reported no usage): 1 model calls" in output


def test_a_stream_cut_at_the_message_cap_counts_what_was_written(config, make_app, openai_server, graph):
    config.update(MODEL_PRICES=DEAR, STREAM="on", MAX_MESSAGES_PER_REPLY="1")
    answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(500))
    openai_server.default = lambda request: streamed(completion(answer, prompt_tokens=9_999, completion_tokens=9_999))
    app = make_app(config)
    poster(app)(page_body(text_event("tell me everything")))
    assert graph.texts(PSID)[-1] == replies.CUT_OFF
    totals = Usage(app.extensions[EXTENSION].store, Periods("UTC")).totals(time.time())
    assert totals.estimated_calls == 1  # left before the usage chunk: estimated, not free
    assert 0 < totals.completion_tokens < 9_999
    assert totals.dollars == pytest.approx(totals.estimated_dollars)
    assert totals.dollars > 0.01


def test_a_handover_by_the_model_still_pays_for_its_call(config, tmp_path, make_app, openai_server, graph):
    (tmp_path / "tools.toml").write_text('builtin = ["talk_to_a_person"]\n')
    config.update(MODEL_PRICES=PRICES, TOOLS_FILE=str(tmp_path / "tools.toml"))
    call = tool_calls(("talk_to_a_person", {}))
    call.body["usage"].update(prompt_tokens=100_000, completion_tokens=10_000)
    openai_server.script.append(call)
    app = make_app(config)
    poster(app)(page_body(text_event("a manager, please")))
    assert graph.texts(PSID) == [replies.HUMAN_COMING]
    assert spent_today(app) == pytest.approx(100_000 * 0.4e-6 + 10_000 * 1.6e-6, abs=1e-9)


def test_a_tool_round_that_fails_leaves_the_earlier_rounds_paid(config, tmp_path, make_app, openai_server, graph):
    (tmp_path / "tools.toml").write_text('builtin = ["save_contact"]\n')
    config.update(MODEL_PRICES=PRICES, TOOLS_FILE=str(tmp_path / "tools.toml"))
    call = tool_calls(("save_contact", {"note": "call me"}))
    call.body["usage"].update(prompt_tokens=100_000, completion_tokens=10_000)
    openai_server.script.extend([call, openai_error(500, "The server had an error", "server_error")])
    app = make_app(config)
    poster(app)(page_body(text_event("call me back")))
    assert len(graph.texts(PSID)) == 1  # the apology
    assert spent_today(app) == pytest.approx(100_000 * 0.4e-6 + 10_000 * 1.6e-6, abs=1e-9)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def shared_store(request, tmp_path) -> tuple[str, int]:
    """A STORE_URL, and how many workers share it: one on memory (a process's own), two on SQLite and Redis."""
    if request.param == "memory":
        return "memory://", 1
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.db", 2
    return request.getfixturevalue("redis_url"), 2


def test_the_pages_cap_holds_with_many_people_answered_at_once(config, shared_store, make_app, openai_server, graph):
    cap = 0.15
    config.update(MODEL_PRICES=DEAR, SPEND_PER_DAY=str(cap), REPLY_MAX_TOKENS="10", STORE_URL=shared_store[0])
    apps = [make_app(config) for _ in range(shared_store[1])]
    people = [f"{1000 + n}" for n in range(20)]
    decided = threading.Condition()
    asked: list[dict] = []
    costs: list[float] = []
    release = threading.Event()

    def answer(request: dict) -> Reply:
        """Answers with the tokens a real server counts, once every person was either asked about or refused."""
        with decided:
            asked.append(request)
            decided.notify_all()
        release.wait(timeout=30)
        prompt = sum(server_tokens(message) for message in request["messages"])
        costs.append(prompt * 400e-6 + 3 * 1600e-6)
        return completion("Hello!", prompt_tokens=prompt, completion_tokens=3)

    def refused() -> int:
        return sum(graph.texts(person) == [replies.BACK_TOMORROW] for person in people)

    def notify(request: dict) -> None:
        with decided:
            decided.notify_all()

    openai_server.default = answer
    graph.on_call = notify
    for n, person in enumerate(people):
        poster(apps[n % len(apps)])(page_body(text_event("hello", psid=person)), wait=False)
    with decided:
        assert decided.wait_for(lambda: len(asked) + refused() == len(people), timeout=30)
    release.set()
    for app in apps:
        assert app.extensions[EXTENSION].dispatcher.wait_idle(timeout=30)
    assert 0 < len(asked) < len(people)
    assert spent_today(apps[0]) == pytest.approx(sum(costs), abs=1e-6)
    assert spent_today(apps[0]) <= cap + max(costs)  # past the cap by one call at most, not by the calls in flight


def test_who_spent_and_who_was_stopped_is_kept_a_month_then_forgotten(backend):  # noqa: F811 (the fixture)
    store = backend()
    usage = Usage(store, Periods("UTC"))
    start = backend.clock.now
    days = []
    for day in range(60):
        backend.clock.now = start + day * 86_400
        days.append(usage.totals(backend.clock.now).date)
        for person in range(5):
            usage.record(Completion("a", "stop", 1, 1, cost=0.01), backend.clock.now, psid=f"p{person}")
            usage.stopped(f"p{person}", backend.clock.now, "SPEND_PER_DAY")
    if backend.kind == "redis":
        keys = store._redis.keys("mgpt:records*")
        assert keys
        assert all(0 < store._redis.pttl(key) <= KEEP * 1000 for key in keys)
        return
    store.expire()
    kept = [
        day for day in days if store.records(SPENDERS.format(day=day), 0) or store.records(STOPPED.format(day=day), 0)
    ]
    assert kept == days[-DAYS_KEPT:]  # what `flask usage --days 31` and the console's 30 days can show
    assert len(usage.totals(backend.clock.now).top_spenders) == 5
