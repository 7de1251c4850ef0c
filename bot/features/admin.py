"""The operator's commands, for PARLEY_ADMINS only: /allow and /deny (stored at once, effective for the next
update, no restart; in a group, alone, they name that group), /users (who may use the bot, who has, who was
refused lately, with an Allow button each), /stats (spend: totals, top users, a chart); and the admins'
message about a refused stranger, with Allow / Ignore buttons."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, User
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData
from bot.charts import daily_costs_png
from bot.edge import Edge
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from bot.sender import tell
from parley.access import subject_key
from parley.i18n import formats
from parley.i18n.catalog import using
from parley.i18n.locales import normalise
from parley.spend import period_starts
from storage.access import Refusal

log = logging.getLogger(__name__)

CHART_DAYS = 30
STRANGER_QUIET_SECONDS = 24 * 3600.0
"""The admins hear of one refused person at most once a day (stored: a restart does not repeat it)."""


@dataclass(frozen=True, slots=True)
class ChangeAccess(Payload, kind="access"):
    user_id: int  # who asked: the job checks that they are an admin
    allow: bool
    subject: str  # a user id, an @username or a group chat id, as typed


@dataclass(frozen=True, slots=True)
class Users(Payload, kind="users"):
    user_id: int


@dataclass(frozen=True, slots=True)
class Stats(Payload, kind="stats"):
    user_id: int


# --- handlers (anyone may send them; the job checks who did) ---------------------------------------


def change_access(got: Incoming) -> ChangeAccess:
    """/allow ID, /deny ID; in a group, /allow alone names the group itself (nobody needs to know its id)."""
    subject = got.argument
    if not subject and got.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        subject = str(got.chat.id)
    return ChangeAccess(user_id=got.user.id, allow=got.command == "allow", subject=subject)


def users(got: Incoming) -> Users:
    return Users(user_id=got.user.id)


def stats(got: Incoming) -> Stats:
    return Stats(user_id=got.user.id)


# --- jobs ------------------------------------------------------------------------------------------


async def set_access(job: ChangeAccess, run: Run) -> bool:
    """/allow and /deny: stored at once, effective for the next update (no restart)."""
    if not run.services.access.is_admin(job.user_id):
        return await run.say(texts.ADMIN_ONLY)
    try:
        subject = subject_key(job.subject)
    except ValueError:
        return await run.say(texts.ALLOW_USAGE if job.allow else texts.DENY_USAGE)
    await run.services.storage.access.set(subject, allowed=job.allow, changed_by=job.user_id)
    log.info("access: %s %s by admin %s", subject, "allowed" if job.allow else "denied", job.user_id)
    if subject == str(run.chat_id) and run.chat_id < 0 and job.allow:
        return await run.say(texts.GROUP_SWITCHED_ON)
    return await run.say(texts.access_changed(subject, job.allow))


async def list_users(job: Users, run: Run) -> bool:
    access = run.services.access
    if not access.is_admin(job.user_id):
        return await run.say(texts.ADMIN_ONLY)
    overrides = await run.services.storage.access.overrides()
    people = await run.services.storage.access.users_overview()
    refused = await still_refused(run)
    report = texts.users_report(access.allowed, access.admins, overrides, people, refused)
    return await run.say(report, keyboard=refusals_keyboard(refused))


async def show_stats(job: Stats, run: Run) -> bool:
    """/stats (admins): totals, top users this month, cost per day as text and as a chart."""
    if not run.services.access.is_admin(job.user_id):
        return await run.say(texts.ADMIN_ONLY)
    spend = run.services.engine.spend
    now = datetime.fromtimestamp(spend.now(), spend.zone)
    _, _, month, _ = period_starts(now.timestamp(), spend.zone)
    first_day = (now - timedelta(days=CHART_DAYS + 1)).timestamp()
    days = daily_costs(await spend.store.cost_by_quarter_hour(since=first_day), now)
    top = await spend.store.top_users(since=month.timestamp())
    report = texts.stats_report(await spend.totals(), top, days, spend.prices.taken, spend.zone.key)
    told = await run.say(report)
    png = await asyncio.to_thread(daily_costs_png, days, formats.short_day, texts.money)  # in this job's language
    return told and await run.photo(png, "spend.png", caption=texts.STATS_CHART_CAPTION) is not None


def daily_costs(slots: list[tuple[float, float]], today: datetime, days: int = CHART_DAYS) -> list[tuple[date, float]]:
    """Quarter-hour slots added up into the local days ending with `today` (every day listed, even at $0)."""
    by_day: dict[date, float] = defaultdict(float)
    for start, cost in slots:
        by_day[datetime.fromtimestamp(start, today.tzinfo).date()] += cost
    first = today.date() - timedelta(days=days - 1)
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0.0)) for i in range(days)]


# --- strangers: the admins hear of them, and let them in with a tap -------------------------------------


@dataclass(frozen=True, slots=True)
class StrangerChoice(CallbackData, prefix="stranger"):
    """Allow / Ignore under the admins' message about a refused person, or Allow under a /users row."""

    action: str  # "allow", "ignore", or "row" (an Allow under /users: the report stays)
    user_id: int
    language: str  # the person's app language, so they are told in it ("" when unknown)


def stranger_keyboard(user_id: int, language: str) -> InlineKeyboardMarkup:
    allow, ignore = (StrangerChoice(action, user_id, language).pack() for action in ("allow", "ignore"))
    buttons = [
        InlineKeyboardButton(texts.ALLOW, callback_data=allow),
        InlineKeyboardButton(texts.IGNORE, callback_data=ignore),
    ]
    return InlineKeyboardMarkup([buttons])


def refusals_keyboard(refused: list[Refusal]) -> InlineKeyboardMarkup | None:
    """/users: one Allow button per person refused lately."""
    if not refused:
        return None
    rows = [
        [InlineKeyboardButton(texts.allow_button(r.user_id), callback_data=StrangerChoice("row", r.user_id, "").pack())]
        for r in refused
    ]
    return InlineKeyboardMarkup(rows)


async def still_refused(run: Run) -> list[Refusal]:
    """The people refused lately who are still not allowed (an /allow since then takes them off the list)."""
    access = run.services.access
    if access.allowed.everyone:
        return []
    overrides = await run.services.storage.access.overrides()
    return [
        r
        for r in await run.services.storage.access.recent_refusals()
        if overrides.get(str(r.user_id)) is not True and str(r.user_id) not in access.allowed.subjects
    ]


async def tell_admins(edge: Edge, user: User) -> None:
    """Someone not allowed wrote in their private chat: each admin gets one message about them, at most once a
    day (the person's name goes into the message, never into the database or the log)."""
    access = edge.services.access
    if not access.admins:
        return
    overrides = await edge.services.storage.access.overrides()
    names = [str(user.id), *([f"@{user.username.lower()}"] if user.username else [])]
    if any(overrides.get(name) is False for name in names):  # denied on purpose: nothing to decide
        return
    if not await edge.services.storage.access.note_admins_told(
        user.id, quiet_seconds=STRANGER_QUIET_SECONDS
    ):
        return
    name = user.full_name + (f" (@{user.username})" if user.username else "")
    language = normalise(user.language_code) or ""
    log.info("admins told of refused user=%s", user.id)
    delivered = False
    for admin_id in sorted(access.admins):
        with using(await edge.languages.of_chat(admin_id)):
            keyboard = stranger_keyboard(user.id, language)
            delivered |= await tell(edge.bot, admin_id, texts.stranger_wrote(name, user.id), keyboard=keyboard)
    if not delivered:
        log.info("no admin could be told of refused user=%s: their next message tries again", user.id)
        await edge.services.storage.access.unnote_admins_told(user.id)


async def stranger_tapped(tap: StrangerChoice, press: Press, run: Run) -> str | None:
    """Allow: stored like /allow, and the person is told in their language; Ignore: nothing changes."""
    if not run.services.access.is_admin(press.user_id):
        return texts.ADMIN_ONLY
    if tap.action == "ignore":
        return texts.stranger_ignored(tap.user_id)
    subject = str(tap.user_id)
    if (await run.services.storage.access.overrides()).get(subject) is True:
        result = texts.stranger_already_allowed(tap.user_id)
    else:
        await run.services.storage.access.set(subject, allowed=True, changed_by=press.user_id)
        log.info("access: %s allowed by admin %s (a tap)", subject, press.user_id)
        with using(normalise(tap.language) or run.edge.languages.default):
            await tell(run.bot, tap.user_id, texts.YOU_ARE_ALLOWED)
        result = texts.stranger_allowed(tap.user_id)
    if tap.action != "row":
        return result
    await run.say(result)  # the /users report stays; its keyboard loses the row
    try:
        keyboard = refusals_keyboard(await still_refused(run))
        await run.bot.edit_message_reply_markup(run.chat_id, press.message_id, reply_markup=keyboard)
    except TelegramError as exc:
        log.info("chat=%s /users buttons not updated: %s", run.chat_id, exc)
    return None


BUTTONS = (Button(StrangerChoice, stranger_tapped),)
