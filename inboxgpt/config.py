"""Settings for the bot, read from the environment and `.env`, checked once at start."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from inboxgpt.tools.spec import ToolsFile, ToolsFileError, read_tools

if TYPE_CHECKING:
    from inboxgpt.prices import Price

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant answering people who write to a business on Messenger, Instagram or "
    "WhatsApp. "
    "Keep answers short and conversational: a few sentences, no tables or headings. "
    "If you don't know something, say so."
)


PAGE_INBOX_APP_ID = "263902037430900"
INSTAGRAM_INBOX_APP_ID = "1217981644879628"
# Meta's limits on the Messenger profile (greeting text, ice breakers).
GREETING_MAX_CHARS = 160
MAX_ICE_BREAKERS = 4
ICE_BREAKER_MAX_CHARS = 80
# A key anyone could guess would let them sign a staff session: shorter ones are refused.
SECRET_KEY_MIN_CHARS = 32


class ConfigError(Exception):
    """Raised when settings are missing or malformed; the message names every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"The bot cannot start: {len(problems)} setting(s) missing or invalid.\n{lines}\n"
            "Set them in the environment or in a .env file (see .env.example)."
        )


class Secret:
    """A string that never shows its value in a repr, str or log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """Return the secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Every setting the service uses; built by `load_settings`."""

    page_access_token: Secret
    verify_token: Secret
    app_secret: Secret
    openai_api_key: Secret
    openai_model: str = "gpt-4.1-mini"
    openai_base_url: str | None = None
    openai_timeout: float = 30.0
    openai_max_retries: int = 2
    reply_max_tokens: int = 500
    # The model's context window when the owner knows it (servers that cut prompts silently);
    # None: asked of a compatible server once, else learned from its refusals.
    model_context_tokens: int | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    graph_api_url: str = "https://graph.facebook.com/v23.0"
    graph_timeout: float = 10.0
    graph_max_retries: int = 3
    graph_backoff: float = 0.5
    history_max_messages: int = 20
    history_max_tokens: int = 3000
    conversation_ttl: float = 24 * 3600.0
    max_conversations: int = 10_000
    dedup_ttl: float = 36 * 3600.0
    dedup_max_ids: int = 100_000
    worker_threads: int = 64
    typing_renew_seconds: float = 15.0
    get_started_payload: str = "GET_STARTED"
    limit_per_minute: int = 10
    limit_per_day: int = 200
    limit_global_per_day: int = 5000
    max_message_chars: int = 2000
    max_events_per_post: int = 1000
    allowed_psids: frozenset[str] = frozenset()
    store_url: str = "memory://"
    vision: bool = True
    vision_detail: str = "low"
    max_images: int = 4
    transcribe: bool = True
    transcribe_model: str = "gpt-4o-mini-transcribe"
    max_audio_bytes: int = 25 * 1024 * 1024
    # WhatsApp's own limit on a photo: Messenger's photos are shown to the model by their link, never downloaded.
    max_image_bytes: int = 5 * 1024 * 1024
    media_timeout: float = 15.0
    allow_http_media: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    # When set, GET /metrics needs "Authorization: Bearer <token>".
    metrics_token: Secret | None = None
    # 0: derived from the model, Send API and media timeouts (see service.lock_ttl).
    queue_lock_seconds: float = 0.0
    # This Meta app's id: echoes carrying it are the bot's own (the metadata marker says so too).
    app_id: str | None = None
    human_pause_minutes: float = 30.0
    # Where /human passes the thread: the Page Inbox, or on Instagram the Instagram Inbox.
    handover_app_id: str = PAGE_INBOX_APP_ID
    instagram_handover_app_id: str = INSTAGRAM_INBOX_APP_ID
    # Answer Instagram Direct messages of the account linked to the Page.
    instagram: bool = True
    # WhatsApp: a System User's token and the business number's id in the Cloud API (both, or neither).
    whatsapp_token: Secret | None = None
    whatsapp_phone_number_id: str | None = None
    # The WhatsApp Business Account the number belongs to: its approved templates are what the console may send
    # past the 24-hour window. None: the console sends no templates.
    whatsapp_business_account_id: str | None = None
    # Answer WhatsApp messages when the two above are set; off: acknowledged and ignored.
    whatsapp: bool = True
    # Where a small JSON POST tells the owner that a person asked for someone, or that the bot stepped back.
    handover_notify_url: Secret | None = None
    # The Messenger profile `flask --app app page-setup` sends.
    greeting: str | None = None
    ice_breakers: tuple[str, ...] = ()
    # Send the model's answer paragraph by paragraph as it is written.
    stream: bool = True
    # The longest one answer may take, streamed or not, from the request to its last word.
    model_answer_seconds: float = 120.0
    # The most messages one answer may become; the rest is cut, with the cut-off notice.
    max_messages_per_reply: int = 8
    # Seconds to wait after a person's message for more before asking the model (a burst answered together).
    burst_wait_seconds: float = 0.0
    # The page's own knowledge (knowledge.py): a folder of Markdown, text and PDF files.
    knowledge_dir: Path | None = None
    knowledge_max_tokens: int = 1500
    knowledge_max_file_bytes: int = 10 * 1024 * 1024
    knowledge_reload_seconds: float = 60.0
    # Where the console's Test sets page finds eval files (*.toml); None: KNOWLEDGE_DIR.
    evals_dir: Path | None = None
    # Served by the same OpenAI-compatible server; None: the knowledge is searched by words only.
    embedding_model: str | None = None
    # Where section embeddings are cached; None: .embeddings.sqlite3 in KNOWLEDGE_DIR.
    embedding_cache: Path | None = None
    # How long a message's embedding may take before the knowledge is searched by words alone.
    embedding_query_seconds: float = 3.0
    # The owner's tools (tools/spec.py): the file, and what it declares, read with the settings.
    tools_file: Path | None = None
    tools: ToolsFile | None = None
    # Rounds of tool calls one answer may take before the model must answer without tools.
    tool_max_rounds: int = 3
    # Tools may call loopback and private addresses (an API on the same machine or network).
    tools_allow_private: bool = False
    # Stream the rounds that may call tools; off for servers that drop tool calls from streams.
    tools_stream: bool = True
    # Where each new lead (the built-in save_contact tool) is posted.
    leads_webhook_url: Secret | None = None
    # Comments on the Page's posts and the Instagram account's media: off, keywords (those matching
    # COMMENT_KEYWORDS) or all get one private reply.
    comments: str = "off"
    comment_keywords: tuple[str, ...] = ()
    # Posted under a comment once its private reply went; None: no public reply.
    comment_public_reply: str | None = None
    # Comments answered a day, apart from the messages' caps (0: no cap).
    comments_per_day: int = 1000
    # Prices of models the built-in table lacks (prices.py); caps in dollars (0: off); the time zone of their days.
    model_prices: dict[str, Price] = field(default_factory=dict)
    spend_per_person_per_day: float = 0.0
    spend_per_day: float = 0.0
    spend_per_month: float = 0.0
    timezone: str = "UTC"
    # Check what people send (input), and the answers too (both), with the moderation endpoint.
    moderation: str = "off"
    # Days each transcript entry is kept for the owner's console; 0: no transcripts, and no console history.
    transcript_days: float = 90.0
    # Signs the console's session cookies; required once a staff account exists.
    secret_key: Secret | None = None
    # Where the console is reached from outside (https://bot.example.com/console/), for links in notifications.
    console_url: str | None = None
    # Session cookies without Secure, for a console tried over plain http on one's own machine.
    console_insecure_cookies: bool = False
    # Proxies (nginx) in front of the service that set X-Forwarded-For: the client's address is read that many hops
    # back, so that the console's login lockout counts each address apart. 0: the address connected from.
    trusted_proxies: int = 0
    # The model that grades evals' answers and plays their customers (flask eval); None: OPENAI_MODEL.
    judge_model: str | None = None
    # Outcomes (flask report): a person's messages further apart than this start a new conversation; a
    # conversation the assistant answered counts as resolved once the person stays silent this long.
    conversation_gap_hours: float = 24.0
    resolved_after_hours: float = 24.0

    @property
    def page_configured(self) -> bool:
        """True when the Page's token is set: Messenger and Instagram are answered (WhatsApp may run alone)."""
        return bool(self.page_access_token.reveal())

    @property
    def whatsapp_configured(self) -> bool:
        """True when the WhatsApp Cloud API's token and business number are both set."""
        return bool(self.whatsapp_token and self.whatsapp_token.reveal() and self.whatsapp_phone_number_id)

    @property
    def meta_configured(self) -> bool:
        """True when the Messenger settings are there (they may be left out for the terminal chat)."""
        return all(secret.reveal() for secret in (self.page_access_token, self.verify_token, self.app_secret))

    def secrets(self) -> list[str]:
        """Return the secret values, for scrubbing them from log output."""
        values = [value.reveal() for value in vars(self).values() if isinstance(value, Secret)]
        store_password = urlsplit(self.store_url).password
        return values + ([store_password] if store_password else [])


META_REQUIRED = ("PAGE_ACCESS_TOKEN", "VERIFY_TOKEN", "APP_SECRET")
REQUIRED = (*META_REQUIRED, "OPENAI_API_KEY")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number above 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number, 0 or more")
    return value


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as https://example.com/v1")
    return raw.rstrip("/")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _psid_list(raw: str) -> frozenset[str]:
    psids = {part.strip() for part in raw.split(",") if part.strip()}
    if not all(psid.isdigit() for psid in psids):
        raise ValueError("must be page-scoped ids (digits) separated by commas")
    return frozenset(psids)


def _prices(raw: str) -> dict[str, Price]:
    from inboxgpt.prices import parse_prices  # prices.py has no settings of its own to import back

    return parse_prices(raw)


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be a time zone such as Europe/Paris or UTC") from None
    return raw


def _one_of(*choices: str) -> Callable[[str], str]:
    """A parser of a setting that takes one of `choices` (in any case)."""
    named = f"{', '.join(choices[:-1])} or {choices[-1]}"

    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be {named}")
        return raw.lower()

    return parse


def _secret_key(raw: str) -> Secret:
    if len(raw) < SECRET_KEY_MIN_CHARS:
        raise ValueError(f"must be at least {SECRET_KEY_MIN_CHARS} characters (openssl rand -hex 32 makes one)")
    return Secret(raw)


def _keywords(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _app_id(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError("must be a Meta app id (digits)")
    return raw


def _numeric_id(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError("must be the id Meta shows for it (digits)")
    return raw


def _greeting(raw: str) -> str:
    if len(raw) > GREETING_MAX_CHARS:
        raise ValueError(f"must be at most {GREETING_MAX_CHARS} characters (Meta's limit), not {len(raw)}")
    return raw


def _ice_breakers(raw: str) -> tuple[str, ...]:
    questions = tuple(part.strip() for part in raw.split("|") if part.strip())
    if len(questions) > MAX_ICE_BREAKERS:
        raise ValueError(f"must be at most {MAX_ICE_BREAKERS} questions separated by |, not {len(questions)}")
    too_long = [n for n, question in enumerate(questions, 1) if len(question) > ICE_BREAKER_MAX_CHARS]
    if too_long:
        raise ValueError(f"question {too_long[0]} is over {ICE_BREAKER_MAX_CHARS} characters")
    return questions


def _store_url(raw: str) -> str:
    if raw.split(":", 1)[0] not in ("memory", "sqlite", "redis", "rediss") or ":" not in raw:
        raise ValueError("must start with memory://, sqlite:/// or redis://")
    return raw


def _file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("not a file")
    return path


def _folder(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ValueError("not a folder")
    return path


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off (1/0, true/false, yes/no)")


def _text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw


# Environment variable -> (Settings field, parser). Required secrets are handled apart.
OPTIONAL: dict[str, tuple[str, Callable[[str], object]]] = {
    "OPENAI_MODEL": ("openai_model", _text),
    "OPENAI_BASE_URL": ("openai_base_url", _http_url),
    "OPENAI_TIMEOUT": ("openai_timeout", _positive_float),
    "OPENAI_MAX_RETRIES": ("openai_max_retries", _non_negative_int),
    "REPLY_MAX_TOKENS": ("reply_max_tokens", _positive_int),
    "MODEL_CONTEXT_TOKENS": ("model_context_tokens", _positive_int),
    "SYSTEM_PROMPT": ("system_prompt", _text),
    "GRAPH_API_URL": ("graph_api_url", _http_url),
    "GRAPH_TIMEOUT": ("graph_timeout", _positive_float),
    "GRAPH_MAX_RETRIES": ("graph_max_retries", _non_negative_int),
    "GRAPH_BACKOFF": ("graph_backoff", _non_negative_float),
    "HISTORY_MAX_MESSAGES": ("history_max_messages", _positive_int),
    "HISTORY_MAX_TOKENS": ("history_max_tokens", _positive_int),
    "CONVERSATION_TTL": ("conversation_ttl", _positive_float),
    "MAX_CONVERSATIONS": ("max_conversations", _positive_int),
    "DEDUP_TTL": ("dedup_ttl", _positive_float),
    "DEDUP_MAX_IDS": ("dedup_max_ids", _positive_int),
    "WORKER_THREADS": ("worker_threads", _positive_int),
    "TYPING_RENEW_SECONDS": ("typing_renew_seconds", _positive_float),
    "GET_STARTED_PAYLOAD": ("get_started_payload", _text),
    "LIMIT_PER_MINUTE": ("limit_per_minute", _non_negative_int),
    "LIMIT_PER_DAY": ("limit_per_day", _non_negative_int),
    "LIMIT_GLOBAL_PER_DAY": ("limit_global_per_day", _non_negative_int),
    "MAX_MESSAGE_CHARS": ("max_message_chars", _positive_int),
    "MAX_EVENTS_PER_POST": ("max_events_per_post", _positive_int),
    "ALLOWED_PSIDS": ("allowed_psids", _psid_list),
    "STORE_URL": ("store_url", _store_url),
    "VISION": ("vision", _flag),
    "VISION_DETAIL": ("vision_detail", _one_of("low", "high", "auto")),
    "MAX_IMAGES": ("max_images", _positive_int),
    "TRANSCRIBE": ("transcribe", _flag),
    "TRANSCRIBE_MODEL": ("transcribe_model", _text),
    "MAX_AUDIO_BYTES": ("max_audio_bytes", _positive_int),
    "MAX_IMAGE_BYTES": ("max_image_bytes", _positive_int),
    "MEDIA_TIMEOUT": ("media_timeout", _positive_float),
    "ALLOW_HTTP_MEDIA": ("allow_http_media", _flag),
    "LOG_LEVEL": ("log_level", _log_level),
    "LOG_FORMAT": ("log_format", _one_of("text", "json")),
    "METRICS_TOKEN": ("metrics_token", Secret),
    "QUEUE_LOCK_SECONDS": ("queue_lock_seconds", _positive_float),
    "APP_ID": ("app_id", _app_id),
    "HUMAN_PAUSE_MINUTES": ("human_pause_minutes", _positive_float),
    "HANDOVER_APP_ID": ("handover_app_id", _app_id),
    "INSTAGRAM": ("instagram", _flag),
    "WHATSAPP_TOKEN": ("whatsapp_token", Secret),
    "WHATSAPP_PHONE_NUMBER_ID": ("whatsapp_phone_number_id", _numeric_id),
    "WHATSAPP_BUSINESS_ACCOUNT_ID": ("whatsapp_business_account_id", _numeric_id),
    "WHATSAPP": ("whatsapp", _flag),
    "HANDOVER_NOTIFY_URL": ("handover_notify_url", lambda raw: Secret(_http_url(raw))),
    "INSTAGRAM_HANDOVER_APP_ID": ("instagram_handover_app_id", _app_id),
    "GREETING": ("greeting", _greeting),
    "ICE_BREAKERS": ("ice_breakers", _ice_breakers),
    "BURST_WAIT_SECONDS": ("burst_wait_seconds", _non_negative_float),
    "STREAM": ("stream", _flag),
    "MODEL_ANSWER_SECONDS": ("model_answer_seconds", _positive_float),
    "MAX_MESSAGES_PER_REPLY": ("max_messages_per_reply", _positive_int),
    "KNOWLEDGE_DIR": ("knowledge_dir", _folder),
    "EVALS_DIR": ("evals_dir", _folder),
    "KNOWLEDGE_MAX_TOKENS": ("knowledge_max_tokens", _positive_int),
    "KNOWLEDGE_MAX_FILE_BYTES": ("knowledge_max_file_bytes", _positive_int),
    "KNOWLEDGE_RELOAD_SECONDS": ("knowledge_reload_seconds", _non_negative_float),
    "EMBEDDING_MODEL": ("embedding_model", _text),
    "EMBEDDING_CACHE": ("embedding_cache", Path),
    "EMBEDDING_QUERY_SECONDS": ("embedding_query_seconds", _positive_float),
    "TOOLS_FILE": ("tools_file", _file),
    "TOOL_MAX_ROUNDS": ("tool_max_rounds", _positive_int),
    "TOOLS_ALLOW_PRIVATE": ("tools_allow_private", _flag),
    "TOOLS_STREAM": ("tools_stream", _flag),
    "LEADS_WEBHOOK_URL": ("leads_webhook_url", lambda raw: Secret(_http_url(raw))),
    "COMMENTS": ("comments", _one_of("off", "keywords", "all")),
    "COMMENT_KEYWORDS": ("comment_keywords", _keywords),
    "COMMENT_PUBLIC_REPLY": ("comment_public_reply", _text),
    "COMMENTS_PER_DAY": ("comments_per_day", _non_negative_int),
    "MODEL_PRICES": ("model_prices", _prices),
    "SPEND_PER_PERSON_PER_DAY": ("spend_per_person_per_day", _non_negative_float),
    "SPEND_PER_DAY": ("spend_per_day", _non_negative_float),
    "SPEND_PER_MONTH": ("spend_per_month", _non_negative_float),
    "TIMEZONE": ("timezone", _timezone),
    "MODERATION": ("moderation", _one_of("off", "input", "both")),
    "TRANSCRIPT_DAYS": ("transcript_days", _non_negative_float),
    "SECRET_KEY": ("secret_key", _secret_key),
    "CONSOLE_URL": ("console_url", _http_url),
    "CONSOLE_INSECURE_COOKIES": ("console_insecure_cookies", _flag),
    "TRUSTED_PROXIES": ("trusted_proxies", _non_negative_int),
    "JUDGE_MODEL": ("judge_model", _text),
    "CONVERSATION_GAP_HOURS": ("conversation_gap_hours", _positive_float),
    "RESOLVED_AFTER_HOURS": ("resolved_after_hours", _positive_float),
}


def settings_from_mapping(
    source: Mapping[str, str], meta_required: bool = True, openai_required: bool = True
) -> Settings:
    """Build settings from a mapping of variable names to strings, or raise ConfigError.

    Without `meta_required` (the terminal chat), the Messenger settings may be left out; without
    `openai_required` (setting up the page), the OpenAI key may. With WhatsApp's two settings, the Page's token may
    be left out too (WhatsApp alone; the app's secret and verify token stay required: the webhook is the app's).
    """
    problems: list[str] = []
    # Each parser returns its field's type; Settings itself is the type check of the whole.
    values: dict[str, Any] = {}
    whatsapp = all((source.get(name) or "").strip() for name in ("WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"))
    for name in REQUIRED:
        raw = (source.get(name) or "").strip()
        optional = not meta_required if name in META_REQUIRED else not openai_required
        optional = optional or (name == "PAGE_ACCESS_TOKEN" and whatsapp)
        if raw or optional:
            values[name.lower()] = Secret(raw)
        else:
            problems.append(f"{name} is missing")
    for name, (attribute, parse) in OPTIONAL.items():
        given = source.get(name)
        if given is None or given.strip() == "":
            continue
        try:
            values[attribute] = parse(given.strip() if attribute != "system_prompt" else given)
        except ValueError as exc:
            # The value itself is not repeated: a mistyped secret may have landed here.
            problems.append(f"{name} is invalid: {_reason(exc)}")
    if values.get("comments") == "keywords" and not values.get("comment_keywords"):
        problems.append("COMMENT_KEYWORDS is missing: COMMENTS=keywords answers only comments with one of them")
    if "tools_file" in values:
        # Its headers' secrets come from these same settings.
        try:
            values["tools"] = read_tools(values["tools_file"], source)
        except ToolsFileError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    return Settings(**values)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if text.startswith(("invalid literal", "could not convert")):
        return "must be a number"
    return text


def load_settings(env_file: str | Path = ".env", meta_required: bool = True, openai_required: bool = True) -> Settings:
    """Read settings from `.env` and the environment (which wins)."""
    source: dict[str, str] = {key: value for key, value in dotenv_values(env_file).items() if value is not None}
    source.update(os.environ)
    return settings_from_mapping(source, meta_required, openai_required)
