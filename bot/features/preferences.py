"""How Parley answers each person: /settings (one screen with every choice, each a button that opens its
picker), and the shortcuts /voice (the voice it speaks with), /model (the audio model), /mode (voice, text or
both), /persona (who it is: a built-in persona or the person's own instructions; in a group, its admins
choose for the group). Kept across restarts, written through the one `PreferenceBook`.

The screen costs no model call: it reads the person's one preferences row and their language. A picker
opened from the screen edits the screen's own message, and a choice brings the screen back, updated.
Each voice in a picker can be heard first: a short sample, spoken once per voice (and model and language)
and kept as the file Telegram already has, so every later preview is sent again at no cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, TelegramError

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData, CallbackDataError
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from parley import personas
from parley.errors import ParleyError
from parley.i18n.catalog import N_, _, current, set_current
from parley.i18n.locales import SHIPPED, native_name
from parley.preferences import REPLY_MODES

log = logging.getLogger(__name__)

MODE_NAMES = {"voice": N_("Voice message"), "text": N_("Text"), "both": N_("Voice and text")}
"""How each reply mode is named on its button and on the settings screen."""


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
class ShowSettings(Payload, kind="settings"):
    user_id: int


@dataclass(frozen=True, slots=True)
class ChoosePersona(Payload, kind="persona"):
    user_id: int
    text: str = ""  # '': show the personas; a built-in's key: choose it; anything else: own instructions


@dataclass(frozen=True, slots=True)
class VoiceChoice(CallbackData, prefix="voice"):
    name: str


@dataclass(frozen=True, slots=True)
class ModelChoice(CallbackData, prefix="model"):
    name: str


@dataclass(frozen=True, slots=True)
class ModeChoice(CallbackData, prefix="mode"):
    mode: str


@dataclass(frozen=True, slots=True)
class PersonaChoice(CallbackData, prefix="persona"):
    key: str


@dataclass(frozen=True, slots=True)
class Hear(CallbackData, prefix="hear"):
    """A voice's ▶ button: a short sample of it, sent as a voice message (the picker stays)."""

    voice: str


@dataclass(frozen=True, slots=True)
class Open(CallbackData, prefix="set"):
    """A button of the settings screen: open the picker of `what` ('screen': back to the screen)."""

    what: str


@dataclass(frozen=True, slots=True)
class Pick(CallbackData, prefix="pick"):
    """A choice in a picker opened from the settings screen: keep it, then show the screen again."""

    what: str
    value: str


# --- handlers --------------------------------------------------------------------------------------


def voice(got: Incoming) -> ChooseVoice:
    return ChooseVoice(user_id=got.user.id, name=got.argument or None)


def model(got: Incoming) -> ChooseModel:
    return ChooseModel(user_id=got.user.id, name=got.argument or None)


def mode(got: Incoming) -> ChooseMode:
    return ChooseMode(user_id=got.user.id, mode=got.args[0] if got.args else "")


def settings(got: Incoming) -> ShowSettings:
    return ShowSettings(user_id=got.user.id)


def persona(got: Incoming) -> ChoosePersona:
    """/persona, or /persona followed by a built-in's name or by instructions (their lines kept)."""
    words = (got.message.text or "").split(maxsplit=1)
    return ChoosePersona(user_id=got.user.id, text=words[1].strip() if len(words) > 1 else "")


# --- keyboards -------------------------------------------------------------------------------------


def _button(label: str, data: CallbackData) -> InlineKeyboardButton | None:
    try:
        return InlineKeyboardButton(label, callback_data=data.pack())
    except CallbackDataError as exc:  # a name too long for a button: it can still be typed
        log.warning("no button for %s: %s", label, exc)
        return None


def _rows(
    choices: list[tuple[str, CallbackData]], current: str, per_row: int, back: bool = False
) -> InlineKeyboardMarkup:
    buttons = [_button(f"• {name}" if name == current else name, data) for name, data in choices]
    kept = [b for b in buttons if b is not None]
    rows = [kept[i : i + per_row] for i in range(0, len(kept), per_row)]
    if back:
        rows.append([InlineKeyboardButton(_("« Back"), callback_data=Open("screen").pack())])
    return InlineKeyboardMarkup(rows)


def voice_keyboard(voices: tuple[str, ...], current: str, *, from_screen: bool = False) -> InlineKeyboardMarkup:
    """One row per voice: the voice to choose, and ▶ to hear it first."""
    rows = []
    for name in voices:
        choose = _button(
            f"• {name}" if name == current else name, Pick("voice", name) if from_screen else VoiceChoice(name)
        )
        hear = _button(_("▶ Listen"), Hear(name))
        if choose is not None and hear is not None:
            rows.append([choose, hear])
    if from_screen:
        rows.append([InlineKeyboardButton(_("« Back"), callback_data=Open("screen").pack())])
    return InlineKeyboardMarkup(rows)


def model_keyboard(models: tuple[str, ...], current: str, *, from_screen: bool = False) -> InlineKeyboardMarkup:
    return _rows(
        [(m, Pick("model", m) if from_screen else ModelChoice(m)) for m in models], current, 2, back=from_screen
    )


def mode_keyboard(current: str, *, from_screen: bool = False) -> InlineKeyboardMarkup:
    choices: list[tuple[str, CallbackData]] = [
        (_(MODE_NAMES[m]), Pick("mode", m) if from_screen else ModeChoice(m)) for m in REPLY_MODES
    ]
    return _rows(choices, _(MODE_NAMES[current]), 3, back=from_screen)


def language_keyboard(current: str) -> InlineKeyboardMarkup:
    """Every shipped language, named in itself (anyone finds theirs, whatever the current one is)."""
    choices: list[tuple[str, CallbackData]] = [(native_name(locale), Pick("language", locale)) for locale in SHIPPED]
    return _rows(choices, native_name(current), 3, back=True)


def persona_keyboard(current: str, has_own: bool, *, from_screen: bool = False) -> InlineKeyboardMarkup:
    """The built-in personas, and the person's (or group's) own instructions once there are some."""
    keys = [p.key for p in personas.BUILT_IN] + ([personas.CUSTOM] if has_own else [])
    choices: list[tuple[str, CallbackData]] = [
        (_(personas.name_of(key)), Pick("persona", key) if from_screen else PersonaChoice(key)) for key in keys
    ]
    return _rows(choices, _(personas.name_of(current)), 2, back=from_screen)


def persona_prompt(current: str, in_group: bool) -> str:
    name, limit = _(personas.name_of(current)), personas.MAX_INSTRUCTION_CHARS
    if in_group:
        return _(
            "In this group I'm talking as: {persona}. Its admins can choose another below, or give me "
            "instructions for the group: /persona followed by them, up to {limit} characters.",
            persona=name,
            limit=limit,
        )
    return _(
        "I'm talking as: {persona}. Choose another below, or give me your own instructions: /persona "
        "followed by them, up to {limit} characters.",
        persona=name,
        limit=limit,
    )


def admins_only() -> str:
    return _("Only the group's admins can choose its persona.")


def persona_set(key: str) -> str:
    return _("Done. Persona: {persona}.", persona=_(personas.name_of(key)))


def persona_too_long() -> str:
    return _(
        "Instructions can be at most {limit} characters long. Please shorten yours.",
        limit=personas.MAX_INSTRUCTION_CHARS,
    )


async def screen(run: Run, user_id: int) -> tuple[str, InlineKeyboardMarkup]:
    """The settings screen: one button per choice, each showing what applies now."""
    chosen = await run.services.preferences.of(user_id)
    language = await run.edge.languages.of_chat(user_id)
    rows = [
        (_("Voice: {voice}", voice=chosen.voice), "voice"),
        (_("Replies: {mode}", mode=_(MODE_NAMES[chosen.reply_mode])), "mode"),
        (_("Model: {model}", model=chosen.model), "model"),
        (_("Persona: {persona}", persona=_(personas.name_of(chosen.persona))), "persona"),
        (_("Language: {language}", language=native_name(language)), "language"),
    ]
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=Open(what).pack())] for label, what in rows]
    )
    return _("Your settings. Tap one to change it."), keyboard


# --- jobs ------------------------------------------------------------------------------------------


async def show_settings(job: ShowSettings, run: Run) -> bool:
    text, keyboard = await screen(run, job.user_id)
    return await run.say(text, keyboard=keyboard)


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
    """/mode with buttons for the three ways to reply; /mode voice|text|both sets it at once."""
    book = run.services.preferences
    chosen = await book.choose_reply_mode(job.user_id, job.mode) if job.mode else None
    if chosen is None:
        current = (await book.of(job.user_id)).reply_mode
        return await run.say(texts.mode_usage(current), keyboard=mode_keyboard(current))
    return await run.say(texts.mode_set(chosen))


async def choose_persona(job: ChoosePersona, run: Run) -> bool:
    """/persona lists the personas; /persona NAME picks a built-in one; /persona TEXT keeps own instructions.
    In a group, the group's persona, which only its admins may change."""
    book, in_group = run.services.preferences, run.chat_id < 0
    if in_group and job.text and not await run.by_group_admin(job.user_id):
        return await run.say(admins_only(), reply_to=run.message_id)
    if job.text:
        key = personas.built_in(job.text)
        if key is not None:
            await (book.choose_group_persona(run.chat_id, key) if in_group else book.choose_persona(job.user_id, key))
            return await run.say(persona_set(key), reply_to=run.message_id)
        written = await (
            book.write_group_persona(run.chat_id, job.text) if in_group else book.write_persona(job.user_id, job.text)
        )
        text = persona_set(personas.CUSTOM) if written else persona_too_long()
        return await run.say(text, reply_to=run.message_id)
    if in_group:
        key, own = await book.group_persona(run.chat_id)
        current, has_own = key or personas.DEFAULT, bool(own)
    else:
        chosen = await book.of(job.user_id)
        current, has_own = chosen.persona, bool(chosen.persona_text)
    return await run.say(
        persona_prompt(current, in_group), reply_to=run.message_id, keyboard=persona_keyboard(current, has_own)
    )


async def persona_tapped(tap: PersonaChoice, press: Press, run: Run) -> str | None:
    book = run.services.preferences
    if run.chat_id < 0:
        if not await run.by_group_admin(press.user_id):
            return admins_only()
        chosen = await book.choose_group_persona(run.chat_id, tap.key)
    else:
        chosen = await book.choose_persona(press.user_id, tap.key)
    return persona_set(chosen) if chosen else None


async def voice_tapped(tap: VoiceChoice, press: Press, run: Run) -> str:
    book = run.services.preferences
    chosen = await book.choose_voice(press.user_id, tap.name)
    return texts.voice_set(chosen) if chosen else texts.voice_unknown(tap.name, book.voices)


async def model_tapped(tap: ModelChoice, press: Press, run: Run) -> str:
    book = run.services.preferences
    chosen = await book.choose_model(press.user_id, tap.name)
    return texts.model_set(chosen) if chosen else texts.model_unknown(tap.name, book.models)


async def mode_tapped(tap: ModeChoice, press: Press, run: Run) -> str | None:
    chosen = await run.services.preferences.choose_reply_mode(press.user_id, tap.mode)
    return texts.mode_set(chosen) if chosen else None


PREVIEW_CACHE = "preview:{voice}:{model}:{locale}"


async def hear_tapped(tap: Hear, press: Press, run: Run) -> None:
    """A sample of the voice: spoken by the model the first time, then the file Telegram keeps, resent."""
    services = run.services
    if tap.voice not in services.preferences.voices:
        return
    model, locale = services.model.model, current()
    key = PREVIEW_CACHE.format(voice=tap.voice, model=model, locale=locale)
    if cached := await services.storage.cache.get(key):
        try:
            await run.bot.send_voice(run.chat_id, cached, caption=tap.voice, reply_to_message_id=press.message_id)
            return
        except BadRequest as exc:
            log.info("cached preview of %s unusable, speaking it again: %s", tap.voice, exc)
    sample = _("Hello! This is how I sound.")
    spend = services.engine.spend
    estimate = spend.prices.estimate_reply(model, text_tokens=100, audio_seconds=3.0)
    try:
        async with spend.metered(user_id=press.user_id, chat_id=run.chat_id, estimate=estimate) as record:
            spoken = await services.voice_tools.speak(sample, voice=tap.voice, max_chars=len(sample), record=record)
        sent = await run.bot.send_voice(
            run.chat_id,
            InputFile(spoken.reply.voice_ogg or b"", filename="preview.ogg"),
            duration=max(1, round(spoken.reply.voice_seconds)),
            caption=tap.voice,
            reply_to_message_id=press.message_id,
        )
    except ParleyError as exc:
        await run.say(texts.explain(exc))
        return
    except TelegramError as exc:
        log.warning("chat=%s preview of %s not sent: %s", run.chat_id, tap.voice, exc)
        return
    if sent.voice is not None:
        await services.storage.cache.put(key, sent.voice.file_id, user_id=None)  # nobody's data: a sample


async def open_tapped(tap: Open, press: Press, run: Run) -> None:
    """A settings button: its picker in place of the screen (or the screen again, from a picker's Back)."""
    book, user_id = run.services.preferences, press.user_id
    chosen = await book.of(user_id)
    if tap.what == "voice":
        text, keyboard = (
            texts.voice_list(chosen.voice, book.voices),
            voice_keyboard(book.voices, chosen.voice, from_screen=True),
        )
    elif tap.what == "model":
        text, keyboard = (
            texts.model_list(chosen.model, book.models),
            model_keyboard(book.models, chosen.model, from_screen=True),
        )
    elif tap.what == "mode":
        text, keyboard = _("How should I reply?"), mode_keyboard(chosen.reply_mode, from_screen=True)
    elif tap.what == "language":
        text, keyboard = (
            _("Which language should I speak with you?"),
            language_keyboard(await run.edge.languages.of_chat(user_id)),
        )
    elif tap.what == "persona":
        text = persona_prompt(chosen.persona, in_group=False)
        keyboard = persona_keyboard(chosen.persona, bool(chosen.persona_text), from_screen=True)
    else:
        text, keyboard = await screen(run, user_id)
    await run.settle(press.message_id, text, keyboard=keyboard)


async def pick_tapped(tap: Pick, press: Press, run: Run) -> None:
    """A choice made in a picker opened from the screen: kept, then the screen again, showing it."""
    book, user_id = run.services.preferences, press.user_id
    if tap.what == "voice":
        await book.choose_voice(user_id, tap.value)
    elif tap.what == "model":
        await book.choose_model(user_id, tap.value)
    elif tap.what == "mode":
        await book.choose_reply_mode(user_id, tap.value)
    elif tap.what == "persona":
        await book.choose_persona(user_id, tap.value)
    elif tap.what == "language" and await book.choose_language(user_id, tap.value):
        set_current(tap.value)  # the screen that comes back is already in the new language
    text, keyboard = await screen(run, user_id)
    await run.settle(press.message_id, text, keyboard=keyboard)


BUTTONS = (
    Button(VoiceChoice, voice_tapped),
    Button(ModelChoice, model_tapped),
    Button(ModeChoice, mode_tapped),
    Button(PersonaChoice, persona_tapped),
    Button(Hear, hear_tapped),
    Button(Open, open_tapped),
    Button(Pick, pick_tapped),
)
