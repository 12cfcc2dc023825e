"""Every text a person can receive from the bot, in one place, so an owner can find, change or translate them.

Texts with `{placeholders}` are filled with `str.format`; keep the placeholders when translating.
"""

from __future__ import annotations

from inboxgpt.model.errors import Failure

GREETING = (
    "Hi! I'm an assistant powered by GPT. Ask me anything and I'll do my best to help. Send /help to see what I can do."
)
HELP = (
    "I'm an AI assistant (a GPT model) answering on this page. Write to me as you would to a "
    "person: I remember our conversation for a while, so you can ask follow-up questions.{media}\n\n"
    "Commands:\n/reset: forget our conversation and start over\n/human: ask for a person from the page\n"
    "/bot: talk to me again after a person from the page has answered\n/help: show this message\n\n"
    "I can make mistakes: check anything important."
)
# The sentence HELP gains, by (photos understood, voice messages understood).
MEDIA_HELP = {
    (True, True): " You can also send photos and voice messages.",
    (True, False): " You can also send photos.",
    (False, True): " You can also send voice messages.",
    (False, False): "",
}
HUMAN_COMING = (
    "I've asked a person from the page to answer you. They'll reply here as soon as they can. "
    "(Send /bot to talk to me again.)"
)
# /human (or the model's talk_to_a_person) where no one would hear of it: no inbox, no HANDOVER_NOTIFY_URL.
NO_ONE_TO_ANSWER = (
    "Sorry, there's no one from the business available to answer here right now. I'll keep helping you as best I "
    "can: what would you like to know?"
)
BOT_BACK = "I'm back! What can I help you with?"
# The page's Messenger profile (flask --app app page-setup): the welcome screen's greeting when
# GREETING is not set (at most 160 characters), and the persistent menu's buttons (at most 30).
PAGE_GREETING = "Hi {{user_first_name}}! I'm this page's assistant. Ask me anything, or tap Talk to a person."
MENU_START_OVER = "Start over"
MENU_HUMAN = "Talk to a person"
RESET_DONE = "Done: I've forgotten our conversation. What would you like to talk about?"
STICKER_THANKS = "👍"
EMPTY_REPLY = "Sorry, I don't have an answer to that. Could you put it another way?"
NOT_ALLOWED = "Sorry, this bot is being tested and isn't open to everyone yet."
TRUNCATED = "Your message was long, so I've only read its first {limit:,} characters."
CUT_OFF = "Sorry, my answer was cut off there. Ask me to go on if you'd like the rest."
CUT_TO_FIT = "Your message was too long for me to read whole, so I've answered its beginning."
HEARD = '🎤 I heard: "{transcript}"\n\n{reply}'
VOICE_FAILED = "Sorry, I couldn't listen to that voice message. Could you type it instead?"
PHOTO_FAILED = "Sorry, I couldn't open that photo. Could you send it again?"
VOICE_EMPTY = "I couldn't make out any words in that voice message. Could you try again, or type it?"

# What the bot says to attachments it cannot use, by attachment type; CANNOT_OPEN for the rest.
CANNOT_USE = {
    "image": "I can't see photos here. Could you describe it in words?",
    "audio": "I can't listen to voice messages here. Could you type it?",
    "video": "I can't watch videos yet. Could you tell me what's in it?",
    "file": "I can't open files yet. Could you paste the part you'd like me to read?",
    "location": "Thanks! I can't read locations yet, but you can type the place you mean.",
    # Instagram
    "story_mention": "Thanks for mentioning us in your story! I can't see stories, but ask me anything here.",
    "ephemeral": "I can't open disappearing photos or videos. Could you send it as a regular message, or describe it?",
    # WhatsApp
    "contacts": "Thanks! I can't read shared contacts yet. Could you type what you'd like me to know?",
    "order": "Thanks for your order! I can't read orders here. Could you tell me what you'd like to know about it?",
    # A kind of message WhatsApp does not pass on to businesses (a poll, a view-once photo...).
    "unsupported": "Sorry, that kind of message doesn't reach me here. Could you tell me in words?",
}
CANNOT_OPEN = "I can't open shared links or posts yet. Could you paste the text, or tell me about it?"

# Limits (limits.py): sent once, when a limit is first passed.
TOO_FAST = "You're sending messages faster than I can keep up. Please wait a minute, then try again."
DAILY_LIMIT = "You've reached today's limit of messages. Let's talk again tomorrow!"
BACK_TOMORROW = "I've answered all the messages I can for today. Please come back tomorrow!"
# MODERATION: a person's message flagged (no model call), and an answer flagged (withheld).
MODERATED = "Sorry, I can't help with that. If you need a person from the page, send /human."
ANSWER_WITHHELD = "Sorry, I can't answer that one. Could you ask me another way, or send /human for a person?"
# Money caps (SPEND_*): sent once a period, when a cap is first met.
SPENT_TODAY = "We've talked a lot today! Let's continue tomorrow. (Send /human to reach a person from the page.)"
BACK_NEXT_MONTH = "I can't answer more messages this month. Please write again next month, or send /human."

# When the model gives no answer, by why.
APOLOGY_TRY_LATER = "Sorry, I'm having trouble answering right now. Please try again in a minute."
APOLOGY_UNAVAILABLE = "Sorry, I can't answer messages right now. Please try again later."
APOLOGIES = {
    Failure.TIMEOUT: APOLOGY_TRY_LATER,
    Failure.UNREACHABLE: APOLOGY_TRY_LATER,
    Failure.RATE_LIMITED: APOLOGY_TRY_LATER,
    Failure.SERVER: APOLOGY_TRY_LATER,
    Failure.QUOTA: APOLOGY_UNAVAILABLE,
    Failure.AUTH: APOLOGY_UNAVAILABLE,
    Failure.FORBIDDEN: APOLOGY_UNAVAILABLE,
    Failure.NOT_FOUND: APOLOGY_UNAVAILABLE,
    Failure.TOO_LONG: "Sorry, that's too long for me to read. Could you send something shorter? "
    "(Send /reset to start a fresh conversation.)",
    Failure.REJECTED: "Sorry, I couldn't answer that one. Could you put it another way?",
}


def cannot_use(attachment_type: str) -> str:
    """An honest answer to an attachment the bot cannot use."""
    return CANNOT_USE.get(attachment_type, CANNOT_OPEN)


# The page Meta's data deletion callback points a person to (web/data_deletion.py): Jinja, which escapes what it fills.
DATA_DELETION_DONE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your data was deleted</title></head>
<body>
<h1>Your data was deleted</h1>
<p>On {{ when }}, at your request through Facebook, this assistant erased everything it kept about you: your
conversations on Messenger, Instagram and WhatsApp and their history, any contact details you left, and its records
of your messages and of its own answers to you.</p>
<p>Confirmation code: <code>{{ code }}</code></p>
</body></html>
"""
DATA_DELETION_UNKNOWN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unknown confirmation code</title></head>
<body><h1>Unknown confirmation code</h1><p>No deletion request has this confirmation code.</p></body></html>
"""
DATA_DELETION_UNAVAILABLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Try again shortly</title></head>
<body><h1>Try again shortly</h1><p>This page cannot be read for a moment. Please try again shortly.</p></body></html>
"""
