"""The judge model (JUDGE_MODEL, else OPENAI_MODEL): whether an answer's claims are grounded in the knowledge it
was given, and the customer of a simulation. Whatever it answers, nonsense included, becomes a verdict or a
message: a judge that cannot be read fails the case, saying so, and never stops the run."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from inboxgpt.config import Settings
from inboxgpt.model.errors import ModelError
from inboxgpt.model.gpt import ChatModel, ModelSettings
from inboxgpt.model.prompt import ChatMessage

GROUNDED_PROMPT = (
    "You check one answer a business's assistant gave a customer against the business's knowledge the assistant "
    "was given. A claim is any statement of fact about the business (hours, prices, products, policies, what was "
    "done). Greetings, offers to help, questions back, and saying it does not know are not claims. Reply with one "
    'JSON object and nothing else: {"grounded": true or false, "unsupported": ["each claim the knowledge does not '
    'support"]}.'
)
CUSTOMER_PROMPT = (
    "You play a customer writing to a business's assistant on {channel}, to test it. You are {persona}. Your goal: "
    "{goal}. Write only your next message to the business, as this customer would, short. Once the goal is met, "
    "reply with exactly GOAL MET; if it clearly cannot be met, reply with exactly GIVE UP."
)
OPENING = "(The chat is open. Write your first message.)"
GOAL_MET = "GOAL MET"
GIVE_UP = "GIVE UP"
NO_KNOWLEDGE = "(The assistant was given no knowledge for this answer.)"
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
# A judge's verdict or customer's message is short; a judge rambling on is cut off here.
JUDGE_TOKENS = 400


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is grounded, and why not: the claims the knowledge does not support, or that the judge
    could not be read (`grounded` None)."""

    grounded: bool | None
    why: str = ""


@dataclass(frozen=True)
class CustomerSays:
    """The simulated customer's next message, or that they are done (the goal met, or given up)."""

    text: str = ""
    goal_met: bool = False
    gave_up: bool = False


class Judge:
    """The judge model's two roles."""

    def __init__(self, settings: Settings):
        model = ModelSettings.from_settings(settings)
        self._model = ChatModel(
            replace(model, model=settings.judge_model or settings.openai_model, reply_tokens=JUDGE_TOKENS)
        )

    def grounded(self, question: str, answer: str, knowledge: tuple[str, ...]) -> Verdict:
        """Whether each claim of `answer` is supported by `knowledge` (the sections the answer was given)."""
        given = "\n\n".join(knowledge) or NO_KNOWLEDGE
        asked = f"Knowledge:\n{given}\n\nCustomer:\n{question}\n\nAnswer:\n{answer}"
        try:
            said = self._ask([{"role": "system", "content": GROUNDED_PROMPT}, {"role": "user", "content": asked}])
        except ModelError as error:
            return Verdict(None, f"the judge failed: {error.failure.value}")
        return read_verdict(said)

    def customer(self, persona: str, goal: str, channel: str, turns: list[tuple[str, str]]) -> CustomerSays:
        """The customer's next message after `turns` (what they said, what they were answered)."""
        system = CUSTOMER_PROMPT.format(persona=persona, goal=goal, channel=channel.capitalize())
        # The customer is the judge's "assistant" role: what the business answered reaches it as the "user".
        messages: list[ChatMessage] = [{"role": "system", "content": system}, {"role": "user", "content": OPENING}]
        for said, answered in turns:
            messages += [{"role": "assistant", "content": said}, {"role": "user", "content": answered or "(no answer)"}]
        try:
            text = self._ask(messages).strip()
        except ModelError as error:
            return CustomerSays(gave_up=True, text=f"the judge failed: {error.failure.value}")
        if not text:
            return CustomerSays(gave_up=True, text="the judge wrote nothing")
        if text.upper().rstrip(".!") == GOAL_MET:
            return CustomerSays(goal_met=True)
        if text.upper().rstrip(".!") == GIVE_UP:
            return CustomerSays(gave_up=True)
        return CustomerSays(text)

    def _ask(self, messages: list[ChatMessage]) -> str:
        return self._model.complete(messages).text

    def close(self) -> None:
        self._model.close()


def read_verdict(said: str) -> Verdict:
    """The judge's JSON verdict, found in whatever it wrote around it."""
    found = JSON_OBJECT.search(said)
    try:
        verdict = json.loads(found.group(0)) if found else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("grounded"), bool):
        return Verdict(None, "the judge's verdict could not be read")
    if verdict["grounded"]:
        return Verdict(True)
    unsupported = verdict.get("unsupported")
    claims = [str(claim) for claim in unsupported if str(claim).strip()] if isinstance(unsupported, list) else []
    return Verdict(False, "not in the knowledge: " + "; ".join(claims) if claims else "not grounded in the knowledge")
