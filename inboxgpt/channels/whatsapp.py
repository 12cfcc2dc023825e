"""WhatsApp: the business number's conversations through Meta's WhatsApp Cloud API: the same Meta app, webhook and
signature as the Page's, its own token (a System User's) and its own endpoint (`/{phone number id}/messages`).

A webhook's `entry[].changes[].value` carries `metadata` (the business number it is about: only the configured one
is read), `messages` (what people send), `statuses` (receipts of what the business sent: counted, never answered;
a `failed` one becomes its person's `Undelivered` event) and `errors`. A person's key is their id behind "wa:",
exactly as sent: a phone number's `wa_id`, or a business-scoped user id (a WhatsApp username's), which is not a
number and must never be reduced to digits; when both come, the scoped id is the event's alias, which the store
links to the number's key. Every message says until when it may be answered (WhatsApp's 24-hour window).
Photos and voice notes arrive as media ids: the channel asks the Graph API for each one's short-lived link, which the
bot downloads with the token (media.py); a photo's caption is its text. Videos, documents and the other kinds get the
honest "can't use that" answer, their caption unread rather than answered without what it is about.

WhatsApp allows about one message every 6 s to one person, with some room for bursts (its pair rate, error 131056):
a streamed answer leaves `message_gap` between its messages and joins what the model writes meanwhile.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Self

from inboxgpt.channels import formatting
from inboxgpt.channels.base import MAX_NAME_CHARS, PLACEHOLDER, Template
from inboxgpt.channels.graph import PERMANENT_MEANINGS, GraphClient, GraphError, GraphSettings
from inboxgpt.channels.graph_webhook import identifier, object_field, text_field
from inboxgpt.channels.messenger import GraphChannel
from inboxgpt.channels.text import split_text
from inboxgpt.config import Settings
from inboxgpt.events import Attachment, Echo, Event, Message, ParsedBody, Postback, Undelivered
from inboxgpt.media import MediaError, MediaLink

logger = logging.getLogger(__name__)

# WhatsApp's limit on a text message's body.
WHATSAPP_MAX_CHARS = 4096
# Seconds since 1970 above this (year 5138) are not real times.
MAX_TIMESTAMP_S = 10**11
# Kinds of message answered as text: the person's words, or the title of the button or list row they chose.
CHOICES = ("interactive", "button")
# Kinds that need no answer: a reaction to a message, a change of the person's number.
NOT_ANSWERED = ("reaction", "system", "ephemeral", "revoke")
# A person opening the chat for the first time: greeted as Messenger's Get Started button is.
WELCOME = "request_welcome"
# The field of people's messages and of receipts.
MESSAGES = "messages"
# The field of what the business's people write from the WhatsApp Business app, on a number in both.
ECHOES = "smb_message_echoes"
# WhatsApp's kinds of media by the names the other channels give them (replies.py answers each).
ATTACHMENT_TYPES = {"document": "file"}
# Kinds of media the bot can use (photos seen, voice notes heard), and the one whose caption is read with it.
USABLE_MEDIA = ("image", "audio", "sticker")
CAPTIONED = "image"
# Seconds between a streamed answer's messages to one person: WhatsApp's pair rate, one message every 6 s.
PAIR_RATE_SECONDS = 6.0
# WhatsApp's customer-service window: free-form messages reach a person within 24 hours of their last message.
WINDOW_MS = 24 * 3600 * 1000
# A WhatsApp Flow's answer (`interactive.nfm_reply`) as the model reads it: the person's fields, one a line.
FORM_ANSWER = "[Filled in the form]\n{fields}"
# Fields of a Flow's answer that are the business's, not the person's.
FORM_PLUMBING = ("flow_token",)
# Fields of a form read (more is not a person's answer), and what of the ad or post a person came from is kept.
MAX_FORM_FIELDS = 50
MAX_REFERRAL_CHARS = 300
# The approved templates are read again after this long (the owner may have one approved meanwhile).
TEMPLATES_SECONDS = 300.0
# Pages of templates read at most (100 a page): an account holds at most a few hundred.
MAX_TEMPLATE_PAGES = 10
TEMPLATE_FIELDS = "name,language,status,components"
# A placeholder of any kind ({{1}}, {{name}}); only numbered ones in the body are filled by the console.
ANY_PLACEHOLDER = re.compile(r"\{\{.*?\}\}")
# Headers that need a file or a place as a parameter.
MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION")


class WhatsAppChannel(GraphChannel):
    """The business number's WhatsApp conversations: keys behind "wa:"; text in messages of up to 4,096 characters;
    the read receipt and the typing indicator in one call about the person's message."""

    name = "whatsapp"
    webhook_object = "whatsapp_business_account"
    tag = "wa:"
    formatting_note = formatting.WHATSAPP_NOTE
    message_gap = PAIR_RATE_SECONDS

    def __init__(
        self,
        client: GraphClient,
        enabled: bool,
        own_client: bool,
        get_started: str,
        number_id: str | None = None,
        business_account_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(client, None, enabled)
        self._own_client = own_client
        self._get_started = get_started
        # The business number answered: one WhatsApp Business Account may hold several, all on one webhook.
        self._number_id = number_id
        # The account whose approved templates the console offers (None: none offered).
        self._business_account_id = business_account_id
        self._clock = clock
        self._templates: tuple[float, list[Template]] | None = None

    @classmethod
    def from_settings(cls, graph: GraphClient, settings: Settings) -> Self:
        """Answering with its own client when the token and number are set; without them its webhooks are read and
        acknowledged, never answered (there is no number to answer from)."""
        get_started = settings.get_started_payload
        if not settings.whatsapp_configured:
            return cls(graph, enabled=False, own_client=False, get_started=get_started)
        client = GraphClient(GraphSettings.for_whatsapp(settings))
        return cls(
            client,
            enabled=settings.whatsapp,
            own_client=True,
            get_started=get_started,
            number_id=settings.whatsapp_phone_number_id,
            business_account_id=settings.whatsapp_business_account_id,
        )

    def read(self, body: dict[str, Any]) -> ParsedBody:
        """The people's messages of a webhook body, and the business's messages that failed; the other receipts,
        errors, other fields and other numbers' values counted as skipped."""
        events: list[Event] = []
        skipped: Counter = Counter()
        for entry in body["entry"]:
            changes = object_field(entry).get("changes")
            if not isinstance(changes, list):
                skipped["malformed"] += 1
                continue
            for change in changes:
                change = object_field(change)
                value, field = object_field(change.get("value")), text_field(change.get("field"))
                if field in (MESSAGES, ECHOES) and not self._ours(value):
                    skipped["other_number"] += 1
                elif field == MESSAGES and value:
                    self._read_value(value, events, skipped)
                elif field == ECHOES and value:
                    self._read_echoes(value, events, skipped)
                else:
                    # history, account updates...: not this channel's to answer.
                    skipped[(field or "malformed")[:40]] += 1
        return ParsedBody(tuple(events), skipped, self.name)

    def _ours(self, value: dict) -> bool:
        """Whether a value is about the number answered: another number of the same account is another business's
        line (its people answered from it, its echoes its own). A value naming no number is taken as ours: Meta
        always names it, and a test or tool may not."""
        number = identifier(object_field(value.get("metadata")).get("phone_number_id"))
        return number is None or number == self._number_id

    def _read_value(self, value: dict, events: list[Event], skipped: Counter) -> None:
        for status in _items(value.get("statuses")):
            state = text_field(status.get("status")) or "unknown"
            failure = self._undelivered(status) if state == "failed" else None
            if failure is None:
                skipped[f"status_{state}"[:40]] += 1
            else:
                events.append(failure)
        for error in _items(value.get("errors")):
            skipped["error"] += 1
            logger.warning("WhatsApp reports an error in its webhook: code %s", error.get("code"))
        # A person's business-scoped id may come in `contacts` beside the number their message is from.
        contacts = _items(value.get("contacts"))
        scoped = {
            number: contact.get("user_id") for contact in contacts if (number := identifier(contact.get("wa_id")))
        }
        # And the name their profile shows, for the console.
        names = {
            number: name[:MAX_NAME_CHARS]
            for contact in contacts
            if (number := identifier(contact.get("wa_id")))
            and (name := (text_field(object_field(contact.get("profile")).get("name")) or "").strip())
        }
        for message in _items(value.get("messages")):
            event, kind = self._message(message, scoped, names)
            if event is None:
                skipped[kind] += 1
            else:
                events.append(event)

    def _undelivered(self, status: dict) -> Undelivered | None:
        """A `failed` status: a message Meta took, then could not deliver (often 131047, the window closed)."""
        person = self._person(status.get("recipient_id"), status.get("recipient_user_id"))
        mid = identifier(status.get("id"))
        if person is None or mid is None:
            return None
        error = next(iter(_items(status.get("errors"))), {})
        code = error.get("code") if isinstance(error.get("code"), int) else None
        title = (text_field(error.get("title")) or "")[:100]
        return Undelivered(
            psid=person[0],
            mid=mid,
            timestamp=_milliseconds(status.get("timestamp")),
            code=code,
            reason=PERMANENT_MEANINGS.get(code, title) if code is not None else title,
            channel=self.name,
            alias=person[1],
        )

    def _person(self, number: Any, scoped_id: Any) -> tuple[str, str | None] | None:
        """A person's key, and the other key they are known by: their number's, with their business-scoped id (a
        WhatsApp username's) as the alias the store links to it; or, when Meta withholds the number, the scoped
        id's, which the store finds the number's key for if it linked them. None if the message names no one."""
        phone, scoped = identifier(number), identifier(scoped_id)
        if phone is None:
            return (self.key(scoped), self.key(scoped)) if scoped is not None else None
        return self.key(phone), self.key(scoped) if scoped is not None else None

    def _read_echoes(self, value: dict, events: list[Event], skipped: Counter) -> None:
        """What the business's people wrote from the WhatsApp Business app (a coexistence number): like the page's
        hand-written messages on Messenger, each pauses the bot for that person and joins the history. The bot's
        own messages never come back this way."""
        for echo in _items(value.get("message_echoes")):
            person, mid = self._person(echo.get("to"), echo.get("to_user_id")), identifier(echo.get("id"))
            if person is None or mid is None:
                skipped["malformed"] += 1
                continue
            kind = text_field(echo.get("type")) or "unknown"
            text = text_field(object_field(echo.get("text")).get("body")) if kind == "text" else None
            attachments = () if kind == "text" else (Attachment(type=ATTACHMENT_TYPES.get(kind, kind[:40])),)
            timestamp = _milliseconds(echo.get("timestamp"))
            events.append(
                Echo(
                    psid=person[0],
                    mid=mid,
                    timestamp=timestamp,
                    text=text,
                    attachments=attachments,
                    channel=self.name,
                    alias=person[1],
                )
            )

    def _message(self, message: dict, scoped: dict, names: dict[str, str]) -> tuple[Message | Postback | None, str]:
        """One of `value.messages` as an event, or None and the kind it was skipped as. `scoped`, `names`: the
        people's business-scoped ids and profile names by number, as `contacts` gave them."""
        kind = text_field(message.get("type")) or "malformed"
        number = message.get("from")
        person = self._person(number, message.get("from_user_id") or scoped.get(identifier(number)))
        mid = identifier(message.get("id"))
        if person is None or mid is None:
            return None, "malformed"
        if message.get("group_id") is not None:
            return None, "group"  # a business's assistant answers people, not groups
        if kind in NOT_ANSWERED:
            return None, kind[:40]
        key, alias = person
        timestamp = _milliseconds(message.get("timestamp"))
        answer_by = timestamp + WINDOW_MS if timestamp else 0
        name = names.get(identifier(number) or "")
        if kind == WELCOME:
            welcome = Postback(key, self._get_started, "", timestamp, mid, False, self.name, alias, answer_by, name)
            return welcome, kind
        quoted = identifier(object_field(message.get("context")).get("id"))
        came_from = _came_from(object_field(message.get("referral")))

        def said(**what: Any) -> Message:
            return Message(
                psid=key,
                mid=mid,
                timestamp=timestamp,
                channel=self.name,
                came_from=came_from,
                alias=alias,
                answer_by=answer_by,
                name=name,
                **what,
            )

        if kind == "text":
            return said(text=text_field(object_field(message.get("text")).get("body")), reply_to_mid=quoted), kind
        form = _form_answer(object_field(message.get("interactive"))) if kind == "interactive" else None
        if form is not None:
            return said(text=form, reply_to_mid=quoted), kind
        if kind in CHOICES:
            chosen = _choice(message)
            if chosen is None:
                return None, "malformed"
            return said(text=chosen[0], quick_reply_payload=chosen[1]), kind
        if kind in USABLE_MEDIA:
            media = object_field(message.get(kind))
            attachment = Attachment(
                type=kind, media_id=identifier(media.get("id")), sha256=text_field(media.get("sha256"))
            )
            caption = text_field(media.get("caption")) if kind == CAPTIONED else None
            return said(text=caption, attachments=(attachment,), reply_to_mid=quoted), kind
        # Videos, documents, locations, contacts, orders, kinds not yet invented: answered honestly as what the bot
        # can't use.
        attachment = Attachment(type=ATTACHMENT_TYPES.get(kind, kind[:40]))
        return said(attachments=(attachment,), reply_to_mid=quoted), kind

    def split(self, text: str) -> list[str]:
        """Messages of at most 4,096 characters."""
        return split_text(text, WHATSAPP_MAX_CHARS)

    def send_text(self, key: str, text: str, offers: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """Send one text message, retrying passing failures; return (message id, text). May raise GraphError.
        WhatsApp has no quick replies that fill in the person's details: `offers` are left out."""
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **_addressed(self.scoped_id(key)),
            "type": "text",
            "text": {"body": self.shown(text), "preview_url": False},
        }
        answer = self._graph.post(payload, psid=key, what="message", max_retries=self._graph.max_retries)
        sent = [object_field(item).get("id") for item in _items(answer.get("messages"))]
        return [(str(sent[0] if sent else ""), text)]

    def templates(self) -> list[Template]:
        """The account's approved templates whose only parameters are numbered ones in the body (the console fills
        no header files or button links), read page by page, kept TEMPLATES_SECONDS. May raise GraphError."""
        if self._business_account_id is None:
            return []
        kept = self._templates
        if kept is not None and self._clock() - kept[0] < TEMPLATES_SECONDS:
            return kept[1]
        found: list[Template] = []
        after: str | None = None
        for _ in range(MAX_TEMPLATE_PAGES):
            params = {"limit": "100", **({"after": after} if after else {})}
            page = self._graph.get_object(f"{self._business_account_id}/message_templates", TEMPLATE_FIELDS, params)
            found += [template for item in _items(page.get("data")) if (template := _template(item))]
            paging = object_field(page.get("paging"))
            after = text_field(object_field(paging.get("cursors")).get("after")) if paging.get("next") else None
            if not after:
                break
        self._templates = (self._clock(), found)
        return found

    def send_template(self, key: str, template: Template, values: Sequence[str]) -> list[tuple[str, str]]:
        """Send an approved template, its body's parameters filled with `values`; (message id, the text as sent)."""
        body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if values:
            parameters = [{"type": "text", "text": value} for value in values]
            body["components"] = [{"type": "body", "parameters": parameters}]
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **_addressed(self.scoped_id(key)),
            "type": "template",
            "template": body,
        }
        answer = self._graph.post(payload, psid=key, what="template", max_retries=self._graph.max_retries)
        sent = [object_field(item).get("id") for item in _items(answer.get("messages"))]
        return [(str(sent[0] if sent else ""), template.filled(values))]

    def shown(self, text: str) -> str:
        """The model's Markdown in WhatsApp's own markers."""
        return formatting.whatsapp(text)

    def send_action(self, key: str, action: str, message_id: str | None = None) -> bool:
        """typing_on: the person's message marked read and the typing indicator shown, in one call (WhatsApp ends
        the indicator with the reply, or after 25 s). mark_seen and typing_off need no call of their own."""
        if action != "typing_on" or message_id is None:
            return True
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
            "typing_indicator": {"type": "text"},
        }
        return self._graph.accepted(payload, psid=key, max_retries=0)

    def media_link(self, attachment: Attachment) -> MediaLink:
        """The link Meta gives for a media id (it lasts about 5 minutes, and the download needs the token); MediaError
        if Meta no longer has the media (ids expire after 7 days) or refuses."""
        if attachment.media_id is None:
            return super().media_link(attachment)
        try:
            found = self._graph.get_object(attachment.media_id)
        except GraphError as error:
            raise MediaError(f"Meta gave no link for the {attachment.type} (code {error.code})") from None
        url = text_field(found.get("url"))
        if url is None:
            raise MediaError(f"Meta's answer about the {attachment.type} holds no link")
        return MediaLink(
            url,
            headers=self._graph.auth_headers,
            sha256=text_field(found.get("sha256")) or attachment.sha256,
            mime_type=text_field(found.get("mime_type")),
        )

    def close(self) -> None:
        if self._own_client:
            self._graph.close()


def _addressed(scoped_id: str) -> dict[str, str]:
    """Who a message goes to, as the Cloud API takes it: a phone number's `wa_id` (digits) as `to`, a
    business-scoped user id (a username's, never digits) as `recipient`."""
    return {"to": scoped_id} if scoped_id.isdigit() else {"recipient": scoped_id}


def _milliseconds(seconds: Any) -> int:
    """WhatsApp's time (seconds since 1970, as a string) in milliseconds, or 0 (unknown) if it is not one."""
    if isinstance(seconds, str) and seconds.isdigit() and int(seconds) <= MAX_TIMESTAMP_S:
        return int(seconds) * 1000
    return 0


def _items(value: Any) -> list[dict]:
    """The objects of a JSON list (anything else in it, and a missing list, left out)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _form_answer(interactive: dict) -> str | None:
    """A WhatsApp Flow's answer (`nfm_reply`) as the person's message: the fields they filled in, one a line (the
    Flow's own token left out), or the summary WhatsApp showed them when the fields cannot be read. None if it is
    not a Flow's answer, or says nothing."""
    if interactive.get("type") != "nfm_reply":
        return None
    reply = object_field(interactive.get("nfm_reply"))
    try:
        fields = json.loads(reply.get("response_json") or "")
    except (TypeError, ValueError, RecursionError):
        fields = None
    lines = [
        f"{name}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for name, value in (fields.items() if isinstance(fields, dict) else ())
        if name not in FORM_PLUMBING
    ][:MAX_FORM_FIELDS]
    shown = "\n".join(lines) or text_field(reply.get("body"))
    return FORM_ANSWER.format(fields=text_field(shown)) if shown else None


def _came_from(referral: dict) -> str | None:
    """The ad or post a person came from (`referral`), in a few words for the model: its kind, headline, text and
    link; None if the message came from none."""
    kind = text_field(referral.get("source_type")) or "ad"
    headline, body = text_field(referral.get("headline")), text_field(referral.get("body"))
    link = identifier(referral.get("source_url"))
    if not (headline or body or link):
        return None
    words = " ".join(part for part in (f'"{headline}"' if headline else "", body or "") if part)
    described = f"{kind[:20]} {words}".strip() + (f" ({link})" if link else "")
    return described[:MAX_REFERRAL_CHARS]


def _choice(message: dict) -> tuple[str, str | None] | None:
    """The title and id of the button or list row the person chose (a template's quick reply: its text and
    payload)."""
    if message.get("type") == "button":
        button = object_field(message.get("button"))
        text = text_field(button.get("text"))
        return (text, text_field(button.get("payload"))) if text else None
    interactive = object_field(message.get("interactive"))
    reply = object_field(interactive.get("button_reply")) or object_field(interactive.get("list_reply"))
    title = text_field(reply.get("title"))
    return (title, text_field(reply.get("id"))) if title else None


def _template(item: dict) -> Template | None:
    """An item of message_templates as a template the console can send, or None: not approved, or needing
    parameters other than numbered ones in its body."""
    item = object_field(item)
    name, language = text_field(item.get("name")), text_field(item.get("language"))
    if item.get("status") != "APPROVED" or not name or not language:
        return None
    components = [object_field(component) for component in _items(item.get("components"))]
    body = next((text_field(c.get("text")) or "" for c in components if c.get("type") == "BODY"), "")
    others = json.dumps([c for c in components if c.get("type") != "BODY"])
    media = any(c.get("type") == "HEADER" and c.get("format") in MEDIA_HEADERS for c in components)
    numbered = [int(number) for number in PLACEHOLDER.findall(body)]
    if media or ANY_PLACEHOLDER.search(others) or len(ANY_PLACEHOLDER.findall(body)) != len(numbered):
        return None
    return Template(name, language, body, max(numbered, default=0))
