"""The conversation: a voice note or text in, a spoken reply out; /reset (and /new); "Try another answer"
under the latest reply (and /retry), which answers the same message again in place of the old exchange; and,
in groups, answering when addressed (a mention of the bot, or a reply to one of its messages)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from telegram.error import TelegramError

from bot import texts
from bot.addressing import addressed_to, without_mention
from bot.buttons import Button, Press
from bot.callbacks import CallbackData
from bot.intake import Incoming, Intake
from bot.jobs import Payload
from bot.media import download, media_of
from bot.replies import Run
from bot.sender import ReplyProgress
from parley.engine import TurnRequest
from parley.errors import AudioTooLarge, ParleyError, VoiceTooLong
from parley.i18n.catalog import _
from parley.jobs import settled
from parley.preferences import Preferences
from parley.spend import BudgetExceeded

log = logging.getLogger(__name__)

_STEP_ORDER = ["download", "convert", "model", "encode", "send", "transcript_after", "fold_after"]
DOWNLOAD_LIMIT_BYTES = texts.TELEGRAM_DOWNLOAD_LIMIT_MB * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Converse(Payload, kind="converse"):
    message: dict[str, Any]  # the Telegram message, as it came
    text: str | None = None  # the words to answer when not the message's own (a group mention removed)


@dataclass(frozen=True, slots=True)
class Reset(Payload, kind="reset"):
    user_id: int
    thread_id: int = 0


@dataclass(frozen=True, slots=True)
class Again(Payload, kind="again"):
    """Another answer to the person's latest message, replacing the one they got."""

    user_id: int
    thread_id: int = 0
    message_id: int = 0  # the message the tapped button's reply answered; 0 (/retry): the latest


@dataclass(frozen=True, slots=True)
class AnotherAnswer(CallbackData, prefix="again"):
    """The "Try another answer" button under a reply."""

    user_id: int
    message_id: int
    thread_id: int


# --- handlers --------------------------------------------------------------------------------------


def converse(got: Incoming) -> Converse:
    return Converse(message=got.message.to_dict())


def reset(got: Incoming) -> Reset:
    return Reset(user_id=got.user.id, thread_id=got.thread_id or 0)


def retry(got: Incoming) -> Again:
    return Again(user_id=got.user.id, thread_id=got.thread_id or 0)


async def when_addressed(message: Message, intake: Intake) -> None:
    """In a group, a message that mentions the bot or replies to it is a turn of the sender's conversation."""
    bot = message.get_bot()
    user = message.from_user
    if user is None or not (message.text or media_of(message)) or not addressed_to(message, bot):
        return
    got = Incoming(message=message, user=user, chat=message.chat)
    await intake.accept(got, Converse(message=message.to_dict(), text=without_mention(message.text, bot)))


# --- jobs ------------------------------------------------------------------------------------------


async def answer(job: Converse, run: Run) -> bool:
    """Download → respond → send → finish; every failure becomes one plain message (Try again on a model's)."""
    message = Message.de_json(job.message, run.bot)
    user = message.from_user
    if user is None:  # handlers only queue messages with a sender
        return True
    if message.sender_chat is not None:
        # Sent as the group (an anonymous admin) or a channel: whoever it is cannot be told apart from the
        # next one, so no conversation (memory, budget) is kept with them; they are told so, at no cost.
        return await run.say(texts.ANONYMOUS_SENDER, reply_to=message.message_id)
    thread = message.message_thread_id if message.is_topic_message else None

    async def settings() -> tuple[Preferences, str]:
        await _touch(run, user)
        preferences = await run.services.preferences.of(user.id)
        return preferences, await run.services.preferences.instruction(message.chat_id, preferences)

    async def request(timings: dict[str, float]) -> TurnRequest:
        # The database is asked while the note downloads: the two wait on different things.
        reading = asyncio.create_task(settings())
        try:
            audio = await _download_voice(run, message, timings) if media_of(message) else None
            preferences, persona = await reading
        finally:
            if not reading.done():  # the download failed first: the person is still remembered, as before
                await asyncio.wait({reading})
            await settled(reading)
        return TurnRequest(
            chat_id=message.chat_id,
            user_id=user.id,
            preferences=preferences,
            message_id=message.message_id,
            text=job.text if job.text is not None else message.text,
            audio=audio,
            thread_id=thread or 0,
            persona=persona,
        )

    kind = "voice" if media_of(message) else "text"
    return await _turn(run, request, reply_to=message.message_id, thread=thread, kind=kind)


async def again(job: Again, run: Run) -> bool:
    """A new answer to the person's latest message, in place of the one they got (/retry, or the button)."""
    latest = await run.services.storage.turns.latest_from_user(run.chat_id, job.user_id, job.thread_id)
    if latest is None or latest.message_id is None:
        return await run.say(_("There's no answer to try again yet."), reply_to=run.message_id)
    if job.message_id and job.message_id != latest.message_id:
        return await run.say(_("Only the latest answer can be tried again."), reply_to=run.message_id)
    message_id = latest.message_id

    async def request(timings: dict[str, float]) -> TurnRequest:
        preferences = await run.services.preferences.of(job.user_id)
        return TurnRequest(
            chat_id=run.chat_id,
            user_id=job.user_id,
            preferences=preferences,
            message_id=message_id,
            text=latest.text,
            thread_id=job.thread_id,
            persona=await run.services.preferences.instruction(run.chat_id, preferences),
            again=True,
        )

    return await _turn(run, request, reply_to=message_id, thread=job.thread_id or None, kind="again")


async def again_tapped(tap: AnotherAnswer, press: Press, run: Run) -> None:
    """The button under a reply: a new answer to the message it answered (only the latest one's), made as a
    job of its own behind this tap, so a model failure gets its Try again like any answer."""
    if tap.user_id != press.user_id:
        return
    await _drop_button(run, press.message_id)
    job = Again(user_id=press.user_id, thread_id=tap.thread_id, message_id=tap.message_id)
    await run.edge.jobs.accept(chat_id=run.chat_id, source=f"again:{run.job_id}", job=job)


async def _turn(
    run: Run,
    make_request: Callable[[dict[str, float]], Awaitable[TurnRequest]],
    *,
    reply_to: int,
    thread: int | None,
    kind: str,
) -> bool:
    """Respond → send (with the "Try another answer" button) → finish, logging each step's time; every
    failure becomes one plain message (Try again on a model's)."""
    services, chat_id = run.services, run.chat_id
    timings: dict[str, float] = {}
    outcome = "ok"
    started = time.perf_counter()
    try:
        async with ReplyProgress(
            run.bot,
            chat_id,
            reply_to=reply_to,
            notice_after=services.settings.operations.slow_notice_seconds,
        ) as progress:
            request = await make_request(timings)
            turn = await services.engine.respond(request)
            await progress.stop()
            try:
                sending = time.perf_counter()
                keyboard = another_answer_keyboard(request.user_id, reply_to, request.thread_id)
                sent = await run.reply(
                    turn.reply, mode=request.preferences.reply_mode, reply_to=reply_to, thread_id=thread,
                    keyboard=keyboard,
                )  # fmt: skip
                if sent is None:  # the person was told, with Try again
                    outcome = "NotSent"
                    await turn.abandon()
                    return False
                await run.delivered()
                timings["send"] = time.perf_counter() - sending
            except BaseException:
                await turn.abandon()
                raise
            await _move_button(run, request, sent)
            await turn.finish()
            timings.update(turn.timings)
            if request.audio is not None and chat_id != request.user_id and turn.reply.transcript is not None:
                # The group log's copy of the note: transcribed once, by this turn, not again in the background.
                await services.storage.groups.set_transcript(chat_id, reply_to, turn.reply.transcript, ok=True)
        return True
    except ParleyError as exc:
        outcome = type(exc).__name__
        level = logging.INFO if isinstance(exc, BudgetExceeded | VoiceTooLong) else logging.WARNING
        log.log(level, "chat=%s message=%s %s: %s", chat_id, reply_to, outcome, exc)
        return await run.fail(exc, reply_to=reply_to)
    except TelegramError as exc:
        outcome = type(exc).__name__
        log.warning("chat=%s message=%s Telegram error: %s", chat_id, reply_to, exc)
        await run.say(texts.explain(ParleyError()), reply_to=reply_to)
    except Exception:
        outcome = "bug"
        log.exception("chat=%s message=%s unexpected failure", chat_id, reply_to)
        await run.say(texts.explain(ParleyError()), reply_to=reply_to)
    finally:
        if outcome != "ok":
            services.metrics.error(outcome)
        steps = " ".join(f"{name}={timings[name] * 1000:.0f}ms" for name in sorted(timings, key=_STEP_ORDER.index))
        log.info(
            "chat=%s message=%s job=%s kind=%s %s total=%.0fms outcome=%s",
            chat_id,
            reply_to,
            run.job_id,
            kind,
            steps,
            (time.perf_counter() - started) * 1000,
            outcome,
        )
    return False


def another_answer_keyboard(user_id: int, message_id: int, thread_id: int) -> InlineKeyboardMarkup:
    data = AnotherAnswer(user_id=user_id, message_id=message_id, thread_id=thread_id).pack()
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("Try another answer"), callback_data=data)]])


def _button_key(request: TurnRequest) -> str:
    return f"again:{request.chat_id}:{request.user_id}:{request.thread_id}"


async def _move_button(run: Run, request: TurnRequest, sent: Message) -> None:
    """Only the latest reply carries the button: take it off the one before, remember this one's."""
    cache = run.services.storage.cache
    key = _button_key(request)
    try:
        before = await cache.get(key)
        await cache.put(key, str(sent.message_id), user_id=request.user_id)
    except Exception:  # the reply is out; a stale button only answers "only the latest"
        log.exception("chat=%s could not keep track of the latest reply's button", run.chat_id)
        return
    if before and before.isdigit() and int(before) != sent.message_id:
        await _drop_button(run, int(before))


async def _drop_button(run: Run, message_id: int) -> None:
    try:
        await run.bot.edit_message_reply_markup(run.chat_id, message_id, reply_markup=None)
    except TelegramError as exc:  # already without it, or deleted: nothing to take off
        log.debug("chat=%s button of message %s not removed: %s", run.chat_id, message_id, exc)


async def start_afresh(job: Reset, run: Run) -> bool:
    had_context = await run.services.engine.reset(run.chat_id, job.user_id, job.thread_id or 0)
    return await run.say(texts.RESET_DONE if had_context else texts.RESET_NOTHING)


async def _download_voice(run: Run, message: Message, timings: dict[str, float]) -> bytes:
    voice = media_of(message)
    if voice is None:
        raise ParleyError("no audio in the message")
    local = run.services.settings.telegram.local_bot_api
    if voice.file_size is not None and voice.file_size > DOWNLOAD_LIMIT_BYTES and not local:
        raise AudioTooLarge(f"voice note of {voice.file_size} bytes", user_message=texts.TOO_LARGE)
    limit, declared = run.services.settings.spend.max_voice_seconds, voice.duration
    if declared > limit:  # refused before the download (and checked again after conversion)
        raise VoiceTooLong(declared, limit)
    started = time.perf_counter()
    data = await download(run.bot, voice, local=local)
    timings["download"] = time.perf_counter() - started
    return data


async def _touch(run: Run, user: User) -> None:
    await run.services.storage.users.touch(
        user.id, first_name=user.first_name, username=user.username, language_code=user.language_code
    )


BUTTONS = (Button(AnotherAnswer, again_tapped),)
