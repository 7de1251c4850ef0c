"""The conversation: a voice note or text in, a spoken reply out; /reset; and, in groups, answering when
addressed (a mention of the bot, or a reply to one of its messages)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from telegram import Message, User
from telegram.error import TelegramError

from bot import texts
from bot.addressing import addressed_to, without_mention
from bot.intake import Incoming, Intake
from bot.jobs import Payload
from bot.media import download, media_of
from bot.replies import Run
from bot.sender import ReplyProgress, send_reply
from parley.engine import TurnRequest
from parley.errors import AudioTooLarge, ParleyError, VoiceTooLong
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


# --- handlers --------------------------------------------------------------------------------------


def converse(got: Incoming) -> Converse:
    return Converse(message=got.message.to_dict())


def reset(got: Incoming) -> Reset:
    return Reset(user_id=got.user.id, thread_id=got.thread_id or 0)


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
    chat_id, user = message.chat_id, message.from_user
    if user is None:  # handlers only queue messages with a sender
        return True
    if message.sender_chat is not None:
        # Sent as the group (an anonymous admin) or a channel: whoever it is cannot be told apart from the
        # next one, so no conversation (memory, budget) is kept with them; they are told so, at no cost.
        return await run.say(texts.ANONYMOUS_SENDER, reply_to=message.message_id)
    services = run.services
    kind = "voice" if media_of(message) else "text"
    thread = message.message_thread_id if message.is_topic_message else None
    timings: dict[str, float] = {}
    outcome = "ok"
    started = time.perf_counter()
    try:
        await _touch(run, user)
        async with ReplyProgress(
            run.bot,
            chat_id,
            reply_to=message.message_id,
            notice_after=services.settings.operations.slow_notice_seconds,
        ) as progress:
            audio = await _download_voice(run, message, timings) if media_of(message) else None
            preferences = await services.preferences.of(user.id)
            request = TurnRequest(
                chat_id=chat_id,
                user_id=user.id,
                preferences=preferences,
                message_id=message.message_id,
                text=job.text if job.text is not None else message.text,
                audio=audio,
                thread_id=thread or 0,
            )
            turn = await services.engine.respond(request)
            await progress.stop()
            try:
                sending = time.perf_counter()
                mode = preferences.reply_mode
                await send_reply(run.bot, chat_id, message.message_id, turn.reply, thread_id=thread, mode=mode)
                await run.delivered()
                timings["send"] = time.perf_counter() - sending
            except BaseException:
                await turn.abandon()
                raise
            await turn.finish()
            timings.update(turn.timings)
            if audio is not None and chat_id != user.id and turn.reply.transcript is not None:
                # The group log's copy of the note: transcribed once, by this turn, not again in the background.
                await services.storage.groups.set_transcript(
                    chat_id, message.message_id, turn.reply.transcript, ok=True
                )
        return True
    except ParleyError as exc:
        outcome = type(exc).__name__
        level = logging.INFO if isinstance(exc, BudgetExceeded | VoiceTooLong) else logging.WARNING
        log.log(level, "chat=%s message=%s %s: %s", chat_id, message.message_id, outcome, exc)
        return await run.fail(exc, reply_to=message.message_id)
    except TelegramError as exc:
        outcome = type(exc).__name__
        log.warning("chat=%s message=%s Telegram error: %s", chat_id, message.message_id, exc)
        await run.say(texts.explain(ParleyError()), reply_to=message.message_id)
    except Exception:
        outcome = "bug"
        log.exception("chat=%s message=%s unexpected failure", chat_id, message.message_id)
        await run.say(texts.explain(ParleyError()), reply_to=message.message_id)
    finally:
        if outcome != "ok":
            services.metrics.error(outcome)
        steps = " ".join(f"{name}={timings[name] * 1000:.0f}ms" for name in sorted(timings, key=_STEP_ORDER.index))
        log.info(
            "chat=%s message=%s job=%s kind=%s %s total=%.0fms outcome=%s",
            chat_id,
            message.message_id,
            run.job_id,
            kind,
            steps,
            (time.perf_counter() - started) * 1000,
            outcome,
        )
    return False


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
