"""`flask --app app check`: try every part of the set-up with the configured settings and say what to fix.

One line per check: the page token, the page's webhook subscription, the WhatsApp token and number
when set, the channels where /human reaches no one, the OpenAI key and model, whether the model's server takes
tools when TOOLS_FILE is set, the store and, when given, the webhook URL. Exits non-zero when something must be
fixed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import click
import requests

from inboxgpt.channels import page_channels
from inboxgpt.channels.graph import GraphClient, GraphError, GraphSettings
from inboxgpt.config import ConfigError, Settings
from inboxgpt.conversation.handover import unheard
from inboxgpt.model.errors import Failure, ModelError
from inboxgpt.model.gpt import ChatModel, ModelSettings
from inboxgpt.notify import HandoverNotifier
from inboxgpt.store import StoreUnavailable, open_store

# Webhook fields the bot needs, and those it needs to notice the page's people.
REQUIRED_FIELDS = ("messages", "messaging_postbacks")
HANDOVER_FIELDS = ("message_echoes", "messaging_handovers", "standby")
SUBSCRIBE = "in the app's Messenger API Settings, under Webhooks, Add subscriptions for the page"
# When nothing answered at all, the fault is between this machine and the server, not in a setting's value.
NETWORK = "check this machine's network (DNS, a firewall, HTTPS_PROXY)"
# Where the openai SDK goes without OPENAI_BASE_URL.
OPENAI_ADDRESS = "api.openai.com"


@dataclass(frozen=True)
class Result:
    """One check's outcome: ok, a warning, or a failure, with what to do."""

    name: str
    level: str  # "ok", "warn" or "fail"
    text: str

    def line(self) -> str:
        mark = {"ok": "✓", "warn": "!", "fail": "✗"}[self.level]
        return f"{mark} {self.name}: {self.text}"


def run_checks(settings: Settings, webhook_url: str | None) -> Iterator[Result]:
    """Every check, in the order a new set-up needs them fixed."""
    if settings.page_configured:
        messenger = GraphClient(GraphSettings.from_settings(settings))
        try:
            yield check_page_token(messenger)
            yield from check_subscription(messenger, settings)
            if settings.comments != "off" and settings.instagram:
                yield check_instagram_comments(settings)
        finally:
            messenger.close()
    else:
        yield Result("page", "warn", "no PAGE_ACCESS_TOKEN: WhatsApp alone; Messenger and Instagram are off")
    if settings.whatsapp_configured:
        yield check_whatsapp(settings)
    yield from check_handover(settings)
    model = ChatModel(ModelSettings.from_settings(settings))
    try:
        yield check_model(model, settings)
        if settings.tools is not None:
            yield check_tools(model)
        if settings.moderation != "off":
            yield check_moderation(model)
        yield check_prices(model, settings)
    finally:
        model.close()
    yield check_store(settings)
    if (console := check_console(settings)) is not None:
        yield console
    if webhook_url:
        yield check_webhook(webhook_url, settings)


def graph_problem(error: GraphError) -> str:
    """A failed Graph API call as the owner reads it: Meta's code if it gave one, the network if nothing answered."""
    if error.status == 0:
        return f"{error.meaning}: {NETWORK}"
    if error.code is None:
        return f"{error.meaning} (HTTP {error.status})"
    return f"{error.meaning} (code {error.code})"


def model_problem(error: ModelError) -> str:
    """A failed model call as the owner reads it, with the server's HTTP status when it answered one."""
    return error.failure.value if error.status is None else f"{error.failure.value} (HTTP {error.status})"


def unreachable_model(base_url: str | None) -> str:
    """What to do when no connection to the model's server could be made."""
    if base_url is None:
        return f"could not connect to {OPENAI_ADDRESS}: {NETWORK}"
    return f"could not connect to {base_url}: is the server running there? Check OPENAI_BASE_URL, or {NETWORK}"


def staff_names(settings: Settings) -> list[str]:
    """The console's staff accounts; none when the store cannot be read (said by the store's own check)."""
    try:
        store = open_store(settings)
    except StoreUnavailable:
        return []
    try:
        return store.staff_names()
    except StoreUnavailable:
        return []
    finally:
        store.close()


def check_console(settings: Settings) -> Result | None:
    """Whether the console is on, once a staff account exists: SECRET_KEY must sign their sessions. None without
    staff accounts (the console is off, as it should be), or when the store cannot be read (said above)."""
    names = staff_names(settings)
    if not names:
        return None
    if settings.secret_key is None:
        return Result("console", "fail", f"{len(names)} staff account(s) but no SECRET_KEY: set it to turn it on")
    return Result("console", "ok", f"on at /console/ for {len(names)} staff account(s)")


def check_page_token(messenger: GraphClient) -> Result:
    try:
        page = messenger.get()
    except GraphError as error:
        if error.code == 190:
            fix = "generate a new one in the app's Messenger API Settings and put it in PAGE_ACCESS_TOKEN"
            return Result("page token", "fail", f"refused ({error.meaning}): {fix}")
        return Result("page token", "fail", graph_problem(error))
    return Result("page token", "ok", f"works for the page {page.get('name', '?')} (id {page.get('id', '?')})")


def check_whatsapp(settings: Settings) -> Result:
    """The WhatsApp token works for the business number: `GET /{WHATSAPP_PHONE_NUMBER_ID}`."""
    whatsapp = GraphClient(GraphSettings.for_whatsapp(settings))
    try:
        number = whatsapp.get()
    except GraphError as error:
        if error.code == 190:
            fix = "generate a System User token that does not expire (Business Settings) and put it in WHATSAPP_TOKEN"
            return Result("WhatsApp", "fail", f"the token was refused ({error.meaning}): {fix}")
        fix = "" if error.status == 0 else ": check WHATSAPP_PHONE_NUMBER_ID"
        return Result("WhatsApp", "fail", f"{graph_problem(error)}{fix}")
    finally:
        whatsapp.close()
    name, shown = number.get("verified_name", "?"), number.get("display_phone_number", "?")
    return Result("WhatsApp", "ok", f"the token works for the number {shown} ({name})")


def check_handover(settings: Settings) -> Iterator[Result]:
    """A warning for the channels where asking for a person reaches no one (no inbox, no staff account for the
    console, no HANDOVER_NOTIFY_URL)."""
    graph = GraphClient(GraphSettings.from_settings(settings))
    channels = page_channels(graph, settings)
    try:
        console = settings.transcript_days > 0 and bool(staff_names(settings))
        names = unheard(channels, HandoverNotifier.from_settings(settings), console)
    finally:
        channels.close()
        graph.close()
    if names:
        yield Result(
            "handover",
            "warn",
            f"on {', '.join(names)} /human reaches no one (there is no inbox): the bot says no one is available "
            "and goes on answering; add a staff account for the console (staff add) or set HANDOVER_NOTIFY_URL to "
            "be told when a person asks for someone",
        )


def check_subscription(messenger: GraphClient, settings: Settings) -> Iterator[Result]:
    try:
        apps = messenger.get("subscribed_apps").get("data") or []
    except GraphError as error:
        yield Result("webhook fields", "fail", f"could not be read: {graph_problem(error)}")
        return
    if settings.app_id:
        apps = [app for app in apps if str(app.get("id")) == settings.app_id]
    fields = {field for app in apps for field in app.get("subscribed_fields") or []}
    if not apps:
        yield Result("webhook fields", "fail", f"the page is not subscribed to this app: {SUBSCRIBE}")
        return
    missing = [field for field in REQUIRED_FIELDS if field not in fields]
    if missing:
        yield Result("webhook fields", "fail", f"missing {', '.join(missing)}: {SUBSCRIBE}")
        return
    yield Result("webhook fields", "ok", ", ".join(f for f in (*REQUIRED_FIELDS, *HANDOVER_FIELDS) if f in fields))
    if settings.comments != "off" and "feed" not in fields:
        yield Result(
            "comment fields",
            "warn",
            f"COMMENTS is {settings.comments} but the page is not subscribed to feed: no comment will arrive "
            f"({SUBSCRIBE}; Instagram's comments field is subscribed in the app's Instagram settings)",
        )
    unheard = [field for field in HANDOVER_FIELDS if field not in fields]
    if unheard:
        yield Result(
            "handover fields",
            "warn",
            f"missing {', '.join(unheard)}: without them the bot may talk over the page's people ({SUBSCRIBE})",
        )


def check_instagram_comments(settings: Settings) -> Result:
    """Whether the app is subscribed to Instagram's comments field (an app's subscriptions are read with the app's
    own token, APP_ID|APP_SECRET, which is never logged)."""
    name = "instagram comment fields"
    if not settings.app_id:
        return Result(name, "warn", "set APP_ID to check that the app is subscribed to Instagram's comments field")
    token = f"{settings.app_id}|{settings.app_secret.reveal()}"
    url = f"{settings.graph_api_url}/{settings.app_id}/subscriptions"
    try:
        response = requests.get(url, params={"access_token": token}, timeout=settings.graph_timeout)
        subscriptions = response.json().get("data") if response.ok else None
    except (requests.RequestException, ValueError, AttributeError) as exc:
        return Result(name, "warn", f"could not be read ({type(exc).__name__})")  # its text would hold the token
    if not isinstance(subscriptions, list):
        return Result(name, "warn", f"could not be read (HTTP {response.status_code})")
    fields = {
        field.get("name")
        for subscription in subscriptions
        if isinstance(subscription, dict) and subscription.get("object") == "instagram"
        for field in subscription.get("fields") or []
        if isinstance(field, dict)
    }
    if "comments" not in fields:
        return Result(
            name,
            "warn",
            f"COMMENTS is {settings.comments} but the app is not subscribed to Instagram's comments field: "
            "subscribe it in the app's Instagram webhook settings",
        )
    return Result(name, "ok", ", ".join(sorted(f for f in fields if f in ("comments", "live_comments"))))


def check_model(model: ChatModel, settings: Settings) -> Result:
    try:
        found = model.has_model()
    except ModelError as error:
        fixes = {
            Failure.AUTH: "the key was refused: check OPENAI_API_KEY",
            Failure.QUOTA: "the account has no quota left: check billing",
            Failure.UNREACHABLE: unreachable_model(settings.openai_base_url),
        }
        return Result("OpenAI", "fail", fixes.get(error.failure, model_problem(error)))
    if not found:
        return Result("OpenAI", "fail", f"the model {settings.openai_model} does not exist here: check OPENAI_MODEL")
    return Result("OpenAI", "ok", f"the key works and the model {settings.openai_model} exists")


def check_tools(model: ChatModel) -> Result:
    """Whether the model's server takes a request offering tools (TOOLS_FILE is set)."""
    try:
        takes = model.takes_tools()
    except ModelError as error:
        return Result("model", "warn", f"could not ask whether the server takes tools: {model_problem(error)}")
    if not takes:
        return Result(
            "model",
            "warn",
            "the server refused a request with tools: answers will go without them (vLLM needs "
            "--enable-auto-tool-choice and a --tool-call-parser, llama.cpp's server --jinja)",
        )
    return Result("model", "ok", "the server takes tools")


def check_moderation(model: ChatModel) -> Result:
    """Whether the server answers the moderation endpoint (MODERATION is on)."""
    try:
        model.moderate("hello")
    except ModelError as error:
        return Result(
            "moderation",
            "warn",
            f"the server gave no moderation ({model_problem(error)}): messages go unchecked",
        )
    return Result("moderation", "ok", "the server checks messages")


def check_prices(model: ChatModel, settings: Settings) -> Result:
    """Whether the model has a price, without which the money caps cannot apply."""
    prices = model.prices
    caps = settings.spend_per_person_per_day or settings.spend_per_day or settings.spend_per_month
    if prices.known:
        return Result(
            "prices",
            "ok",
            f"{settings.openai_model} is priced: usage and caps count dollars (usage the server does not report, "
            "as some servers' streams and any stream cut short leave it out, is estimated high: see flask usage)",
        )
    level = "warn" if caps else "ok"
    return Result(
        "prices",
        level,
        f"{settings.openai_model} has no price: it counts as free, and SPEND_* caps cannot apply "
        "(set MODEL_PRICES to price it)",
    )


def check_store(settings: Settings) -> Result:
    scheme = settings.store_url.split(":", 1)[0]
    try:
        store = open_store(settings)
    except StoreUnavailable as exc:
        return Result("store", "fail", f"{exc}: check STORE_URL")
    try:
        writable = store.ping()
    finally:
        store.close()
    if not writable:
        return Result("store", "fail", f"the {scheme} store cannot be written: check STORE_URL and its permissions")
    return Result("store", "ok", f"{scheme} store reachable and writable")


def check_webhook(url: str, settings: Settings) -> Result:
    challenge = secrets.token_hex(8)
    params = {"hub.mode": "subscribe", "hub.verify_token": settings.verify_token.reveal(), "hub.challenge": challenge}
    try:
        response = requests.get(url, params=params, timeout=10)
    except requests.RequestException as exc:
        # Not the exception's text: it holds the URL with the verify token.
        return Result("webhook URL", "fail", f"no answer ({type(exc).__name__}): is the bot running behind this URL?")
    if response.status_code == 403:
        return Result("webhook URL", "fail", "refused the verify token: the one Meta is given must be VERIFY_TOKEN")
    if response.status_code != 200 or response.text != challenge:
        return Result(
            "webhook URL", "fail", f"answered HTTP {response.status_code}, not the challenge: is it this bot?"
        )
    return Result("webhook URL", "ok", "answers Meta's verification")


def check_command(load: Callable[[], Settings]) -> click.Command:
    """The `check` command, reading its settings with `load`."""

    @click.command("check")
    @click.option("--webhook-url", help="The public URL Meta calls (https://.../), to check that it answers.")
    def check(webhook_url: str | None) -> None:
        """Check the set-up: page token, webhook fields, OpenAI key and model, store, webhook URL."""
        try:
            settings = load()
        except ConfigError as error:
            click.echo(f"✗ settings: {error}")
            raise SystemExit(1) from None
        failed = False
        for result in run_checks(settings, webhook_url):
            click.echo(result.line())
            failed = failed or result.level == "fail"
        if failed:
            raise SystemExit(1)

    return check
