"""Everything Parley says in the chat that is not the model's own words, in one place."""

from __future__ import annotations

import time

from parley.errors import ParleyError, VoiceTooLong
from parley.spend import BudgetExceeded

TELEGRAM_DOWNLOAD_LIMIT_MB = 20

START = (
    "Hi, I'm Parley: send me a voice message (or type) and I'll answer out loud, remembering our "
    "conversation. Type /help to see what else I can do."
)

HELP_INTRO = "Send a voice message or text and I'll reply with a voice message and its transcript."

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


UNSUPPORTED = (
    "I understand voice messages, audio files, video notes and text. Send me a voice note, or type a "
    "message. /help has more."
)
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

TOO_LARGE = (
    f"That voice message is larger than {TELEGRAM_DOWNLOAD_LIMIT_MB} MB, the most a bot can download "
    "from Telegram. Please send a shorter one."
)
DOWNLOAD_FAILED = "I couldn't download that voice message from Telegram. Please send it again."

CANNED: dict[str, str] = {
    "start": START,
    "unknown_command": UNKNOWN_COMMAND,
    "unsupported": UNSUPPORTED,
    "private_only": "Let's do that in our private chat: open a chat with me and send the command there.",
}

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


# --- groups ------------------------------------------------------------------------------------------

PRIVACY_MODE = (
    "Note: I can only see commands, mentions of me and replies to my messages here, so a summary covers "
    "just those. To let me read the whole group, turn privacy mode off (BotFather → /mybots → your bot → "
    "Bot Settings → Group Privacy → Turn off, then remove and re-add me), or make me a group admin."
)
SUMMARY_USAGE = (
    "Usage: /summary (since my last summary, or the last 24 h), /summary 3h, /summary 90m, /summary 2d, "
    "/summary 200 (the last 200 messages) or /summary today."
)
NOTHING_TO_SUMMARIZE = "There's nothing new to summarize in that span."


def reading(count: int, progress: tuple[int, int] | None) -> str:
    noun = "message" if count == 1 else "messages"
    return f"Reading {count:,} {noun}…" + (f" {progress[0]}/{progress[1]}" if progress else "")


def summary_limited(seconds: int) -> str:
    return f"That's enough summaries for now in this chat. Try again in {seconds} s."


DIGEST_ADMINS_ONLY = "Only the group's admins can schedule a daily digest."
DIGEST_USAGE = "Usage: /digest HH:MM [timezone], e.g. /digest 18:00 or /digest 08:30 Europe/Berlin; /digest off."
DIGEST_OFF = "Daily digest turned off."


def digest_set(at: str, timezone: str) -> str:
    return f"Done: every day at {at} ({timezone}) I'll post a spoken digest of the day's talk."


# --- spend control: /usage, /stats, /model, budgets -------------------------------------------------

NEW_CONVERSATION = "(It's been a while, so this is a fresh conversation.)"
STATS_CHART_CAPTION = "Cost per day, last 30 days."


def money(usd: float) -> str:
    """Cents matter at the top, fractions of a cent at the bottom: $12.34, $0.0123."""
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"


def _when(moment) -> str:
    return f"{moment:%d %b %H:%M} {moment.tzname()}"


def voice_too_long(limit: float) -> str:
    minutes, seconds = divmod(int(limit), 60)
    span = f"{minutes} min {seconds} s" if minutes and seconds else (f"{minutes} min" if minutes else f"{seconds} s")
    return f"That voice message is too long: I take voice messages of up to {span}. Please send a shorter one."


def over_budget(allowance, estimate: float) -> str:
    """A plain refusal: which budget, what is left, when it starts over. Nothing was sent to the model."""
    left, resets = money(allowance.left), _when(allowance.resets_at)
    if allowance.scope == "global":
        return (
            f"Sorry, this bot has used up its monthly budget ({money(allowance.limit)}; {left} left, less than "
            f"this message would cost, about {money(estimate)}). It starts over on {resets}."
        )
    return (
        f"Sorry, you've reached your {allowance.scope} budget of {money(allowance.limit)}: {left} left, less "
        f"than this message would cost (about {money(estimate)}). It starts over on {resets}."
    )


def _totals_line(label: str, totals) -> str:
    calls = sum(t.calls for t in totals)
    if not calls:
        return f"{label}: nothing yet"
    tokens, audio = sum(t.tokens for t in totals), sum(t.audio_tokens for t in totals)
    cost = sum(t.cost_usd for t in totals)
    noun = "call" if calls == 1 else "calls"
    return f"{label}: {tokens:,} tokens ({audio:,} audio), {money(cost)} in {calls:,} {noun}"


def usage_report(periods: list[tuple[str, list]], by_model: list, allowances: list, zone: str) -> str:
    """/usage: the user's tokens and cost today, this month, all time, per model, and budgets left."""
    lines = [f"Your usage (days and months in {zone}):"]
    lines += [_totals_line(label, totals) for label, totals in periods]
    if by_model:
        lines += ["", "By model, all time:"]
        lines += [_totals_line(f"• {t.model}", [t]) for t in by_model]
    if allowances:
        lines += ["", "Your budgets:"]
        for a in allowances:
            name = "the bot's monthly budget (everyone)" if a.scope == "global" else f"{a.scope} budget"
            lines.append(f"• {name}: {money(a.limit)}, {money(a.left)} left, starts over {_when(a.resets_at)}")
    return "\n".join(lines)


def stats_report(periods: list[tuple[str, list]], top: list, days: list, prices_taken: str, zone: str) -> str:
    """/stats: totals, top users this month, cost per day for the last 30 days."""
    lines = [f"Spend (days and months in {zone}):"]
    lines += [_totals_line(label, totals) for label, totals in periods]
    lines += ["", "Top users this month:" if top else "Nobody has spent anything this month."]
    for rank, person in enumerate(top, 1):
        who = "a forgotten user" if person.user_id is None or person.user_id < 0 else f"{person.user_id}"
        if person.name and who != "a forgotten user":
            who = f"{person.name} ({person.user_id})"
        noun = "call" if person.calls == 1 else "calls"
        lines.append(f"{rank}. {who}: {money(person.cost_usd)}, {person.calls:,} {noun}")
    spent_days = [(day, cost) for day, cost in days if cost > 0]
    lines += ["", f"Last 30 days: {money(sum(c for _, c in days))}" + (", by day:" if spent_days else "")]
    lines += [f"{day:%a %d %b}: {money(cost)}" for day, cost in spent_days]
    lines += ["", f"Prices as of {prices_taken}."]
    return "\n".join(lines)


def model_list(current: str, models: tuple[str, ...]) -> str:
    return (
        f"I'm answering with {current}. Models you can choose: {', '.join(models)}.\n"
        "Send /model NAME or tap one below. The mini model is cheaper; the full one sounds and reasons better."
    )


def model_unknown(name: str, models: tuple[str, ...]) -> str:
    return f"I can't use a model called “{name[:60]}” here. Choose one of: {', '.join(models)}."


def model_set(name: str) -> str:
    return f"Done: from now on I'll answer with {name}."


# --- voice tools -------------------------------------------------------------------------------------

NEEDS_RECORDING = (
    "Reply to a voice message or an audio file with /{command}, or send the audio with /{command} as its caption."
)
NOTHING_SAID = "I couldn't make out any words in that recording."
TRANSCRIPT_ATTACHED = "The transcript is long, so here it is as a file."
SPEAK_USAGE = "Usage: /speak TEXT, or reply with /speak to a message or to a .txt, .md or PDF document."
DOCUMENT_UNREADABLE = "I can read aloud text messages and .txt, .md or PDF documents, but not that file."
DOCUMENT_TOO_COMPLEX = (
    "That document is too complex for me to read in reasonable time. Please send its text, or a simpler file."
)
DOCUMENT_TOO_LARGE = "That document is too large for me to read aloud (the limit is 1 MB)."


def working(doing: str, progress: tuple[int, int] | None) -> str:
    return f"{doing}…" + (f" {progress[0]}/{progress[1]}" if progress else "")


def tone_report(report) -> str:  # type: ignore[no-untyped-def]
    """A compact, readable rendering of a parley.tools.ToneReport."""
    lines = [f"Overall: {report.sentiment} ({report.confidence:.0%} confident)"]
    if report.emotions:
        lines.append("Emotions: " + ", ".join(report.emotions))
    lines += [f"“{quote}”" for quote in report.quotes]
    if report.summary:
        lines += ["", report.summary]
    return "\n".join(lines)


def spoken_summary(chars: int) -> str:
    return f"A spoken summary of the text ({chars:,} characters is too long to read aloud in full)."


def mode_usage(current: str) -> str:
    return (
        f"I'm replying with {current}. Choose: /mode voice (a voice message with its transcript), "
        "/mode text (text only) or /mode both (a voice message and the text)."
    )


def mode_set(mode: str) -> str:
    return {
        "voice": "Done: I'll reply with voice messages (with the transcript as caption).",
        "text": "Done: I'll reply with text only.",
        "both": "Done: I'll reply with a voice message and the text.",
    }[mode]


def explain(exc: ParleyError) -> str:
    """The sentence for any failure the user may see: refusals name their limit, the rest say their piece."""
    if isinstance(exc, BudgetExceeded):
        return over_budget(exc.allowance, exc.estimate)
    if isinstance(exc, VoiceTooLong):
        return voice_too_long(exc.limit)
    return exc.user_message
