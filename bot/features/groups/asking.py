"""Questions about a summary: a reply to a summary or digest (or to an answer about one), typed or spoken, is
answered from the same span of messages — spoken, with the messages it rests on linked — and costs like any
call: the per-chat rate limit, the budgets before the call, the ledger after."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from telegram import Message

from bot import texts
from bot.features.groups.cite import render, send_cited
from bot.features.groups.payloads import AskSummary
from bot.intake import Incoming, Intake
from bot.media import download, media_of
from bot.replies import Run
from bot.sender import CAPTION_LIMIT, StatusMessage
from parley.audio.uploads import for_transcription
from parley.citations import Point
from parley.errors import ParleyError

log = logging.getLogger(__name__)

SPAN_SLACK = 0.001
"""The span is stored as the first and last message's times; the last one itself belongs in it."""


async def about_summary(message: Message, intake: Intake) -> bool:
    """A reply to one of the bot's summaries becomes a question about it (and nothing else answers it)."""
    replied, user = message.reply_to_message, message.from_user
    bot = message.get_bot()
    if replied is None or user is None or replied.from_user is None or replied.from_user.id != bot.id:
        return False
    media = media_of(message)
    if not message.text and media is None:
        return False
    groups = intake.edge.services.storage.groups
    if await groups.summary_span(message.chat_id, replied.message_id) is None:
        return False
    got = Incoming(message=message, user=user, chat=message.chat)
    text = message.text
    if text and bot.username:
        text = text.replace(f"@{bot.username}", "").strip() or text
    await intake.accept(
        got,
        AskSummary(
            summary_message_id=replied.message_id,
            user_id=user.id,
            text=text if media is None else None,
            voice=message.to_dict() if media is not None else None,
            message_id=message.message_id,
            thread_id=got.thread_id,
        ),
    )
    return True


async def answer_question(job: AskSummary, run: Run) -> bool:
    services, chat_id = run.services, run.chat_id
    reply_to, thread = job.message_id, job.thread_id
    groups = services.storage.groups
    span = await groups.summary_span(chat_id, job.summary_message_id)
    messages = await groups.between(chat_id, span.first_at, span.last_at + SPAN_SLACK) if span else []
    if span is None or not messages:
        return await run.say(texts.ASK_NOTHING, reply_to=reply_to, thread_id=thread)
    summarizer, spend = services.summarizer, services.engine.spend
    zone = ZoneInfo(services.settings.groups.timezone)
    estimate = spend.prices.estimate_reply(
        services.model.model, text_tokens=min(summarizer.estimate_tokens(messages), summarizer.chunk_tokens),
        audio_seconds=30,
    )  # fmt: skip
    async with StatusMessage(run.bot, chat_id, texts.reading(len(messages), None), reply_to=reply_to, thread_id=thread):
        try:
            async with spend.metered(user_id=job.user_id, chat_id=chat_id, estimate=estimate) as record:
                question = job.text or await _transcribed(job, run)
                answer = await summarizer.answer(
                    question, messages, voice=services.settings.model.voice, timezone=zone.key, record=record
                )
            if len(answer.text) > CAPTION_LIMIT:  # the whole answer goes in the text, the voice gets a title
                pages, caption = render([Point(answer.text, answer.sources)], chat_id), texts.ANSWER_CAPTION
            else:
                pages = render([Point(texts.SOURCES, answer.sources)], chat_id) if answer.sources else []
                caption = answer.text
            sent = await run.send(
                "answer",
                lambda: send_cited(
                    run.bot, chat_id, answer.reply, pages, caption=caption, reply_to=reply_to, thread_id=thread
                ),
                reply_to=reply_to,
                thread_id=thread,
            )
            if sent is None:
                return False
            await run.delivered()
            await groups.remember_summary(chat_id, sent, span.first_at, span.last_at)  # follow-ups too
        except ParleyError as exc:
            log.warning("chat=%s question about a summary failed: %s", chat_id, exc)
            return await run.fail(exc, reply_to=reply_to, thread_id=thread)
    log.info("chat=%s question about a summary of %d messages answered", chat_id, len(messages))
    return True


async def _transcribed(job: AskSummary, run: Run) -> str:
    """A spoken question's words (its transcription goes in the ledger like any other)."""
    services = run.services
    media = media_of(Message.de_json(job.voice, run.bot)) if job.voice else None
    if media is None:
        raise ParleyError("a spoken question without audio", user_message=texts.DOWNLOAD_FAILED)
    data = await download(run.bot, media, local=services.settings.telegram.local_bot_api)
    wav = await services.audio.to_model_wav(data)
    text, usage = await services.model.transcribe(for_transcription(wav))
    await services.engine.spend.record(
        user_id=job.user_id, chat_id=run.chat_id, purpose="transcription", usage=usage, audio_seconds=wav.duration
    )
    if not text.strip():
        raise ParleyError("an empty transcription", user_message=texts.ASK_UNHEARD)
    return text
