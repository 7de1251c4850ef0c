"""How Parley answers each person: /voice (the voice it speaks with), /model (the audio model), /mode
(voice, text or both). Kept across restarts; the only feature that writes them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData, CallbackDataError
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChooseVoice(Payload, kind="voice"):
    user_id: int
    name: str | None = None  # None: list the voices


@dataclass(frozen=True, slots=True)
class ChooseModel(Payload, kind="model"):
    user_id: int
    name: str | None = None  # None: list the models


@dataclass(frozen=True, slots=True)
class ChooseMode(Payload, kind="mode"):
    user_id: int
    mode: str = ""  # '' (or anything not a mode): say how to choose


@dataclass(frozen=True, slots=True)
class VoiceChoice(CallbackData, prefix="voice"):
    name: str


@dataclass(frozen=True, slots=True)
class ModelChoice(CallbackData, prefix="model"):
    name: str


# --- handlers --------------------------------------------------------------------------------------


def voice(got: Incoming) -> ChooseVoice:
    return ChooseVoice(user_id=got.user.id, name=got.argument or None)


def model(got: Incoming) -> ChooseModel:
    return ChooseModel(user_id=got.user.id, name=got.argument or None)


def mode(got: Incoming) -> ChooseMode:
    return ChooseMode(user_id=got.user.id, mode=got.args[0] if got.args else "")


# --- keyboards -------------------------------------------------------------------------------------


def _keyboard(choices: list[tuple[str, CallbackData]], current: str, per_row: int) -> InlineKeyboardMarkup:
    buttons = []
    for name, data in choices:
        try:
            buttons.append(InlineKeyboardButton(f"• {name}" if name == current else name, callback_data=data.pack()))
        except CallbackDataError as exc:  # a name too long for a button: it can still be typed
            log.warning("no button for %s: %s", name, exc)
    return InlineKeyboardMarkup([buttons[i : i + per_row] for i in range(0, len(buttons), per_row)])


def voice_keyboard(voices: tuple[str, ...], current: str) -> InlineKeyboardMarkup:
    return _keyboard([(v, VoiceChoice(v)) for v in voices], current, per_row=4)


def model_keyboard(models: tuple[str, ...], current: str) -> InlineKeyboardMarkup:
    return _keyboard([(m, ModelChoice(m)) for m in models], current, per_row=2)


# --- jobs ------------------------------------------------------------------------------------------


async def choose_voice(job: ChooseVoice, run: Run) -> bool:
    book = run.services.preferences
    if job.name:
        chosen = await book.choose_voice(job.user_id, job.name)
        if chosen:
            return await run.say(texts.voice_set(chosen))
    current = (await book.of(job.user_id)).voice
    text = texts.voice_unknown(job.name, book.voices) if job.name else texts.voice_list(current, book.voices)
    # In a group the picker answers the asker's message: only they may tap it (the intake alerts the others).
    asker = run.message_id if run.chat_id < 0 else None
    return await run.say(text, keyboard=voice_keyboard(book.voices, current), reply_to=asker)


async def choose_model(job: ChooseModel, run: Run) -> bool:
    """/model lists the models with buttons; /model NAME sets it (kept across restarts)."""
    book = run.services.preferences
    if job.name:
        chosen = await book.choose_model(job.user_id, job.name)
        if chosen:
            return await run.say(texts.model_set(chosen))
    current = (await book.of(job.user_id)).model
    text = texts.model_unknown(job.name, book.models) if job.name else texts.model_list(current, book.models)
    return await run.say(text, keyboard=model_keyboard(book.models, current))


async def choose_mode(job: ChooseMode, run: Run) -> bool:
    book = run.services.preferences
    chosen = await book.choose_reply_mode(job.user_id, job.mode) if job.mode else None
    if chosen is None:
        return await run.say(texts.mode_usage((await book.of(job.user_id)).reply_mode))
    return await run.say(texts.mode_set(chosen))


async def voice_tapped(tap: VoiceChoice, press: Press, run: Run) -> str:
    book = run.services.preferences
    chosen = await book.choose_voice(press.user_id, tap.name)
    return texts.voice_set(chosen) if chosen else texts.voice_unknown(tap.name, book.voices)


async def model_tapped(tap: ModelChoice, press: Press, run: Run) -> str:
    book = run.services.preferences
    chosen = await book.choose_model(press.user_id, tap.name)
    return texts.model_set(chosen) if chosen else texts.model_unknown(tap.name, book.models)


BUTTONS = (Button(VoiceChoice, voice_tapped), Button(ModelChoice, model_tapped))
