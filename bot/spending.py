"""/usage, /stats and /model: jobs that read the usage ledger or set the user's model.

Thin like the other jobs: the numbers come from storage.usage and parley.spend, the sentences from texts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import TelegramError

from bot import texts
from bot.charts import daily_costs_png
from bot.sender import tell
from parley.prices import base_model
from parley.services import Services
from parley.spend import Spend, period_starts
from storage import JobRow
from storage.usage import ModelTotals

log = logging.getLogger(__name__)

CHART_DAYS = 30


def model_keyboard(models: tuple[str, ...], current: str) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(f"• {m}" if m == current else m, callback_data=f"model:{m}"[:64]) for m in models]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def merge_snapshots(totals: list[ModelTotals]) -> list[ModelTotals]:
    """One line per model: 'gpt-audio-2025-08-28' counts as gpt-audio."""
    merged: dict[str, ModelTotals] = {}
    for t in totals:
        name = base_model(t.model)
        m = merged.get(name, ModelTotals(name))
        merged[name] = ModelTotals(
            name, m.calls + t.calls, m.text_in + t.text_in, m.audio_in + t.audio_in, m.cached + t.cached,
            m.text_out + t.text_out, m.audio_out + t.audio_out, m.cost_usd + t.cost_usd,
        )  # fmt: skip
    return sorted(merged.values(), key=lambda t: t.cost_usd, reverse=True)


def daily_costs(slots: list[tuple[float, float]], today: datetime, days: int = CHART_DAYS) -> list[tuple[date, float]]:
    """Quarter-hour slots added up into the local days ending with `today` (every day listed, even at $0)."""
    by_day: dict[date, float] = defaultdict(float)
    for start, cost in slots:
        by_day[datetime.fromtimestamp(start, today.tzinfo).date()] += cost
    first = today.date() - timedelta(days=days - 1)
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0.0)) for i in range(days)]


class SpendCommands:
    def __init__(self, services: Services, bot: Bot) -> None:
        self.services = services
        self.bot = bot

    def handlers(self) -> dict[str, Callable[[JobRow], Awaitable[bool]]]:
        """The job kinds these commands run as, for the dispatcher."""
        return {"usage": self.usage, "model": self.model, "stats": self.stats}

    @property
    def spend(self) -> Spend:
        return self.services.engine.spend

    async def _tell(self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None = None) -> bool:
        return await tell(self.bot, chat_id, text, keyboard=keyboard)

    async def _periods(self, user_id: int | None) -> list[tuple[str, list[ModelTotals]]]:
        day, _, month, _ = period_starts(self.spend.now(), self.spend.zone)
        ledger = self.spend.store
        return [
            (label, await ledger.by_model(since=since, user_id=user_id))
            for label, since in (("Today", day.timestamp()), ("This month", month.timestamp()), ("All time", 0.0))
        ]

    async def usage(self, job: JobRow) -> bool:
        """/usage: the user's own tokens and cost, per period and per model, and their budgets."""
        user_id = job.payload["user_id"]
        periods = await self._periods(user_id)
        by_model = merge_snapshots(periods[-1][1])
        allowances = [] if self.spend.exempt(user_id) else await self.spend.allowances(user_id)
        report = texts.usage_report(periods, by_model, allowances, self.spend.zone.key)
        return await self._tell(job.chat_id, report)

    async def stats(self, job: JobRow) -> bool:
        """/stats (admins): totals, top users this month, cost per day as text and as a chart."""
        if not self.services.access.is_admin(job.payload["user_id"]):
            return await self._tell(job.chat_id, texts.ADMIN_ONLY)
        now = datetime.fromtimestamp(self.spend.now(), self.spend.zone)
        _, _, month, _ = period_starts(now.timestamp(), self.spend.zone)
        first_day = (now - timedelta(days=CHART_DAYS + 1)).timestamp()
        days = daily_costs(await self.spend.store.cost_by_quarter_hour(since=first_day), now)
        top = await self.spend.store.top_users(since=month.timestamp())
        periods = await self._periods(None)
        report = texts.stats_report(periods, top, days, self.spend.prices.taken, self.spend.zone.key)
        told = await self._tell(job.chat_id, report)
        png = await asyncio.to_thread(daily_costs_png, days, f"Parley: USD per day ({self.spend.zone.key})")
        try:
            await self.bot.send_photo(
                job.chat_id, InputFile(png, filename="spend.png"), caption=texts.STATS_CHART_CAPTION
            )
        except TelegramError as exc:
            log.warning("chat=%s stats chart not sent: %s", job.chat_id, exc)
            return False
        return told

    async def model(self, job: JobRow) -> bool:
        """/model lists the models with buttons; /model NAME sets it (kept across restarts)."""
        engine, user_id, name = self.services.engine, job.payload["user_id"], job.payload.get("name")
        if name:
            chosen = await engine.choose_model(user_id, name)
            if chosen:
                return await self._tell(job.chat_id, texts.model_set(chosen))
            text = texts.model_unknown(name, engine.models)
        else:
            text = texts.model_list(await engine.model_of(user_id), engine.models)
        current = await engine.model_of(user_id)
        return await self._tell(job.chat_id, text, keyboard=model_keyboard(engine.models, current))
