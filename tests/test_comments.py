"""Comments on the Page's posts and the Instagram account's media, answered with one private reply."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from inboxgpt.config import settings_from_mapping
from inboxgpt.events import Comment
from inboxgpt.model import prompt
from inboxgpt.web.app import EXTENSION
from tests.fakes import Reply, completion, echo_answer, openai_error
from tests.helpers import PAGE_ID, PSID, load, page_body, poster, text_event
from tests.test_whatsapp import whatsapp

KNOWLEDGE = Path(__file__).resolve().parent.parent / "examples" / "knowledge"
COMMENTER_PSID = "4747474747474747"  # the id the private reply's answer names: the person's on Messenger
POST = "Our new sourdough is out of the oven! 🍞"


def fresh(name: str) -> dict:
    """A comment's webhook body, written a minute ago (Meta takes private replies within 7 days)."""
    body = load(f"comments/{name}")
    for entry in body["entry"]:
        entry["time"] = int(time.time())
        for change in entry["changes"]:
            if "created_time" in change["value"]:
                change["value"]["created_time"] = int(time.time()) - 60
    return body


def private_replies(graph) -> list[dict]:
    return [call for call in graph.calls if "comment_id" in call.get("recipient", {})]


@pytest.fixture
def comments_on(config, graph):
    config.update(COMMENTS="keywords", COMMENT_KEYWORDS="price,ship,how much", KNOWLEDGE_DIR=str(KNOWLEDGE))
    graph.posts["1234567890_8765"] = POST
    graph.commenters["8765_1111"] = COMMENTER_PSID
    return config


# --- reading ---


def read(config: dict, body: dict):
    from inboxgpt.channels import page_channels
    from inboxgpt.channels.graph import GraphClient, GraphSettings

    settings = settings_from_mapping(config)
    channels = page_channels(GraphClient(GraphSettings.from_settings(settings)), settings)
    return channels.for_webhook(body).read(body)


def test_a_new_comment_is_an_event_of_its_author(config):
    (event,) = read(config, load("comments/facebook_add.json")).events
    assert event == Comment(
        psid="24242424242424242",
        comment_id="8765_1111",
        post_id="1234567890_8765",
        text="What's the price of the sourdough?",
        timestamp=1764540000 * 1000,
        channel="messenger",
    )
    assert event.event_id == "comment:8765_1111"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("facebook_edit.json", "comment_edited"),
        ("facebook_remove.json", "comment_remove"),
        ("facebook_like.json", "feed_reaction"),
        ("facebook_own.json", "own_comment"),
        ("instagram_own_comment.json", "own_comment"),
    ],
)
def test_edits_removals_likes_and_the_pages_own_comments_are_skipped(config, name, kind):
    parsed = read(config, load(f"comments/{name}"))
    assert parsed.events == ()
    assert parsed.skipped == {kind: 1}


def test_a_reply_to_a_comment_is_a_comment_of_its_own_author(config):
    (event,) = read(config, load("comments/facebook_reply.json")).events
    assert (event.psid, event.comment_id, event.text) == (
        "31313131313131313",
        "8765_2222",
        "same question, how much is it?",
    )


@pytest.mark.parametrize("name", ["instagram_comment.json", "instagram_live_comment.json"])
def test_instagram_comments_and_live_comments_are_events_of_their_author(config, name):
    (event,) = read(config, load(f"comments/{name}")).events
    assert event.psid == "ig:5566778899001122"
    assert event.channel == "instagram"


# --- answering ---


def test_comments_are_left_alone_by_default(post, graph, openai_server):
    post(fresh("facebook_add.json"))
    assert openai_server.requests == []
    assert graph.calls == []


def test_a_comment_with_a_keyword_gets_one_private_reply_grounded_in_the_post_and_knowledge(
    comments_on, app_with, graph, openai_server
):
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    (request,) = openai_server.requests
    system, asked = request["messages"][0]["content"], request["messages"][-1]["content"]
    assert "sourdough" in system.lower()  # the page's knowledge, searched with the comment and the post
    assert asked == prompt.COMMENT.format(
        post=f' "{POST}"', comment="What's the price of the sourdough?", length="2,000 characters"
    )
    (reply,) = private_replies(graph)
    assert reply["recipient"] == {"comment_id": "8765_1111"}
    assert reply["message"]["text"].startswith("You said: [A comment under the page's post")
    assert graph.all_calls[0]["endpoint"] == "1234567890_8765"  # the post's text, read once


def test_usage_counts_comment_replies_apart(comments_on, tmp_path, make_app):
    comments_on["STORE_URL"] = f"sqlite:///{tmp_path}/bot.db"
    app = make_app(comments_on)
    poster(app)(fresh("facebook_add.json"))
    poster(app)(page_body(text_event("hello")))
    output = app.test_cli_runner().invoke(args=["usage"]).output
    assert "2 replies (messenger 2, instagram 0, whatsapp 0, 1 to comments)" in output


def test_everything_else_under_the_post_is_left_alone(comments_on, app_with, graph, openai_server):
    post = app_with(comments_on)
    for name in ("facebook_edit.json", "facebook_remove.json", "facebook_like.json", "facebook_own.json"):
        post(fresh(name))
    body = fresh("facebook_add.json")
    body["entry"][0]["changes"][0]["value"].update(comment_id="8765_5555", message="Looks delicious!")
    post(body)
    assert openai_server.requests == []
    assert private_replies(graph) == []


def test_the_public_reply_follows_the_private_one(comments_on, app_with, graph):
    comments_on["COMMENT_PUBLIC_REPLY"] = "Sent you a message!"
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    endpoints = [call["endpoint"] for call in graph.all_calls]
    assert endpoints[-2:] == ["messages", "comments"]
    assert graph.all_calls[-1]["message"] == "Sent you a message!"
    assert graph.paths[-1].startswith("/v23.0/8765_1111/comments")


@pytest.mark.parametrize("code", [10900, 10903])
def test_a_refused_private_reply_is_never_retried_and_gets_no_public_reply(comments_on, app_with, graph, caplog, code):
    comments_on.update(COMMENT_PUBLIC_REPLY="Sent you a message!", GRAPH_MAX_RETRIES="3")
    post = app_with(comments_on)
    graph.fail_next(400, code=code, times=5, messages_only=True)
    post(fresh("facebook_add.json"))
    assert len(private_replies(graph)) == 1
    assert "comments" not in [call["endpoint"] for call in graph.all_calls]
    assert {10900: "already has its private reply", 10903: "cannot be sent a private reply"}[code] in caplog.text


def test_an_ad_comment_delivered_twice_is_answered_once_across_two_workers(
    comments_on, tmp_path, make_app, graph, openai_server
):
    comments_on["STORE_URL"] = f"sqlite:///{tmp_path}/bot.db"
    body = fresh("facebook_ad.json")
    for worker in (make_app(comments_on), make_app(comments_on)):
        poster(worker)(body)
    assert len(private_replies(graph)) == 1
    assert len(openai_server.requests) == 1


def test_a_comment_over_7_days_old_is_skipped_with_a_log_line(comments_on, app_with, graph, caplog):
    caplog.set_level(logging.INFO)
    post = app_with(comments_on)
    post(load("comments/facebook_add.json"))  # written on 2025-11-30
    assert private_replies(graph) == []
    assert "over 7 days old" in caplog.text


def test_the_persons_answer_continues_the_conversation_the_private_reply_opened(
    comments_on, app_with, graph, openai_server
):
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    sent = private_replies(graph)[0]["message"]["text"]
    # The reply comes back as an echo to the person; then they answer.
    echo = text_event(sent, psid=PAGE_ID, mid=graph.message_ids[0])
    echo["message"]["is_echo"] = True
    echo["recipient"] = {"id": COMMENTER_PSID}
    post(page_body(echo))
    post(page_body(text_event("Great, I'll take two loaves", psid=COMMENTER_PSID)))
    history = [message["content"] for message in openai_server.requests[-1]["messages"][1:]]
    assert history == [
        prompt.COMMENTED.format(comment="What's the price of the sourdough?"),
        sent,
        "Great, I'll take two loaves",
    ]


def test_a_commenter_the_pages_people_are_talking_to_gets_no_private_reply(comments_on, app_with, graph, openai_server):
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    # A person from the page then writes to them by hand in the conversation the private reply opened.
    by_hand = text_event("Hi, it's Maria from the bakery!", psid=PAGE_ID, mid="m_by_hand")
    by_hand["message"]["is_echo"] = True
    by_hand["recipient"] = {"id": COMMENTER_PSID}
    by_hand["timestamp"] = int(time.time() * 1000)
    post(page_body(by_hand))
    later = fresh("facebook_add.json")
    later["entry"][0]["changes"][0]["value"].update(comment_id="8765_9999", message="and the price of the rye?")
    post(later)
    assert len(private_replies(graph)) == 1
    assert len(openai_server.requests) == 1


def test_an_instagram_comment_is_answered_through_the_page(comments_on, app_with, graph, openai_server):
    graph.posts["18012345678901234"] = "Fresh croissants every morning"
    post = app_with(comments_on)
    post(fresh("instagram_comment.json"))
    (reply,) = private_replies(graph)
    assert reply["recipient"] == {"comment_id": "17987654321098765"}
    assert graph.all_calls[0]["params"].get("fields") == "caption"


def test_a_model_failure_leaves_the_comment_unanswered_without_an_apology(comments_on, app_with, graph, openai_server):
    openai_server.default = lambda request: openai_error(500, "The server had an error", "server_error")
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    assert private_replies(graph) == []


def test_check_warns_when_comments_are_on_but_feed_is_not_subscribed(comments_on, make_app, graph, openai_server):
    openai_server.default = echo_answer
    output = make_app(comments_on).test_cli_runner().invoke(args=["check"]).output
    assert "! comment fields: COMMENTS is keywords but the page is not subscribed to feed" in output
    graph.subscribed_fields.append("feed")
    output = make_app(comments_on).test_cli_runner().invoke(args=["check"]).output
    assert "! comment fields" not in output


def test_check_reads_instagrams_comments_field_with_the_apps_own_token(comments_on, make_app, graph, openai_server):
    comments_on["APP_ID"] = "1517776481860111"
    runner = make_app(comments_on).test_cli_runner()
    output = runner.invoke(args=["check"]).output
    assert (
        "! instagram comment fields: COMMENTS is keywords but the app is not subscribed to Instagram's comments"
        in output
    )
    (call,) = [call for call in graph.all_calls if call["endpoint"] == "subscriptions"]
    assert call["params"]["access_token"] == f"1517776481860111|{comments_on['APP_SECRET']}"
    assert comments_on["APP_SECRET"] not in output
    graph.app_subscriptions[1]["fields"].append({"name": "comments"})
    assert "✓ instagram comment fields: comments" in runner.invoke(args=["check"]).output


def test_whatsapp_has_no_comments(config, graph):
    channel = whatsapp(config)
    assert channel.reply_privately("1_2", "hi") is None
    assert not channel.reply_publicly("1_2", "hi")
    assert graph.calls == []


@pytest.mark.parametrize(
    ("keywords", "text"),
    [
        ("多少钱", "这个多少钱？"),
        ("ราคา", "ราคาเท่าไหร่คะ"),
        ("€", "10€?"),
        ("値段", "このパンの値段は？"),
        ("price", "这个price多少"),  # a spaced word among unspaced letters
        ("ship", "Do you ship to Lyon?"),
    ],
)
def test_keywords_match_in_languages_written_without_spaces(comments_on, app_with, graph, keywords, text):
    comments_on["COMMENT_KEYWORDS"] = keywords
    post = app_with(comments_on)
    body = fresh("facebook_add.json")
    body["entry"][0]["changes"][0]["value"]["message"] = text
    post(body)
    assert len(private_replies(graph)) == 1


@pytest.mark.parametrize(("keywords", "text"), [("ship", "free shipping!"), ("10", "only 100 left"), ("cafe", "cafés")])
def test_a_keyword_glued_to_a_spaced_word_is_not_matched(comments_on, app_with, graph, keywords, text):
    comments_on["COMMENT_KEYWORDS"] = keywords
    post = app_with(comments_on)
    body = fresh("facebook_add.json")
    body["entry"][0]["changes"][0]["value"]["message"] = text
    post(body)
    assert private_replies(graph) == []


def test_the_echo_of_a_private_reply_never_pauses_its_person_even_before_meta_answers(
    comments_on, make_app, graph, openai_server
):
    app = make_app(comments_on)
    service = app.extensions[EXTENSION]

    def echo_first(request: dict) -> None:
        # The echo reaches the conversation's own queue and is answered there before Meta answers the send.
        if "comment_id" not in request.get("recipient", {}):
            return
        echo = {"mid": "m_echo_of_private_reply", "is_echo": True, "app_id": 1517776481860111}
        echo |= {key: request["message"][key] for key in ("text", "metadata") if key in request["message"]}
        item = {"sender": {"id": PAGE_ID}, "recipient": {"id": COMMENTER_PSID}, "timestamp": now_ms(), "message": echo}
        body = page_body(item)
        for event in service.channels.for_webhook(body).read(body).events:
            service.bot.handle(event)

    graph.on_call = echo_first
    post = poster(app)
    post(fresh("facebook_add.json"))
    graph.on_call = None
    answer = text_event("Great, I'll take two loaves", psid=COMMENTER_PSID)
    answer["timestamp"] = now_ms()
    post(page_body(answer))
    assert len(openai_server.requests) == 2
    assert graph.texts(COMMENTER_PSID) == ["You said: Great, I'll take two loaves"]


def now_ms() -> int:
    return int(time.time() * 1000)


LONG_ANSWER = (
    "Our sourdough is baked every morning with flour from a mill nearby. " * 16 + "\n\nYes, we deliver to Lyon!"
)


def test_a_long_private_reply_is_asked_within_one_message_and_kept_as_it_was_sent(
    comments_on, app_with, graph, openai_server
):
    graph.posts["18012345678901234"] = "Fresh croissants every morning"
    graph.commenters["17987654321098765"] = "5566778899001122"
    openai_server.script.append(completion(LONG_ANSWER))
    post = app_with(comments_on)
    post(fresh("instagram_comment.json"))
    assert "one message of at most 1,000 bytes" in openai_server.requests[0]["messages"][-1]["content"]
    (reply,) = private_replies(graph)
    sent = reply["message"]["text"]
    assert "Lyon" not in sent
    answer = {
        "sender": {"id": "5566778899001122"},
        "recipient": {"id": "17841400000000001"},
        "timestamp": now_ms(),
        "message": {"mid": "m_ig_answer", "text": "And to Lyon?"},
    }
    post({"object": "instagram", "entry": [{"id": "17841400000000001", "time": now_ms(), "messaging": [answer]}]})
    history = [message["content"] for message in openai_server.requests[-1]["messages"][1:]]
    assert history[1] == sent  # what the person got, not the answer the model wrote


def test_a_post_is_read_once_while_many_comments_under_it_are_answered(comments_on, app_with, graph, openai_server):
    def held(request: dict) -> None:
        if not request:  # a read of the post: others come meanwhile (at most 2 s are given to them)
            graph.wait_for(lambda: sum(1 for path in graph.paths if "1234567890_8765" in path) > 1, timeout=2)

    graph.on_call = held
    comments_on["COMMENTS"] = "all"
    post = app_with(comments_on)
    body = fresh("facebook_add.json")
    change = body["entry"][0]["changes"][0]
    body["entry"][0]["changes"] = [
        {**change, "value": {**change["value"], "comment_id": f"8765_{n}", "from": {"id": f"5000{n}", "name": "A"}}}
        for n in range(6)
    ]
    post(body)
    assert sum(1 for path in graph.paths if "1234567890_8765" in path) == 1
    assert len(private_replies(graph)) == 6


@pytest.mark.parametrize(("status", "code"), [(400, 613), (400, 4), (400, 32), (429, None)])
def test_a_private_reply_refused_for_a_rate_limit_is_sent_again_later_without_asking_the_model_again(
    comments_on, app_with, graph, openai_server, status, code
):
    post = app_with(comments_on)
    graph.fail_next(status, code=code, times=3, messages_only=True)  # the client's own retry, then one wait
    post(fresh("facebook_add.json"))
    replies = private_replies(graph)
    assert len(replies) == 4
    assert len({reply["message"]["text"] for reply in replies}) == 1
    assert len(openai_server.requests) == 1
    assert graph.message_ids  # the fourth went


def test_a_private_reply_always_refused_for_a_rate_limit_gives_up_and_releases_the_comment(
    comments_on, make_app, graph, openai_server, caplog
):
    app = make_app(comments_on)
    graph.fail_next(400, code=613, times=20, messages_only=True)
    poster(app)(fresh("facebook_add.json"))
    assert len(private_replies(graph)) == 8  # four tries, each with the client's one retry
    assert "refused its private reply for a rate limit 4 times" in caplog.text
    # Released: a later delivery of the comment (a worker that resumes it) answers it.
    assert app.extensions[EXTENSION].store.keep_record("comment", "8765_1111", "{}", time.time())


@pytest.mark.parametrize("moderation", ["input", "both"])
def test_a_flagged_comment_gets_no_private_reply(comments_on, app_with, graph, openai_server, moderation):
    comments_on.update(MODERATION=moderation, COMMENTS="all")
    post = app_with(comments_on)
    body = fresh("facebook_add.json")
    body["entry"][0]["changes"][0]["value"]["message"] = "Listen, you scumbag."
    post(body)
    assert private_replies(graph) == []
    assert not [request for request in openai_server.requests if "messages" in request]


def test_a_flagged_private_reply_is_not_sent(comments_on, app_with, graph, openai_server):
    comments_on.update(MODERATION="both")
    openai_server.default = lambda request: completion("Listen, you scumbag.")
    post = app_with(comments_on)
    post(fresh("facebook_add.json"))
    assert private_replies(graph) == []
    openai_server.default = echo_answer
    assert len([path for path in openai_server.paths if path.endswith("/moderations")]) == 2


def many_comments(count: int, first: int = 0) -> dict:
    """One webhook of `count` new comments by as many people under the same post."""
    body = fresh("facebook_add.json")
    change = body["entry"][0]["changes"][0]
    body["entry"][0]["changes"] = [
        {**change, "value": {**change["value"], "comment_id": f"8765_{n}", "from": {"id": f"9000{n}", "name": "A"}}}
        for n in range(first, first + count)
    ]
    return body


def test_a_message_is_answered_while_a_flood_of_comments_holds_their_share_of_the_threads(
    comments_on, make_app, graph, openai_server
):
    # The held comment must outlast the message however loaded the machine is.
    comments_on.update(COMMENTS="all", WORKER_THREADS="4", OPENAI_TIMEOUT="120")

    def comments_think_forever(request: dict) -> Reply:
        answer = echo_answer(request)
        answer.hold = "[A comment under" in request["messages"][-1]["content"]
        return answer

    openai_server.default = comments_think_forever
    app = make_app(comments_on)
    post = poster(app)
    post(many_comments(8), wait=False)
    post(page_body(text_event("Are you open on Sunday?")), wait=False)
    # The message is answered while every comment written so far is still held at the model.
    try:
        assert graph.wait_for(lambda: graph.texts(PSID) == ["You said: Are you open on Sunday?"], timeout=30)
        held = [request for request in openai_server.requests if "[A comment under" in str(request.get("messages"))]
        assert len(held) == 1  # a quarter of the four threads
    finally:
        openai_server.released.set()  # else, failed, the held comment would keep the app from closing
    assert app.extensions[EXTENSION].dispatcher.wait_idle(timeout=30)
    assert len(private_replies(graph)) == 8  # the rest waited in the store, none dropped


def test_comments_have_their_own_daily_cap_and_never_close_the_inbox(comments_on, app_with, graph, openai_server):
    comments_on.update(COMMENTS="all", COMMENTS_PER_DAY="2", LIMIT_GLOBAL_PER_DAY="2")
    post = app_with(comments_on)
    post(many_comments(3))
    assert len(private_replies(graph)) == 2
    message = text_event("Are you open on Sunday?")
    message["timestamp"] = now_ms()  # the same day as the comments
    post(page_body(message))
    assert graph.texts(PSID) == ["You said: Are you open on Sunday?"]


def test_instagram_private_replies_keep_to_metas_pace_of_750_an_hour(comments_on, make_app, graph):
    from inboxgpt.conversation.comments import CommentReplier, CommentSettings
    from inboxgpt.periods import Periods
    from inboxgpt.usage import Usage

    service = make_app(comments_on).extensions[EXTENSION]
    now = [1_800_000_000.0]
    sent_at: list[float] = []
    graph.on_call = lambda request: sent_at.append(now[0]) if "comment_id" in request.get("recipient", {}) else None

    def wait(seconds: float) -> None:
        now[0] += seconds

    settings = CommentSettings.from_settings(settings_from_mapping(comments_on))
    usage = Usage(service.store, Periods("UTC"))
    replier = CommentReplier(
        settings, service.store, service.channels, service.model, None, 3600, usage, lambda: now[0], wait
    )
    for n in range(3):
        replier.answer(
            Comment(f"ig:55667788990{n}", f"1798765432109876{n}", "18012345678901234", "price?", 0, "instagram")
        )
    assert len(sent_at) == 3
    assert [round(sent_at[n + 1] - sent_at[n], 1) for n in range(2)] == [4.8, 4.8]
