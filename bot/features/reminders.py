"""Reminders: /timezone (asked once, never guessed), /reminders with a cancel button each, and the firing
of a due reminder as a voice note in the person's voice with its text.

Reminders are created in conversation (the model's create_reminder tool); this feature shows and cancels
them, and delivers them when the scheduler finds them due.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData
from bot.edge import Edge
from bot.intake import Incoming
from bot.jobs import Payload
from bot.memory import message_link
from bot.replies import Run
from parley.actions.scheduler import Fire, ReminderScheduler
from parley.actions.zones import find_zone
from parley.errors import ParleyError
from parley.i18n import formats
from storage.reminders import Reminder

log = logging.getLogger(__name__)

LISTED = 20


@dataclass(frozen=True, slots=True)
class SetTimezone(Payload, kind="timezone"):
    user_id: int
    zone: str = ""  # '': say the current one and how to set it


@dataclass(frozen=True, slots=True)
class ListReminders(Payload, kind="reminders"):
    user_id: int


@dataclass(frozen=True, slots=True)
class CancelReminder(CallbackData, prefix="unremind"):
    user_id: int  # whose it is: anyone else's tap changes nothing
    reminder_id: int


# --- handlers --------------------------------------------------------------------------------------


def timezone(got: Incoming) -> SetTimezone:
    return SetTimezone(user_id=got.user.id, zone=got.argument or "")


def reminders(got: Incoming) -> ListReminders:
    return ListReminders(user_id=got.user.id)


# --- jobs ------------------------------------------------------------------------------------------


async def set_timezone(job: SetTimezone, run: Run) -> bool:
    users = run.services.storage.users
    if not job.zone:
        current = (await users.preferences(job.user_id)).timezone
        return await run.say(texts.timezone_current(current, _now_in(current) if current else None))
    zone = find_zone(job.zone)
    if zone is None:
        return await run.say(texts.timezone_unknown(job.zone))
    await users.update_preferences(job.user_id, timezone=zone)
    return await run.say(texts.timezone_set(zone, _now_in(zone)))


async def list_reminders(job: ListReminders, run: Run) -> bool:
    pending = await run.services.storage.reminders.pending(job.user_id, run.chat_id, LISTED)
    if not pending:
        return await run.say(texts.NO_REMINDERS)
    lines = [texts.reminder_line(i, r.text, _due(r.due_at, r.zone), r.repeat) for i, r in enumerate(pending, 1)]
    buttons = [
        [InlineKeyboardButton(texts.cancel_reminder_button(i), callback_data=CancelReminder(job.user_id, r.id).pack())]
        for i, r in enumerate(pending, 1)
    ]
    keyboard = InlineKeyboardMarkup(buttons)
    asker = run.message_id if run.chat_id < 0 else None  # in a group, only the asker may tap (see the intake)
    return await run.say(texts.REMINDERS_HEADER + "\n" + "\n".join(lines), keyboard=keyboard, reply_to=asker)


async def cancel_tapped(tap: CancelReminder, press: Press, run: Run) -> str | None:
    """Only the person whose reminder it is can cancel it; anyone else's tap changes nothing."""
    if press.user_id != tap.user_id:
        return None
    cancelled = await run.services.storage.reminders.cancel(
        tap.reminder_id, user_id=press.user_id, chat_id=run.chat_id
    )
    if cancelled is None:
        return texts.REMINDER_GONE
    return texts.reminder_cancelled(cancelled.text, _due(cancelled.due_at, cancelled.zone))


BUTTONS = (Button(CancelReminder, cancel_tapped),)


def _due(due_at: float, zone: str) -> str:
    """When a reminder fires next, on the person's clock, written their way ('Monday, November 30, 2026, 8:00 AM')."""
    return formats.long_when(datetime.fromtimestamp(due_at, ZoneInfo(zone)))


def _now_in(zone: str) -> str:
    """The weekday and time now in `zone`, so a wrong zone is noticed at once."""
    return formats.weekday_clock(datetime.now(ZoneInfo(zone)))


# --- firing ----------------------------------------------------------------------------------------


def firing(edge: Edge) -> Fire:
    """What the scheduler calls for a due reminder: the voice note (text alone when it cannot be spoken)."""

    async def fire(reminder: Reminder) -> None:
        services = edge.services
        caption = texts.reminder_fired(reminder.text)
        thread = reminder.thread_id or None
        voice = (await services.preferences.of(reminder.user_id)).voice
        spend = services.engine.spend
        estimate = spend.prices.estimate_reply(
            services.model.model, text_tokens=len(reminder.text) // 4 + 100, audio_seconds=0
        )
        try:
            async with spend.metered(user_id=reminder.user_id, chat_id=reminder.chat_id, estimate=estimate) as record:
                spoken = await services.voice_tools.speak(
                    texts.reminder_spoken(reminder.text), voice=voice, max_chars=1000, record=record
                )
        except ParleyError as exc:  # over budget, or the model is down: the reminder still arrives, as text
            log.warning("reminder %s sent as text: %s", reminder.id, exc)
            await edge.bot.send_message(reminder.chat_id, caption, message_thread_id=thread)
            return
        await edge.bot.send_voice(
            reminder.chat_id,
            InputFile(spoken.reply.voice_ogg or b"", filename="reminder.ogg"),
            duration=max(1, round(spoken.reply.voice_seconds)),
            caption=caption,
            message_thread_id=thread,
        )

    return fire


def start(edge: Edge) -> ReminderScheduler:
    """Fire reminders from now on; the model's tools wake the scheduler when they change one."""
    scheduler = ReminderScheduler(edge.services.storage.reminders, firing(edge))
    edge.services.tool_scope.reminders_changed = scheduler.wake
    edge.services.tool_scope.link = message_link
    scheduler.start()
    return scheduler
