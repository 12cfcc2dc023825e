"""What the model is sent: the system prompt, the newest history within budget, photos and quotes.

Also the token budget every part of the service shares: the estimate, how history is trimmed to
it (here and in the stores), how a prompt is fitted to the model's context window, and how a
prompt the model refused as too long is shortened.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Every chat message costs a few tokens of framing on top of its text.
MESSAGE_OVERHEAD_TOKENS = 4
# A photo costs the model 85 tokens at low detail and up to about 1,100 at high.
IMAGE_TOKENS = {"low": 85, "auto": 1105, "high": 1105}
# What the model is asked about a photo sent without a caption.
PHOTO_PROMPT = "What's in this photo?"
# Tokens a window keeps free beyond the estimate: the reply's priming and chat-template tokens.
WINDOW_MARGIN_TOKENS = 32
# The smallest reply cap a window is fitted with before the person's message is cut instead.
MIN_REPLY_TOKENS = 100
# A message halved to fit a window that no refusal named is never cut shorter than this.
MIN_CUT_CHARS = 200
# The newest exchange, cut to fit a small window, keeps at least this many tokens; with less room it is left out.
MIN_TURN_TOKENS = 40
# A section of the page's knowledge, cut to fit a small window, keeps at least this many bytes of its text.
MIN_SECTION_BYTES = 150
# What the model is told besides the owner's SYSTEM_PROMPT: that people can reach the page's people.
HANDOVER_NOTE = (
    "People can send /human to ask for a person from the page; suggest it when you cannot help. "
    "Assistant messages that start with [{marker}] were written by a person from the page, not by you; "
    "never start yours that way."
)
PAGE_MARKER = "From the page's team"
# What the model is told with the page's knowledge (KNOWLEDGE_DIR), so it answers from it and never guesses.
KNOWLEDGE_NOTE = (
    "Below is the page's own knowledge{which}. Answer questions about the page (its opening hours, prices, "
    "services, policies and the like) from it alone, in your own words. When it does not cover what the person "
    "asks, say plainly that you don't know that, never guess, and suggest /human to ask a person from the page."
)
NO_KNOWLEDGE_FOUND = "(Nothing in the page's knowledge matches this message.)"
# How a reply to the Instagram account's story reaches the model (the story itself cannot be seen).
STORY_REPLY = "[Replying to the page's Instagram story] {text}"
# How a message reaches the model when the person came from the business's ad or post (its kind, words and link).
CAME_FROM = "[Came to this chat from the business's {came_from}] {text}"
# How a comment reaches the model: its answer goes privately to the comment's author, as the page's first message.
COMMENT = (
    "[A comment under the page's post{post}. Write the private message the page sends its author about it: a short, "
    "friendly answer to them, not a public reply, in one message of at most {length}.]\n{comment}"
)
COMMENT_POST = ' "{text}"'
# What the history of the conversation it opens keeps of the comment.
COMMENTED = "[Commented on the page's post] {comment}"
QUOTE_CHARS = 300
# What is kept of a message for quoting it later: enough to show QUOTE_CHARS, and to know it went on.
REMEMBERED_CHARS = QUOTE_CHARS + 1

ChatMessage = dict[str, Any]


def estimate_tokens(text: str) -> int:
    """Return a deliberately high token estimate for a chat message of this text."""
    # One token per three UTF-8 bytes over-counts English (about four characters a token)
    # and roughly matches scripts of three-byte characters, so a budget is never undercounted
    # by much without needing a tokenizer download.
    return -(-len(text.encode("utf-8", "surrogatepass")) // 3) + MESSAGE_OVERHEAD_TOKENS


def message_tokens(message: ChatMessage) -> int:
    """Return the estimated tokens of one chat message, its photos included."""
    content = message["content"]
    if isinstance(content, str):
        return estimate_tokens(content)
    text = " ".join(part["text"] for part in content if part["type"] == "text")
    photos = [part["image_url"].get("detail", "auto") for part in content if part["type"] == "image_url"]
    return estimate_tokens(text) + sum(IMAGE_TOKENS[detail] for detail in photos)


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """Return the estimated tokens of a whole prompt."""
    return sum(message_tokens(message) for message in messages)


@dataclass(frozen=True)
class Turn:
    """One exchange: what the person said and what the bot answered."""

    user: str
    assistant: str

    def messages(self) -> list[ChatMessage]:
        """Return the turn as chat-completion messages; a side left empty (nobody answered) is left out."""
        sides = (("user", self.user), ("assistant", self.assistant))
        return [{"role": role, "content": content} for role, content in sides if content]

    def tokens(self) -> int:
        """Return the estimated tokens of both messages."""
        return estimate_tokens(self.user) + estimate_tokens(self.assistant)


def newest_turns_within(turns: Iterable[Turn], max_messages: int, max_tokens: int) -> list[Turn]:
    """Return the newest whole turns that fit both budgets, oldest first."""
    kept: list[Turn] = []
    used_messages = used_tokens = 0
    for turn in reversed(list(turns)):
        used_messages += 2
        used_tokens += turn.tokens()
        if used_messages > max_messages or used_tokens > max_tokens:
            break
        kept.append(turn)
    kept.reverse()
    return kept


def within_history(turn: Turn, max_tokens: int) -> Turn:
    """The turn as the history keeps it: cut (each side at a word, with "…") to half the history's budget at
    most, so that one very long message or answer never pushes every earlier turn out."""
    share = max_tokens // 2
    if turn.tokens() <= share:
        return turn
    user_share = max(share - estimate_tokens(turn.assistant), share // 2)
    user = _cut_to_tokens(turn.user, user_share)
    return Turn(user, _cut_to_tokens(turn.assistant, share - estimate_tokens(user)))


def _cut_to_tokens(text: str, tokens: int) -> str:
    """The text, cut at a word with "…" so that its estimate is within `tokens`."""
    if estimate_tokens(text) <= tokens:
        return text
    room = max(0, (tokens - MESSAGE_OVERHEAD_TOKENS) * 3 - len("…".encode()))
    head = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return shorten(head, len(head) - 1) if head else ""


@dataclass(frozen=True)
class Budget:
    """How much of the conversation a prompt may carry, and how photos are sent."""

    system_prompt: str
    max_messages: int
    max_tokens: int
    image_detail: str


def system_message(owner_prompt: str, channel_note: str = "") -> str:
    """The system message: the owner's SYSTEM_PROMPT, what the model must know of the page's people, and how the
    person's channel shows text (`channel_note`, if it says)."""
    message = f"{owner_prompt}\n\n{HANDOVER_NOTE.format(marker=PAGE_MARKER)}"
    return f"{message}\n\n{channel_note}" if channel_note else message


@dataclass(frozen=True)
class PageKnowledge:
    """The page's knowledge one prompt carries: its sections as the model reads them, in the order shown, and
    which it needs most, so that a prompt fitted to a small context window carries fewer of them, or a shorter one."""

    sections: tuple[str, ...]
    searched: bool
    # Indices into `sections`, the most relevant first: the last ones are the first given up.
    ranking: tuple[int, ...]

    def text(self, kept: Collection[int] | None = None) -> str:
        """The system message's part that carries it: the note, then the sections (those `kept`, if given)."""
        return self._rendered([s for n, s in enumerate(self.sections) if kept is None or n in kept])

    def within(self, max_bytes: int) -> tuple[str, str] | None:
        """The text within `max_bytes`, and what was given up (for the log; empty if nothing): the most relevant
        whole sections that fit, else the most relevant one cut at a word; None when not even that fits."""
        text = self.text()
        if len(text.encode()) <= max_bytes:
            return text, ""
        kept: list[int] = []
        for number in self.ranking:
            if len(self.text([*kept, number]).encode()) <= max_bytes:
                kept.append(number)
        if kept:
            return self.text(kept), f"{len(kept)} of {len(self.sections)} sections kept"
        if not self.ranking:
            return None
        room = max_bytes - len(self._rendered([""]).encode())
        cut = _cut_to_bytes(self.sections[self.ranking[0]], room)
        if len(cut.encode()) < MIN_SECTION_BYTES:
            return None
        return self._rendered([cut]), f"the most relevant of {len(self.sections)} sections kept, shortened"

    def _rendered(self, shown: Sequence[str]) -> str:
        which = ": the parts that match the person's message" if self.searched else ""
        return f"{KNOWLEDGE_NOTE.format(which=which)}\n\n" + ("\n\n".join(shown) or NO_KNOWLEDGE_FOUND)


class SystemMessage(dict[str, Any]):
    """The system message: to the server and in JSON a chat message like any other, but knowing which part of it is
    the page's knowledge, so that a prompt fitted to a small context window can carry less of it (see `fit`)."""

    def __init__(self, own: str, knowledge: PageKnowledge | None):
        super().__init__(role="system", content=f"{own}\n\n{knowledge.text()}" if knowledge else own)
        # The system message without the knowledge: what always goes.
        self.own = own
        self.knowledge = knowledge


def page_words(text: str) -> str:
    """The history's assistant side for what a person from the page wrote by hand."""
    return f"[{PAGE_MARKER}] {text}"


def build(
    budget: Budget,
    history: Sequence[Turn],
    said: str,
    photos: Sequence[str] = (),
    knowledge: PageKnowledge | None = None,
) -> list[ChatMessage]:
    """The messages for the model: system prompt, the newest history that fits, the new message.

    The page's knowledge, when there is some, closes the system message; it has a budget of its own
    (KNOWLEDGE_MAX_TOKENS), so it takes no room from the history (but a small context window does: see `fit`).

    Messages of one side in a row (the person wrote twice while a person from the page was
    answering) are joined, since some servers' chat templates insist that the roles alternate.
    """
    room = (
        budget.max_tokens
        - estimate_tokens(budget.system_prompt)
        - estimate_tokens(said)
        - IMAGE_TOKENS[budget.image_detail] * len(photos)
    )
    turns = newest_turns_within(history, budget.max_messages, room)
    content: str | list[ChatMessage] = said
    if photos:
        content = [{"type": "text", "text": said or PHOTO_PROMPT}] + [
            {"type": "image_url", "image_url": {"url": url, "detail": budget.image_detail}} for url in photos
        ]
    messages: list[ChatMessage] = [SystemMessage(budget.system_prompt, knowledge)]
    for message in [m for turn in turns for m in turn.messages()] + [{"role": "user", "content": content}]:
        if messages[-1]["role"] == message["role"]:
            messages[-1] = _joined(messages[-1], message)
        else:
            messages.append(message)
    return messages


def _joined(first: ChatMessage, second: ChatMessage) -> ChatMessage:
    """Two messages of one role as one; the second may carry photos."""
    content = second["content"]
    if isinstance(content, str):
        return {**second, "content": f"{first['content']}\n\n{content}"}
    return {**second, "content": [{"type": "text", "text": first["content"]}, *content]}


def with_quote(text: str, quoted: str | None) -> str:
    """The text, preceded by the message it replies to when that one is still remembered."""
    return f'[Replying to: "{shorten(quoted, QUOTE_CHARS)}"]\n{text}' if quoted else text


def history_text(said: str, photos: Sequence[str], heard: bool) -> str:
    """What the history keeps of the person's turn: markers for photos and voice, never links."""
    if photos:
        marker = "[photo]" if len(photos) == 1 else f"[{len(photos)} photos]"
        return f"{marker} {said}".strip()
    return f"[voice message] {said}" if heard else said


def shorten(text: str, limit: int) -> str:
    """The text, cut at a word with an ellipsis if it is longer than `limit`."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class Fitted:
    """A prompt fitted to a context window, with the reply cap that fits beside it."""

    messages: list[ChatMessage]
    reply_tokens: int
    # The person's text as it was sent when it had to be cut to fit; None when it was not cut.
    cut_said: str | None = None
    # What the page's knowledge gave up to fit (for the log); empty when it went whole or there was none.
    knowledge_cut: str = ""


def fit(messages: list[ChatMessage], window: int, reply_tokens: int) -> Fitted | None:
    """Fit a prompt and its reply into `window` tokens by the estimate; None if the system message cannot fit.

    The system prompt and the new message go first. The reply's reserve is at most half of what they leave
    (REPLY_MAX_TOKENS at most, MIN_REPLY_TOKENS at least), so that a small window still carries the last
    exchange. Of the rest, the newest history takes what it needs up to half when there is knowledge, the
    page's knowledge what history leaves (its most relevant sections, else the most relevant one cut), and
    older history whatever knowledge leaves. The newest exchange is cut before it is left out. Only when
    even the reply's smallest reserve does not fit is the person's new message cut (and the knowledge left out).
    """
    head, past, new = _parts(messages)
    system, knowledge = _system_parts(head)
    room = window - WINDOW_MARGIN_TOKENS
    core = prompt_tokens(system) + message_tokens(new)
    reply = min(reply_tokens, max(MIN_REPLY_TOKENS, (room - core) // 2))
    rest = room - reply - core
    if rest >= 0:
        first = _history_within(past, rest // 2 if knowledge else rest)
        system, knowledge_cut = _with_knowledge(system, knowledge, rest - prompt_tokens(first))
        history = _history_within(past, room - reply - prompt_tokens(system) - message_tokens(new))
        return Fitted(system + history + [new], reply, knowledge_cut=knowledge_cut)
    said = said_text(new)
    photo_tokens = message_tokens(new) - estimate_tokens(said)
    text_tokens = room - reply - prompt_tokens(system) - photo_tokens
    cut = _cut_to_bytes(said, (text_tokens - MESSAGE_OVERHEAD_TOKENS) * 3)
    if not cut.strip():
        return None
    dropped = "left out" if knowledge else ""
    return Fitted(system + [with_said(new, cut)], reply, cut_said=cut, knowledge_cut=dropped)


def _system_parts(head: list[ChatMessage]) -> tuple[list[ChatMessage], PageKnowledge | None]:
    """The system message without the page's knowledge, and the knowledge it carried (if it says)."""
    if head and isinstance(head[0], SystemMessage) and head[0].knowledge is not None:
        return [{"role": "system", "content": head[0].own}], head[0].knowledge
    return head, None


def _with_knowledge(
    system: list[ChatMessage], knowledge: PageKnowledge | None, tokens: int
) -> tuple[list[ChatMessage], str]:
    """The system message with as much of the knowledge as `tokens` more hold, and what was given up."""
    if knowledge is None:
        return system, ""
    own = system[0]["content"]
    # The estimate counts a message's bytes: the knowledge and its separator may take the bytes of `tokens`.
    kept = knowledge.within(tokens * 3 - len("\n\n"))
    if kept is None:
        return system, "left out"
    text, given_up = kept
    return [{"role": "system", "content": f"{own}\n\n{text}"}], given_up


def _history_within(past: list[ChatMessage], max_tokens: int) -> list[ChatMessage]:
    """The newest whole exchanges within `max_tokens`; when not even the newest fits whole, it is cut to fit."""
    kept = _newest_pairs_within(past, max_tokens)
    if kept or len(past) < 2 or max_tokens < MIN_TURN_TOKENS:
        return kept
    user, assistant = past[-2:]
    if (user["role"], assistant["role"]) != ("user", "assistant") or not all(
        isinstance(message["content"], str) for message in (user, assistant)
    ):
        return []
    turn = within_history(Turn(user["content"], assistant["content"]), max_tokens * 2)
    return [{**user, "content": turn.user}, {**assistant, "content": turn.assistant}]


def halve_said(messages: list[ChatMessage]) -> list[ChatMessage] | None:
    """The prompt with the person's new message cut to half, or None when it is short already."""
    head, _, new = _parts(messages)
    said = said_text(new)
    if len(said) <= MIN_CUT_CHARS:
        return None
    return head + [with_said(new, shorten(said, max(MIN_CUT_CHARS, len(said) // 2)))]


def said_text(message: ChatMessage) -> str:
    """The text of a user message, with or without photos."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return next((part["text"] for part in content if part["type"] == "text"), "")


def with_said(message: ChatMessage, text: str) -> ChatMessage:
    """The message with its text replaced (its photos kept)."""
    content = message["content"]
    if isinstance(content, str):
        return {**message, "content": text}
    parts = [{**part, "text": text} if part["type"] == "text" else part for part in content]
    return {**message, "content": parts}


def _parts(messages: list[ChatMessage]) -> tuple[list[ChatMessage], list[ChatMessage], ChatMessage]:
    head = [m for m in messages[:1] if m.get("role") == "system"]
    return head, messages[len(head) : -1], messages[-1]


def _newest_pairs_within(past: list[ChatMessage], max_tokens: int) -> list[ChatMessage]:
    kept = 0
    used = 0
    # Past messages come in user/assistant pairs: count back two at a time so no turn is split.
    for end in range(len(past), 1, -2):
        used += message_tokens(past[end - 2]) + message_tokens(past[end - 1])
        if used > max_tokens:
            break
        kept += 2
    return past[len(past) - kept :]


def _cut_to_bytes(text: str, max_bytes: int) -> str:
    """The text cut to at most `max_bytes` UTF-8 bytes, at a word, with an ellipsis."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    # The ellipsis takes three bytes; a character cut in two is dropped.
    head = encoded[: max(0, max_bytes - 3)].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return head + "…" if head.strip() else ""


def drop_older_half(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Keep the system message, the newest half of the past turns, and the last message."""
    head, past, _ = _parts(messages)
    # Past messages come in user/assistant pairs: keep an even count so no turn is split.
    keep = (len(past) // 2) // 2 * 2
    return head + past[len(past) - keep :] + messages[-1:]


# Room for a person's message that a context window must leave beside the system prompt.
MIN_MESSAGE_TOKENS = 50


def window_problems(window: int | None, owner_prompt: str) -> list[str]:
    """A context window (MODEL_CONTEXT_TOKENS) that cannot hold the system prompt and a short exchange: what is
    wrong, for the one message at start. The page's knowledge is not counted: it shrinks to fit (see `fit`)."""
    if window is None:
        return []
    system = estimate_tokens(system_message(owner_prompt))
    needed = system + WINDOW_MARGIN_TOKENS + MIN_REPLY_TOKENS + MIN_MESSAGE_TOKENS
    if window >= needed:
        return []
    return [
        f"MODEL_CONTEXT_TOKENS is invalid: {window} tokens cannot hold SYSTEM_PROMPT (about {system} tokens) "
        f"and a short exchange; it needs at least {needed}"
    ]
