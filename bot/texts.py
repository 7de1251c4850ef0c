"""Everything Parley says in the chat that is not the model's own words, in one place."""

from __future__ import annotations

import time

TELEGRAM_DOWNLOAD_LIMIT_MB = 20

START = (
    "Hi, I'm Parley: send me a voice message (or type) and I'll answer out loud, remembering our "
    "conversation. Type /help to see what else I can do."
)

HELP = (
    "Send a voice message or text and I'll reply with a voice message and its transcript.\n\n"
    "/voice – choose the voice I speak with\n"
    "/reset – start a fresh conversation (I stop using what we said before)\n"
    "/forget – delete everything I have stored about you\n"
    "/export – get everything I have stored about you, as a file\n"
    "/help – this message"
)

COMMANDS: list[tuple[str, str]] = [
    ("start", "What Parley does"),
    ("help", "How to use Parley"),
    ("voice", "Choose the voice Parley speaks with"),
    ("reset", "Start a fresh conversation"),
    ("forget", "Delete everything stored about you"),
    ("export", "Get everything stored about you as a file"),
]

RESET_DONE = "Fresh start: I won't use anything we said before. What's on your mind?"
RESET_NOTHING = "We're already at a fresh start. Send me a voice message!"

FORGET_CONFIRM = (
    "This deletes everything I have stored about you: our conversations and your settings. "
    "It can't be undone. Delete it all?"
)
FORGET_YES = "Delete everything"
FORGET_NO = "Cancel"
FORGET_CANCELLED = "Cancelled: nothing was deleted."


def forget_done(turns: int) -> str:
    noun = "message" if turns == 1 else "messages"
    return f"Done: I deleted {turns} stored {noun} and your settings. I no longer know anything about you."


def voice_list(current: str, voices: tuple[str, ...]) -> str:
    return (
        f"I'm speaking as {current}. Voices you can choose: {', '.join(voices)}.\n"
        "Send /voice NAME (for example /voice coral) or tap one below."
    )


def voice_unknown(name: str, voices: tuple[str, ...]) -> str:
    return f"I don't have a voice called “{name[:40]}”. Choose one of: {', '.join(voices)}."


def voice_set(name: str) -> str:
    return f"Done: from now on I'll speak as {name}."


UNSUPPORTED = "I understand voice messages and text. Send me a voice note, or type a message. /help has more."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

TOO_LARGE = (
    f"That voice message is larger than {TELEGRAM_DOWNLOAD_LIMIT_MB} MB, the most a bot can download "
    "from Telegram. Please send a shorter one."
)
DOWNLOAD_FAILED = "I couldn't download that voice message from Telegram. Please send it again."

CANNED: dict[str, str] = {"start": START, "help": HELP, "unknown_command": UNKNOWN_COMMAND, "unsupported": UNSUPPORTED}

RETRY = "Try again"
RETRYING = "Trying again…"
RETRY_GONE = "That message was already answered or can no longer be retried."
GAVE_UP = "Sorry, I couldn't process this message, even after several tries. Please send it again."
BUSY = "I'm very busy right now. Please try again in a minute."


def still_working(seconds: float) -> str:
    return f"Still working on your reply… ({seconds:.0f} s so far). It's coming."


REFUSED_SHORT = "This bot is private."


def refused(user_id: int) -> str:
    return (
        "Sorry, this bot is private: access is restricted to the people its operator has added. "
        f"Your user id is {user_id}. Send it to the operator if you should have access."
    )


def slow_down(seconds: int) -> str:
    return f"Slow down a little: you've sent a lot of messages. Try again in {seconds} s."


ADMIN_ONLY = "That command is for the bot's admins."
ALLOW_USAGE = "Usage: /allow ID — a user id, an @username, or a group chat id (negative)."
DENY_USAGE = "Usage: /deny ID — a user id, an @username, or a group chat id (negative)."


def access_changed(subject: str, allowed: bool) -> str:
    return f"Done: {subject} is now {'allowed' if allowed else 'denied'}. No restart needed."


EXPORT_CAPTION = "Everything I have stored about you, as JSON."

ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("allow", "Allow a user id, @username or group"),
    ("deny", "Deny a user id, @username or group"),
    ("users", "Who is allowed, last seen, usage"),
]


def users_report(allowed, admins: frozenset[int], overrides: dict[str, bool], people: list) -> str:
    """/users: who may use the bot (environment, then admins' changes) and who has, with usage."""
    base = "everyone (*)" if allowed.everyone else (", ".join(sorted(allowed.subjects)) or "nobody but admins")
    allowed_now = sorted(k for k, v in overrides.items() if v)
    denied_now = sorted(k for k, v in overrides.items() if not v)
    lines = [
        f"Admins: {', '.join(str(a) for a in sorted(admins)) or 'none'}",
        f"Allowed by PARLEY_ALLOWED: {base}",
        f"Allowed with /allow: {', '.join(allowed_now) or 'none'}",
        f"Denied with /deny: {', '.join(denied_now) or 'none'}",
        "",
        "Seen:" if people else "Nobody has talked to me yet.",
    ]
    for person in people:
        name = f"@{person.username}" if person.username else (person.first_name or "?")
        seen = time.strftime("%Y-%m-%d %H:%M", time.gmtime(person.last_seen_at)) if person.last_seen_at else "never"
        lines.append(f"{person.user_id} {name}: last seen {seen} UTC, {person.turns} turns, {person.tokens} tokens")
    return "\n".join(lines)
