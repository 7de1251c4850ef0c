"""Everything Parley says in the chat that is not the model's own words, in one place, in the reader's language.

Every sentence is English source text for the message catalogue (`parley/locales`): `_()` translates it when
the text is made, in the language of the update or job being handled (see `parley.i18n`). The fixed texts
below are read as attributes (`texts.START`) and translated on each read, so a call site gets the current
language without a change; a new fixed text goes into `_FIXED` (never a plain string constant, which would
stay English), and `./scripts/messages` puts it into every catalogue for translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from html import escape
from typing import Any

from parley.errors import ParleyError, VoiceTooLong
from parley.i18n import formats
from parley.i18n.catalog import N_, _, ngettext
from parley.spend import BudgetExceeded
from parley.tools import ToneReport

TELEGRAM_DOWNLOAD_LIMIT_MB = 20
"""The TOO_LARGE text says this number in words of its own."""

_FIXED: dict[str, str] = {
    "DESCRIPTION": N_(
        "Parley is a voice assistant: send a voice message (or type) and it answers out loud, remembering your "
        "conversation. It can also transcribe recordings, read texts aloud, and summarize a group's talk."
    ),
    "SHORT_DESCRIPTION": N_("A voice assistant: talk to it with voice messages, it answers out loud."),
    "START": N_(
        "Hi, I'm Parley: send me a voice message (or type) and I'll answer out loud, remembering our "
        "conversation. Type /help to see what else I can do."
    ),
    "HELP_INTRO": N_("Send a voice message or text and I'll reply with a voice message and its transcript."),
    "RESET_DONE": N_("Fresh start: I won't use anything we said before. What's on your mind?"),
    "RESET_NOTHING": N_("We're already at a fresh start. Send me a voice message!"),
    "FORGET_CONFIRM": N_(
        "This deletes everything I have stored about you: our conversations and your settings. "
        "It can't be undone. Delete it all?"
    ),
    "FORGET_YES": N_("Delete everything"),
    "FORGET_NO": N_("Cancel"),
    "FORGET_CANCELLED": N_("Cancelled: nothing was deleted."),
    "NO_REMINDERS": N_(
        "You have no reminders here. Just ask me, for example: \"remind me tomorrow at nine to call mum\" or "
        "\"every Monday at eight, remind me to put the bins out\"."
    ),
    "REMINDERS_HEADER": N_("Your reminders here:"),
    "REMINDER_GONE": N_("That reminder already went off or was cancelled."),
    "UNSUPPORTED": N_(
        "I understand voice messages, audio files, video notes and text. Send me a voice note, or type a "
        "message. /help has more."
    ),
    "UNKNOWN_COMMAND": N_("I don't know that command. /help lists what I can do."),
    "TOO_LARGE": N_(
        "That voice message is larger than 20 MB, the most a bot can download from Telegram. Please send a shorter one."
    ),
    "DOWNLOAD_FAILED": N_("I couldn't download that voice message from Telegram. Please send it again."),
    "PRIVATE_ONLY": N_("Let's do that in our private chat: open a chat with me and send the command there."),
    "PRIVATE_ONLY_BUTTON": N_("Let's do that in our private chat: the button below opens it and runs the command."),
    "OPEN_PRIVATE_CHAT": N_("Open private chat"),
    "GROUP_ONLY": N_("That works in a group: add me to one and send the command there. /help lists what works here."),
    "GROUP_START": N_(
        "Hi, I'm Parley, a voice assistant. Mention me or reply to one of my messages and I'll answer out loud; "
        "each of you has their own conversation with me. Type /help to see what else I can do here."
    ),
    "GROUP_HELP_INTRO": N_(
        "In this group I answer when you mention me or reply to one of my messages (a voice message or text), "
        "and only then. Each of you has their own conversation with me."
    ),
    "HELP_IN_GROUPS": N_("In a group: add me to it, and /help there shows what I do in groups."),
    "HELP_ADMINS": N_("For you as an admin of this bot:"),
    "ALLOW": N_("Allow"),
    "IGNORE": N_("Ignore"),
    "GROUP_SWITCHED_ON": N_(
        "Done: I'm switched on in this group. Mention me or reply to one of my messages to talk to me."
    ),
    "YOU_ARE_ALLOWED": N_("Good news: you can use this bot now. Send me a voice message, or type."),
    "RETRY": N_("Try again"),
    "RETRYING": N_("Trying again…"),
    "RETRIED": N_("Tried again: see below."),
    "RETRY_GONE": N_("That message was already answered or can no longer be retried."),
    "GAVE_UP": N_("Sorry, I couldn't process this message, even after several tries. Please send it again."),
    "BUSY": N_("I'm very busy right now. Please try again in a minute."),
    "FAILED_UNEXPECTEDLY": N_(
        "Sorry, something went wrong on my side and I couldn't answer this message. Please send it again."
    ),
    "NOT_YOUR_BUTTON": N_("This button belongs to someone else's message."),
    "ANONYMOUS_SENDER": N_(
        "I can't tell anonymous admins (or channels) apart, so I only hold conversations with people writing "
        "as themselves."
    ),
    "NOT_STORED": N_(
        "Sorry, I couldn't take this message just now (my storage is full). Please send it again later."
    ),
    "REFUSED_SHORT": N_("This bot is private."),
    "ADMIN_ONLY": N_("That command is for the bot's admins."),
    "ALLOW_USAGE": N_("Usage: /allow ID — a user id, an @username, or a group chat id (negative)."),
    "DENY_USAGE": N_("Usage: /deny ID — a user id, an @username, or a group chat id (negative)."),
    "EXPORT_CAPTION": N_("Everything I have stored about you, as JSON."),
    "PRIVACY_MODE": N_(
        "Note: I can only see commands, mentions of me and replies to my messages here, so a summary covers "
        "just those. To let me read the whole group, turn privacy mode off (BotFather → /mybots → your bot → "
        "Bot Settings → Group Privacy → Turn off, then remove and re-add me), or make me a group admin."
    ),
    "SUMMARY_USAGE": N_(
        "Usage: /summary (since my last summary, or the last 24 hours), /summary yesterday, /summary today, "
        "/summary week, /summary month, /summary 3 hours (or 3h, 90 min, 2 days), or /summary 200 (the last "
        "200 messages)."
    ),
    "NOTHING_TO_SUMMARIZE": N_("There's nothing new to summarize in that span."),
    "DIGEST_ADMINS_ONLY": N_("Only the group's admins can schedule a digest."),
    "DIGEST_USAGE": N_(
        "Usage: /digest HH:MM [timezone] for every day, /digest weekly mon HH:MM [timezone] for every week, "
        "e.g. /digest 18:00, /digest weekly fri 17:30 Europe/Berlin; /digest off to stop; /digest alone shows it."
    ),
    "DIGEST_OFF": N_("Digest turned off."),
    "FIND_USAGE": N_("Usage: /find WORDS — I search what was said here (accents and case aside), newest first."),
    "FIND_NEWER": N_("‹ Newer"),
    "FIND_OLDER": N_("Older ›"),
    "IMPORT_USAGE": N_(
        "To bring in history from before I joined: in Telegram Desktop open the group → ⋮ → Export chat history, "
        "choose the format “Machine-readable JSON”, and send me result.json (or a .zip of the export folder) with "
        "/import as its caption — here, or to me in private as /import -100… (the group's id) or /import @group."
    ),
    "IMPORT_ADMINS_ONLY": N_("Only the group's admins can import its history."),
    "IMPORT_GROUP_UNKNOWN": N_(
        "I can't find that group. Name it by its id (/import -100…) or its @username, and make sure I'm a member."
    ),
    "IMPORT_GROUP_NOT_ALLOWED": N_("That group is not on my list, so I keep no log for it."),
    "IMPORT_DOWNLOAD_FAILED": N_("I couldn't download that file. Please send it again."),
    "ASK_NOTHING": N_("I no longer have the messages of that summary, so I can't answer from them."),
    "ASK_UNHEARD": N_("I couldn't make out the question. Please say it again, or type it."),
    "ANSWER_CAPTION": N_("My answer, from the messages of that summary:"),
    "SOURCES": N_("From these messages"),
    "NEW_CONVERSATION": N_("(It's been a while, so this is a fresh conversation.)"),
    "STATS_CHART_CAPTION": N_("Cost per day, last 30 days."),
    "NOTHING_SAID": N_("I couldn't make out any words in that recording."),
    "TRANSCRIPT_ATTACHED": N_("The transcript is long, so here it is as a file."),
    "SPEAK_RECORDING": N_(
        "That's a recording already: /speak reads text aloud. To get its words written out, reply to it with "
        "/transcribe."
    ),
    "SPEAK_USAGE": N_("Usage: /speak TEXT, or reply with /speak to a message or to a .txt, .md or PDF document."),
    "DOCUMENT_UNREADABLE": N_("I can read aloud text messages and .txt, .md or PDF documents, but not that file."),
    "DOCUMENT_TOO_COMPLEX": N_(
        "That document is too complex for me to read in reasonable time. Please send its text, or a simpler file."
    ),
    "DOCUMENT_TOO_LARGE": N_("That document is too large for me to read aloud (the limit is 1 MB)."),
}

BUTTONS = ("FORGET_YES", "FORGET_NO", "RETRY", "OPEN_PRIVATE_CHAT", "ALLOW", "IGNORE")
"""The fixed texts shown on buttons: a translation must stay short (the catalogue test holds it to 64)."""

CANNED: dict[str, str] = {
    "start": "START",
    "unknown_command": "UNKNOWN_COMMAND",
    "unsupported": "UNSUPPORTED",
    "private_only": "PRIVATE_ONLY",
    "group_only": "GROUP_ONLY",
    "group_start": "GROUP_START",
}
"""Fixed answers a job names by key (the key is stored in the job row): key → the name of its text."""


def __getattr__(name: str) -> str:
    """`texts.START` and the other fixed texts, in the current language."""
    try:
        return _(_FIXED[name])
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def canned(key: str) -> str:
    return _(_FIXED[CANNED[key]])


def forget_done(turns: int) -> str:
    return ngettext(
        "Done: I deleted {count} stored message and your settings. I no longer know anything about you.",
        "Done: I deleted {count} stored messages and your settings. I no longer know anything about you.",
        turns,
        count=formats.number(turns),
    )


def voice_list(current: str, voices: tuple[str, ...]) -> str:
    return _(
        "I'm speaking as {current}. Voices you can choose: {voices}.\n"
        "Send /voice NAME (for example /voice coral) or tap one below.",
        current=current,
        voices=formats.items(voices),
    )


def voice_unknown(name: str, voices: tuple[str, ...]) -> str:
    return _(
        "I don't have a voice called “{name}”. Choose one of: {voices}.", name=name[:40], voices=formats.items(voices)
    )


def voice_set(name: str) -> str:
    return _("Done: from now on I'll speak as {name}.", name=name)


def still_working(seconds: float) -> str:
    if seconds < 60:
        return _("Still working on your reply ({duration} so far). It's coming.", duration=formats.duration(seconds))
    return _("Still working on your reply (about {duration} so far). It's coming.", duration=formats.duration(seconds))


def refused(user_id: int, *, unconfigured: bool = False) -> str:
    """The one reply a stranger gets; on a bot with no admin yet (a first run) it also tells whoever runs the
    bot how to become its admin, since they are the one most likely writing."""
    text = _(
        "Sorry, this bot is private: access is restricted to the people its operator has added. "
        "Your user id is {user_id}. Send it to the operator if you should have access.",
        user_id=user_id,
    )
    if not unconfigured:
        return text
    return text + "\n\n" + _(
        "If you run this bot: it has no admin yet. Add PARLEY_ADMINS={user_id} to its .env file and restart it, "
        "and you are its admin.",
        user_id=user_id,
    )


def group_welcome(chat_id: int, *, allowed: bool) -> str:
    """Posted when the bot is added to a group: what it does there and how its admins switch it on."""
    what = _(
        "Hi, I'm Parley, a voice assistant. In this group I answer when someone mentions me or replies to one of "
        "my messages, out loud; /summary tells what was said here and /find searches it."
    )
    if allowed:
        return what + "\n\n" + _("I'm already switched on here.")
    return what + "\n\n" + group_not_enabled(chat_id)


def group_not_enabled(chat_id: int) -> str:
    return _(
        "I'm not switched on in this group yet. To switch me on, one of my admins (the people who run me) sends "
        "/allow here. This group's id is {chat_id}, for /allow {chat_id} in a private chat with me.",
        chat_id=chat_id,
    )


def stranger_wrote(name: str, user_id: int) -> str:
    """To the admins: someone not allowed wrote to the bot (at most once a day per person)."""
    return _("{name} (user id {user_id}) wrote to me, but isn't allowed to use me. Let them?", name=name,
             user_id=user_id)  # fmt: skip


def stranger_allowed(user_id: int) -> str:
    return _("Done: {user_id} is now allowed, and I told them.", user_id=user_id)


def stranger_already_allowed(user_id: int) -> str:
    return _("{user_id} is already allowed.", user_id=user_id)


def stranger_ignored(user_id: int) -> str:
    return _("Ignored: {user_id} still can't use me. /allow {user_id} lets them in later.", user_id=user_id)


def allow_button(user_id: int) -> str:
    return _("Allow {user_id}", user_id=user_id)


def slow_down(seconds: int) -> str:
    return _("Slow down a little: you've sent a lot of messages. Try again {wait}.", wait=formats.wait(seconds))


def access_changed(subject: str, allowed: bool) -> str:
    if allowed:
        return _("Done: {subject} is now allowed. No restart needed.", subject=subject)
    return _("Done: {subject} is now denied. No restart needed.", subject=subject)


def users_report(
    allowed: Any, admins: frozenset[int], overrides: dict[str, bool], people: list[Any], refused: Sequence[Any] = ()
) -> str:
    """/users: who may use the bot (environment, then admins' changes), who has, with usage, and who was
    refused lately (each with an Allow button under the report)."""
    none = _("none")
    if allowed.everyone:
        base = _("everyone (*)")
    else:
        base = formats.items(sorted(allowed.subjects)) or _("nobody but admins")
    allowed_now = sorted(k for k, v in overrides.items() if v)
    denied_now = sorted(k for k, v in overrides.items() if not v)
    lines = [
        _("Admins: {admins}", admins=formats.items([str(a) for a in sorted(admins)]) or none),
        _("Allowed by PARLEY_ALLOWED: {subjects}", subjects=base),
        _("Allowed with /allow: {subjects}", subjects=formats.items(allowed_now) or none),
        _("Denied with /deny: {subjects}", subjects=formats.items(denied_now) or none),
        "",
        _("Seen:") if people else _("Nobody has talked to me yet."),
    ]
    for person in people:
        name = f"@{person.username}" if person.username else (person.first_name or "?")
        if person.last_seen_at:
            seen = formats.when(datetime.fromtimestamp(person.last_seen_at, UTC)) + " UTC"
        else:
            seen = _("never")
        lines.append(
            _(
                "{user_id} {name}: last seen {seen}, {turns} turns, {tokens} tokens",
                user_id=person.user_id,
                name=name,
                seen=seen,
                turns=formats.number(person.turns),
                tokens=formats.number(person.tokens),
            )
        )
    if refused:
        lines += ["", _("Refused lately:")]
    for refusal in refused:
        last = formats.when(datetime.fromtimestamp(refusal.last_at, UTC)) + " UTC"
        count = formats.number(refusal.refused)
        lines.append(_("{user_id}: last refused {last} (messages refused: {count})", user_id=refusal.user_id,
                       last=last, count=count))  # fmt: skip
    return "\n".join(lines)


# --- groups ------------------------------------------------------------------------------------------


def _progress(progress: tuple[int, int] | None) -> str:
    return f" {progress[0]}/{progress[1]}" if progress else ""


def reading(count: int, progress: tuple[int, int] | None) -> str:
    text = ngettext("Reading {count} message…", "Reading {count} messages…", count, count=formats.number(count))
    return text + _progress(progress)


def summary_limited(seconds: int) -> str:
    return _("That's enough summaries for now in this chat. Try again {wait}.", wait=formats.wait(seconds))


def digest_set(when: str) -> str:
    return _("Done: {when} I'll post a spoken digest of the group's talk.", when=when)


def digest_schedule(when: str | None) -> str:
    if when is None:
        return _("No digest is scheduled here.") + " " + _(_FIXED["DIGEST_USAGE"])
    return _("A spoken digest is posted here {when}. /digest off stops it.", when=when)


def found_header(words: str, first: int, last: int) -> str:
    """HTML: the /find results' first line."""
    return _(
        "🔎 <b>{words}</b> — matches {first}–{last}, newest first:",
        words=escape(words),
        first=formats.number(first),
        last=formats.number(last),
    )


def found_nothing(words: str) -> str:
    return _("Nothing said here matches “{words}”.", words=words)


_KINDS = {
    "voice": N_("voice message"),
    "audio": N_("audio file"),
    "video_note": N_("video message"),
    "photo": N_("photo"),
    "video": N_("video"),
    "animation": N_("GIF"),
    "document": N_("file"),
    "sticker": N_("sticker"),
    "poll": N_("poll"),
    "location": N_("location"),
    "contact": N_("contact"),
}


def message_kind(kind: str) -> str:
    """What a message without words was ('photo', 'sticker'), for a line that quotes it."""
    return _(_KINDS[kind]) if kind in _KINDS else kind.replace("_", " ")


def import_too_large(megabytes: int) -> str:
    return _(
        "That file is too large: I can import exports up to {megabytes} MB. Export a shorter period.",
        megabytes=formats.number(megabytes),
    )


def import_wrong_chat(name: str) -> str:
    return _("That export is of “{name}”, not of this group, so I didn't import it.", name=name)


def importing(count: int, fraction: float | None) -> str:
    text = _("Importing… {count} messages so far", count=formats.number(count))
    return text + (f" ({formats.percent(fraction)})" if fraction is not None else "")


def imported(name: str, added: int, already: int, older: int, first: str | None, last: str | None) -> str:
    if first and last:
        lines = [
            _(
                "Imported {added} messages of “{name}” from {first} to {last}. /summary and /find now cover them.",
                added=formats.number(added), name=name, first=first, last=last,
            )
        ]  # fmt: skip
    else:
        lines = [_("Imported {added} messages of “{name}”.", added=formats.number(added), name=name)]
    if already:
        lines.append(_("{count} were already in my log and were kept as they were.", count=formats.number(already)))
    if older:
        lines.append(_("{count} older than this group's log keeps were left out.", count=formats.number(older)))
    return "\n".join(lines)


def import_stopped(added: int, why: ParleyError) -> str:
    """The import ran into `why` part way: what is in, and that sending it again adds only what is missing."""
    reason = explain(why)
    return _(
        "The import stopped after {added} messages: {reason} Send the export again when it's fixed — messages "
        "already imported are not duplicated.",
        added=formats.number(added),
        reason=reason,
    )


# --- spend control: /usage, /stats, /model, budgets -------------------------------------------------


def money(usd: float) -> str:
    """As a person reads a price: cents ($12.34, $0.05), and the first digits of a sum below a cent ($0.004),
    which would otherwise read as nothing."""
    return formats.money(usd)


def _apart(a: float, b: float) -> tuple[str, str]:
    """Two sums that differ, written so that they read differently ($0.0123 and $0.0141, not $0.01 twice)."""
    first, second = money(a), money(b)
    if first == second and a != b:
        return formats.money(a, decimals=4), formats.money(b, decimals=4)
    return first, second


def _when(moment: Any) -> str:
    return f"{formats.when(moment)} {moment.tzname()}"


def voice_too_long(limit: float) -> str:
    return _(
        "That voice message is too long: I take voice messages of up to {span}. Please send a shorter one.",
        span=formats.length(limit),
    )


def over_budget(allowance: Any, estimate: float) -> str:
    """A plain refusal: what this message would cost, what is left of which budget, and when it starts over
    (unless the whole budget is too small for it). Nothing was sent to the model."""
    left, cost = _apart(allowance.left, estimate)
    values = {"cost": cost, "left": left, "limit": money(allowance.limit), "resets": _when(allowance.resets_at)}
    if allowance.used <= 0:  # nothing spent yet: the budget has not been "reached", it is too small for this
        if allowance.scope == "global":
            return _("Sorry, this message would cost about {cost}, more than this bot's whole monthly budget of "
                     "{limit}, so I can't answer it.", **values)  # fmt: skip
        if allowance.scope == "daily":
            return _("Sorry, this message would cost about {cost}, more than your whole daily budget of {limit}, so "
                     "I can't answer it.", **values)  # fmt: skip
        return _("Sorry, this message would cost about {cost}, more than your whole monthly budget of {limit}, so I "
                 "can't answer it.", **values)  # fmt: skip
    if allowance.left <= 0:
        if allowance.scope == "global":
            return _("Sorry, this bot has used up its monthly budget of {limit} (this message would cost about "
                     "{cost}). It starts over on {resets}.", **values)  # fmt: skip
        if allowance.scope == "daily":
            return _("Sorry, you've used up your daily budget of {limit} (this message would cost about {cost}). "
                     "It starts over on {resets}.", **values)  # fmt: skip
        return _("Sorry, you've used up your monthly budget of {limit} (this message would cost about {cost}). "
                 "It starts over on {resets}.", **values)  # fmt: skip
    if allowance.scope == "global":
        return _("Sorry, this message would cost about {cost}, but only {left} of this bot's monthly budget of "
                 "{limit} is left. It starts over on {resets}.", **values)  # fmt: skip
    if allowance.scope == "daily":
        return _("Sorry, this message would cost about {cost}, but only {left} of your daily budget of {limit} is "
                 "left. It starts over on {resets}.", **values)  # fmt: skip
    return _("Sorry, this message would cost about {cost}, but only {left} of your monthly budget of {limit} is "
             "left. It starts over on {resets}.", **values)  # fmt: skip


def period(label: str) -> str:
    """A totals line's label ("Today", "This month", "All time"), from the period's English name."""
    return {"Today": _("Today"), "This month": _("This month"), "All time": _("All time")}.get(label, label)


def _totals_line(label: str, totals: list[Any]) -> str:
    calls = sum(t.calls for t in totals)
    if not calls:
        return _("{label}: nothing yet", label=period(label))
    tokens, audio = sum(t.tokens for t in totals), sum(t.audio_tokens for t in totals)
    cost = sum(t.cost_usd for t in totals)
    return ngettext(
        "{label}: {tokens} tokens ({audio} audio), {cost} in {calls} call",
        "{label}: {tokens} tokens ({audio} audio), {cost} in {calls} calls",
        calls,
        label=period(label),
        tokens=formats.number(tokens),
        audio=formats.number(audio),
        cost=money(cost),
        calls=formats.number(calls),
    )


def usage_report(periods: list[tuple[str, list[Any]]], by_model: list[Any], allowances: list[Any], zone: str) -> str:
    """/usage: the user's tokens and cost today, this month, all time, per model, and budgets left."""
    lines = [_("Your usage (days and months in {zone}):", zone=zone)]
    lines += [_totals_line(label, totals) for label, totals in periods]
    if by_model:
        lines += ["", _("By model, all time:")]
        lines += [_totals_line(f"• {t.model}", [t]) for t in by_model]
    if allowances:
        lines += ["", _("Your budgets:")]
        for a in allowances:
            values = {"limit": money(a.limit), "left": money(a.left), "resets": _when(a.resets_at)}
            if a.scope == "global":
                lines.append(_("• the bot's monthly budget (everyone): {limit}, {left} left, starts over {resets}",
                               **values))  # fmt: skip
            else:
                lines.append(_("• {budget}: {limit}, {left} left, starts over {resets}",
                               budget=_scope_budget(a.scope), **values))  # fmt: skip
    return "\n".join(lines)


def _scope_budget(scope: str) -> str:
    if scope == "daily":
        return _("daily budget")
    if scope == "monthly":
        return _("monthly budget")
    return _("{scope} budget", scope=scope)


def stats_report(
    periods: list[tuple[str, list[Any]]], top: list[Any], days: list[Any], prices_taken: str, zone: str
) -> str:
    """/stats: totals, top users this month, cost per day for the last 30 days."""
    lines = [_("Spend (days and months in {zone}):", zone=zone)]
    lines += [_totals_line(label, totals) for label, totals in periods]
    lines += ["", _("Top users this month:") if top else _("Nobody has spent anything this month.")]
    for rank, person in enumerate(top, 1):
        forgotten = person.user_id is None or person.user_id < 0
        who = _("a forgotten user") if forgotten else f"{person.user_id}"
        if person.name and not forgotten:
            who = f"{person.name} ({person.user_id})"
        lines.append(
            ngettext(
                "{rank}. {who}: {cost}, {calls} call",
                "{rank}. {who}: {cost}, {calls} calls",
                person.calls,
                rank=rank,
                who=who,
                cost=money(person.cost_usd),
                calls=formats.number(person.calls),
            )
        )
    spent_days = [(day, cost) for day, cost in days if cost > 0]
    total = money(sum(c for _day, c in days))
    if spent_days:
        lines += ["", _("Last 30 days: {total}, by day:", total=total)]
    else:
        lines += ["", _("Last 30 days: {total}", total=total)]
    lines += [f"{formats.day(day)}: {money(cost)}" for day, cost in spent_days]
    lines += ["", _("Prices as of {date}.", date=_date(prices_taken))]
    return "\n".join(lines)


def _date(iso: str) -> str:
    """'2026-11-25' the reader's way ('Nov 25, 2026'); anything else as it is."""
    try:
        return formats.full_date(date.fromisoformat(iso))
    except ValueError:
        return iso


def model_list(current: str, models: tuple[str, ...]) -> str:
    return _(
        "I'm answering with {current}. Models you can choose: {models}.\n"
        "Send /model NAME or tap one below. The mini model is cheaper; the full one sounds and reasons better.",
        current=current,
        models=formats.items(models),
    )


def model_unknown(name: str, models: tuple[str, ...]) -> str:
    return _(
        "I can't use a model called “{name}” here. Choose one of: {models}.",
        name=name[:60],
        models=formats.items(models),
    )


def model_set(name: str) -> str:
    return _("Done: from now on I'll answer with {name}.", name=name)


# --- voice tools -------------------------------------------------------------------------------------


def working(doing: str, progress: tuple[int, int] | None) -> str:
    """A tool's status line; `doing` is "Transcribing" or "Listening"."""
    word = {"Transcribing": _("Transcribing"), "Listening": _("Listening")}.get(doing, doing)
    return f"{word}…" + _progress(progress)


def sentiment(word: str) -> str:
    """The model's sentiment label (one of three English words, fixed by the schema) in the reader's language."""
    return {"positive": _("positive"), "neutral": _("neutral"), "negative": _("negative")}.get(word, word)


def tone_report(report: ToneReport) -> str:
    """A compact, readable rendering of a parley.tools.ToneReport (its words are in the reader's language)."""
    lines = [
        _("Overall: {sentiment} ({confidence} confident)", sentiment=sentiment(report.sentiment),
          confidence=formats.percent(report.confidence))
    ]  # fmt: skip
    if report.emotions:
        lines.append(_("Emotions: {emotions}", emotions=formats.items(report.emotions)))
    lines += [_("“{quote}”", quote=quote) for quote in report.quotes]
    if report.summary:
        lines += ["", report.summary]
    return "\n".join(lines)


def needs_recording(command: str) -> str:
    """A voice tool asked for without a recording, under the name it was asked by (/sentiment, not /tone)."""
    return _(
        "Reply to a voice message or an audio file with /{command}, or send the audio with /{command} as its caption.",
        command=command,
    )


def spoken_summary(chars: int) -> str:
    return _(
        "A spoken summary of the text ({chars} characters is too long to read aloud in full).",
        chars=formats.number(chars),
    )


def mode_usage(current: str) -> str:
    return _(
        "I'm replying with {current}. Choose: /mode voice (a voice message with its transcript), "
        "/mode text (text only) or /mode both (a voice message and the text).",
        current=current,
    )


def mode_set(mode: str) -> str:
    return {
        "voice": _("Done: I'll reply with voice messages (with the transcript as caption)."),
        "text": _("Done: I'll reply with text only."),
        "both": _("Done: I'll reply with a voice message and the text."),
    }[mode]


def explain(exc: ParleyError) -> str:
    """The sentence for any failure the user may see: refusals name their limit, the rest say their piece."""
    if isinstance(exc, BudgetExceeded):
        return over_budget(exc.allowance, exc.estimate)
    if isinstance(exc, VoiceTooLong):
        return voice_too_long(exc.limit)
    values = {key: formats.number(v) if isinstance(v, int | float) else v for key, v in exc.values.items()}
    return _(exc.user_message, **values)


# --- reminders and timezones -----------------------------------------------------------------------


def timezone_current(zone: str | None, local: str | None) -> str:
    if zone is None:
        return _(
            "I don't know your timezone yet, so I can't set reminders at the right time. Send /timezone and "
            "your city or zone, for example /timezone Berlin or /timezone America/New_York."
        )
    return _("Your timezone is {zone} (it's {local} there). Change it with /timezone and a city or zone.",
             zone=zone, local=local)  # fmt: skip


def timezone_set(zone: str, local: str) -> str:
    return _("Done: your timezone is {zone}. It's {local} there; reminders follow this clock.", zone=zone, local=local)


def timezone_unknown(text: str) -> str:
    return _(
        "I don't know a timezone called {name}. Try a city in the zone's name or the zone itself, for example "
        "/timezone Berlin, /timezone Europe/London or /timezone America/New_York.",
        name=repr(text),
    )


def _repeats(repeat: str) -> str:
    return {
        "daily": _(", every day"),
        "weekdays": _(", every weekday"),
        "weekly": _(", every week"),
        "monthly": _(", every month"),
    }.get(repeat, "")


def reminder_line(number: int, text: str, when: str, repeat: str) -> str:
    return f"{number}. {when}{_repeats(repeat)}: {text}"


def cancel_reminder_button(number: int) -> str:
    return _("Cancel {number}", number=number)


def reminder_cancelled(text: str, when: str) -> str:
    return _("Cancelled: {text} ({when}).", text=text, when=when)


def reminder_fired(text: str) -> str:
    return _("⏰ Reminder: {text}", text=text)


def reminder_spoken(text: str) -> str:
    """What the voice reads out when a reminder is due."""
    return _("A reminder: {text}", text=text)
