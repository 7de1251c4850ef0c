"""The operator's commands, for PARLEY_ADMINS only: /allow and /deny (stored at once, effective for the next
update, no restart), /users (who may use the bot and who has), /stats (spend: totals, top users, a chart)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from telegram import InputFile
from telegram.error import TelegramError

from bot import texts
from bot.charts import daily_costs_png
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from parley.access import subject_key
from parley.i18n import formats
from parley.spend import period_starts

log = logging.getLogger(__name__)

CHART_DAYS = 30


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
    return ChangeAccess(user_id=got.user.id, allow=got.command == "allow", subject=got.argument)


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
    return await run.say(texts.access_changed(subject, job.allow))


async def list_users(job: Users, run: Run) -> bool:
    access = run.services.access
    if not access.is_admin(job.user_id):
        return await run.say(texts.ADMIN_ONLY)
    overrides = await run.services.storage.access.overrides()
    people = await run.services.storage.access.users_overview()
    return await run.say(texts.users_report(access.allowed, access.admins, overrides, people))


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
    try:
        await run.bot.send_photo(run.chat_id, InputFile(png, filename="spend.png"), caption=texts.STATS_CHART_CAPTION)
    except TelegramError as exc:
        log.warning("chat=%s stats chart not sent: %s", run.chat_id, exc)
        return False
    return told


def daily_costs(slots: list[tuple[float, float]], today: datetime, days: int = CHART_DAYS) -> list[tuple[date, float]]:
    """Quarter-hour slots added up into the local days ending with `today` (every day listed, even at $0)."""
    by_day: dict[date, float] = defaultdict(float)
    for start, cost in slots:
        by_day[datetime.fromtimestamp(start, today.tzinfo).date()] += cost
    first = today.date() - timedelta(days=days - 1)
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0.0)) for i in range(days)]
