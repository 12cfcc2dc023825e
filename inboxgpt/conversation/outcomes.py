"""How the assistant did, from the transcripts (`flask --app app report`): conversations, resolved by the
assistant, handed over, reopened, and the questions its knowledge did not cover. docs/outcomes.md defines each.

A pure computation over transcript entries: the same entries always give the same figures."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from inboxgpt.config import Settings
from inboxgpt.conversation.routing import plain_words as folded
from inboxgpt.conversation.transcript import Entry, Kind

HOUR = 3600.0
# An answer saying so is one the knowledge did not cover (the prompt asks the model to say it plainly).
NOT_KNOWN = re.compile(
    r"\b(?:don'?t|do not|doesn'?t|does not) (?:know|have (?:any |that |this )?(?:information|details))"
    r"|\bno information\b|\bnot sure\b|\bcan'?t find\b|\bcannot find\b|\bnot (?:covered|mentioned)\b",
    re.IGNORECASE,
)
# Messages that are only greetings, thanks or acknowledgements: a conversation of nothing else resolves nothing.
GREETINGS = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "hiya",
        "yo",
        "hola",
        "bonjour",
        "thanks",
        "thank",
        "thx",
        "ty",
        "you",
        "ok",
        "okay",
        "cool",
        "great",
        "bye",
        "goodbye",
        "morning",
        "good",
        "evening",
        "afternoon",
        "cheers",
        "👍",
        "🙏",
        "❤️",
        "🙂",
        "😊",
        "there",
        "all",
        "much",
    ]
)
STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "you",
        "your",
        "yours",
        "are",
        "was",
        "were",
        "for",
        "with",
        "can",
        "could",
        "would",
        "will",
        "what",
        "when",
        "where",
        "which",
        "who",
        "how",
        "does",
        "did",
        "have",
        "has",
        "had",
        "any",
        "there",
        "this",
        "that",
        "these",
        "those",
        "our",
        "ours",
        "from",
        "about",
        "into",
        "just",
        "like",
        "want",
        "need",
        "please",
        "tell",
        "know",
        "get",
        "got",
        "is",
        "it",
        "its",
        "it's",
        "i'm",
        "im",
        "me",
        "my",
        "mine",
        "a",
        "an",
        "of",
        "to",
        "in",
        "on",
        "at",
        "do",
        "be",
        "or",
        "if",
        "so",
        "we",
        "us",
        "they",
        "them",
    ]
)
WORD = re.compile(r"[^\W\d_][\w'-]*|[^\w\s]", re.UNICODE)
# Handover entries (transcript.py) that mean the conversation went to a person.
HANDED_OVER = ("Needs a person", "Took over")
STAFF_RESOLVED = "Resolved"
# Questions listed under "not covered", at most.
NOT_COVERED_GROUPS = 20


@dataclass(frozen=True)
class OutcomeSettings:
    """What the report needs of the settings."""

    gap_hours: float
    resolved_after_hours: float

    @classmethod
    def from_settings(cls, settings: Settings) -> OutcomeSettings:
        return cls(settings.conversation_gap_hours, settings.resolved_after_hours)


@dataclass(frozen=True)
class NotCovered:
    """Answers that said the knowledge did not cover the question, grouped by the question's words."""

    words: str
    count: int
    example: str


@dataclass(frozen=True)
class Outcomes:
    """The figures of one period."""

    days: float
    conversations: int = 0
    resolved: int = 0
    handed_over: int = 0
    reopened: int = 0
    greetings_only: int = 0
    open: int = 0  # answered, but RESOLVED_AFTER_HOURS have not passed yet
    not_covered: tuple[NotCovered, ...] = field(default_factory=tuple)

    @property
    def resolution_rate(self) -> float:
        """Resolved by the assistant, of the conversations that are more than greetings."""
        counted = self.conversations - self.greetings_only
        return self.resolved / counted if counted else 0.0


def conversations(entries: Sequence[Entry], gap_hours: float) -> list[list[Entry]]:
    """A person's entries cut into conversations: a message of theirs after more than `gap_hours` of their silence
    starts a new one; everything else belongs to the conversation under way (entries before their first message
    to the first)."""
    cut: list[list[Entry]] = []
    last_said: float | None = None
    for entry in sorted(entries, key=lambda entry: entry.at):
        if entry.kind is Kind.PERSON:
            if not cut or (last_said is not None and entry.at - last_said > gap_hours * HOUR):
                cut.append([])
            last_said = entry.at
        if not cut:
            cut.append([])
        cut[-1].append(entry)
    return cut


def outcomes(people: Iterable[Sequence[Entry]], now: float, days: float, settings: OutcomeSettings) -> Outcomes:
    """The figures of the conversations started in the last `days` before `now`, from each person's entries."""
    return outcomes_by_day(people, now, days, settings, lambda at: "")[0]


# The figures of `outcomes`, and each figure by the day its conversation started.
ByDay = tuple[Outcomes, dict[str, Counter[str]]]


def outcomes_by_day(
    people: Iterable[Sequence[Entry]],
    now: float,
    days: float,
    settings: OutcomeSettings,
    day_of: Callable[[float], str],
) -> ByDay:
    """The figures of `outcomes`, and each figure by the day its conversation started (named by `day_of`), in one
    pass over the entries."""
    since = now - days * 86400
    counts: Counter[str] = Counter()
    daily: dict[str, Counter[str]] = {}
    missing: dict[str, list[str]] = {}
    for entries in people:
        talks = conversations(entries, settings.gap_hours)
        for number, talk in enumerate(talks):
            said = [entry for entry in talk if entry.kind is Kind.PERSON]
            if not said or said[0].at < since:
                continue
            following = talks[number + 1] if number + 1 < len(talks) else []
            next_said = next((entry.at for entry in following if entry.kind is Kind.PERSON), None)
            counted = _outcome(talk, next_said, now, settings)
            counts.update(counted)
            daily.setdefault(day_of(said[0].at), Counter()).update(counted)
            for question, answer in _exchanges(talk):
                if NOT_KNOWN.search(answer):
                    missing.setdefault(question_words(question), []).append(question)
    groups = sorted(missing.items(), key=lambda item: (-len(item[1]), item[0]))[:NOT_COVERED_GROUPS]
    figures = Outcomes(
        days=days,
        conversations=counts["conversation"],
        resolved=counts["resolved"],
        handed_over=counts["handed_over"],
        reopened=counts["reopened"],
        greetings_only=counts["greetings_only"],
        open=counts["open"],
        not_covered=tuple(NotCovered(words, len(asked), asked[0]) for words, asked in groups),
    )
    return figures, daily


def _outcome(talk: list[Entry], next_said: float | None, now: float, settings: OutcomeSettings) -> list[str]:
    """What one conversation counts as: always "conversation", and any of the others."""
    counted = ["conversation"]
    said = [entry for entry in talk if entry.kind is Kind.PERSON]
    handed_over = any(
        entry.kind is Kind.STAFF or (entry.kind is Kind.HANDOVER and entry.text.startswith(HANDED_OVER))
        for entry in talk
    )
    if handed_over:
        counted.append("handed_over")
    if _reopened(talk, settings.resolved_after_hours):
        counted.append("reopened")
    if all(_greeting(entry.text) for entry in said):
        counted.append("greetings_only")
        return counted
    answers = [entry for entry in talk if entry.kind is Kind.ASSISTANT and entry.state == "sent"]
    if handed_over or not answers or answers[-1].at < said[-1].at:
        return counted  # a person's part, or their last message left unanswered
    quiet_until = next_said if next_said is not None else now
    counted.append("resolved" if quiet_until - answers[-1].at >= settings.resolved_after_hours * HOUR else "open")
    return counted


def _reopened(talk: list[Entry], resolved_after_hours: float) -> bool:
    """Whether the person wrote again after the conversation was resolved within it: by the staff (the console's
    Resolve), or by the assistant's answer and RESOLVED_AFTER_HOURS of silence."""
    resolved_at: float | None = None
    for entry in talk:
        if entry.kind is Kind.HANDOVER and entry.text == STAFF_RESOLVED:
            resolved_at = entry.at
        elif entry.kind is Kind.ASSISTANT and entry.state == "sent":
            resolved_at = entry.at + resolved_after_hours * HOUR
        elif entry.kind is Kind.PERSON:
            if resolved_at is not None and entry.at >= resolved_at:
                return True
            resolved_at = None
    return False


def _exchanges(talk: list[Entry]) -> list[tuple[str, str]]:
    """Each assistant answer with the person's messages it answered."""
    pairs: list[tuple[str, str]] = []
    asked: list[str] = []
    for entry in talk:
        if entry.kind is Kind.PERSON:
            asked.append(entry.text)
        elif entry.kind is Kind.ASSISTANT and entry.state == "sent" and asked:
            pairs.append((" ".join(asked), entry.text))
            asked = []
    return pairs


def _greeting(text: str) -> bool:
    words = WORD.findall(folded(text))
    return all(word in GREETINGS or not word.isalnum() for word in words)


def question_words(question: str) -> str:
    """What groups a question with others: its words that carry meaning, folded and sorted."""
    words = {word for word in WORD.findall(folded(question)) if len(word) > 2 and word not in STOP_WORDS}
    return " ".join(sorted(words)) or folded(question).strip()
