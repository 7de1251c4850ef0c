"""The conversation engine: one turn in, one reply out. It knows nothing of Telegram.

History goes to the model as text (transcripts), only the current voice note travels as audio: audio
tokens cost far more than text, and a past note is worth no more to the model than its words.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from parley.actions.loop import SpendMeter, ToolScope, ToolTurn, converse
from parley.actions.runner import Toolbox
from parley.audio import AudioConverter, WavAudio
from parley.audio.converter import MAX_DECODED_SECONDS, MODEL_SAMPLE_RATE, VoiceStream
from parley.audio.uploads import Upload, for_transcription
from parley.context import SUMMARY_MAX_TOKENS, Context, ContextBuilder
from parley.errors import AudioError, AudioTooLong, EmptyMessage, ParleyError, VoiceTooLong
from parley.jobs import MemoryBudget, Share, cancel_and_wait, settled
from parley.metrics import Metrics
from parley.model import PCM16_RATE, ModelClient, ModelReply
from parley.preferences import Preferences
from parley.spend import Spend
from storage import ForgetReport, NewTurn, Storage, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What the person said: text, or audio in any format ffmpeg reads (a voice note is OGG/Opus)."""

    chat_id: int
    user_id: int
    preferences: Preferences  # read once per turn (PreferenceBook.of), by whoever makes the request
    message_id: int | None = None
    text: str | None = None
    audio: bytes | None = None
    thread_id: int = 0
    persona: str = ""  # the persona's instructions, after the operator's prompt ('' for none)
    again: bool = False
    """A new answer to `message_id`, already answered: its earlier exchange is left out of the context and
    replaced by this one."""


@dataclass(slots=True)
class Reply:
    text: str
    voice_ogg: bytes | None
    voice_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    new_conversation: bool = False
    """The previous conversation had been idle past PARLEY_IDLE_RESET_HOURS: this reply starts a new one."""
    transcript: str | None = None
    """The voice note's words once known (set after delivery when they came late): a group log needs them."""


DEFAULT_AUDIO_MEMORY = 64 * 2**20

AUDIO_COPIES = 3
"""A recording the model hears is in memory about three times while its request is built and sent: the WAV,
its base64 in the request (a third larger) and the SDK's JSON body of it (dropped once sent)."""

COMPRESSION_GUESS = 16
"""Before decoding, a recording's WAV is guessed at this many times its file (a voice note's Opus is about
a tenth of 16 kHz PCM, MP3 and AAC less); decoding then tells the truth."""


def _audio_estimate(file_bytes: int, max_seconds: float | None) -> int:
    """What a recording will hold while the model hears it, guessed from its file before decoding."""
    longest = int((max_seconds or MAX_DECODED_SECONDS) * MODEL_SAMPLE_RATE * 2)
    return AUDIO_COPIES * min(file_bytes * COMPRESSION_GUESS, longest)


VOICE_GRACE_SECONDS = 1.0
"""Telegram rounds a note's declared duration to whole seconds: the decoded length may be that much longer."""

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def visible_text(text: str | None) -> str:
    """The text without zero-width characters or surrounding space: what a person would actually see."""
    return (text or "").translate(_INVISIBLE).strip()


def voice_placeholder(seconds: float) -> str:
    return f"[voice message, {max(1, math.ceil(seconds))} s]"


@dataclass(slots=True)
class _Heard:
    """A voice turn's recording once the model's request is built: its length, and its transcription, not
    yet started, the only holder of the recording itself."""

    seconds: float
    transcription: Coroutine[Any, Any, tuple[str, Usage | None]]
    started: bool = False

    def start(self) -> asyncio.Task[tuple[str, Usage | None]]:
        self.started = True
        return asyncio.create_task(self.transcription)

    def drop(self) -> None:
        """A transcription never started (the turn failed first) is closed, not left to be collected unawaited."""
        if not self.started:
            self.transcription.close()


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def lap(self, name: str, started: float) -> None:
        self.timings[name] = time.perf_counter() - started


class Turn:
    """A turn answered: `reply` to deliver, then `finish()` for what may wait until it is out (the note's
    late transcript, folding older turns into the summary), or `abandon()` when it could not be delivered."""

    def __init__(
        self,
        reply: Reply,
        *,
        engine: ConversationEngine,
        request: TurnRequest,
        clock: _Stopwatch,
        user_turn_id: int,
        late_transcript: asyncio.Task[tuple[str, Usage | None]] | None,
        fold_due: bool,
    ) -> None:
        self.reply = reply
        self._engine = engine
        self._request = request
        self._clock = clock
        self._user_turn_id = user_turn_id
        self._late_transcript = late_transcript
        self._fold_due = fold_due

    @property
    def timings(self) -> dict[str, float]:
        """Each step's seconds: convert, model, encode, and after finish() transcript_after, fold_after."""
        return self._clock.timings

    async def finish(self) -> None:
        """After delivery: store the note's words if they came late, fold if due. Never raises for either:
        the reply is out, and a lost transcript or fold only costs the next turn some context."""
        late, self._late_transcript = self._late_transcript, None
        engine, request = self._engine, self._request
        if late is not None:
            started = time.perf_counter()
            try:
                text, usage = await late
                await engine.storage.turns.set_text(self._user_turn_id, text, usage)
                self.reply.transcript = text
            except Exception:
                log.exception("chat=%s could not store the transcript after the reply", request.chat_id)
            self._clock.lap("transcript_after", started)
        if self._fold_due:
            self._fold_due = False
            started = time.perf_counter()
            await engine.fold(request)
            self._clock.lap("fold_after", started)

    async def abandon(self) -> None:
        """The reply was not delivered: stop the transcription nobody will store (the placeholder stays)."""
        late, self._late_transcript = self._late_transcript, None
        await cancel_and_wait([late])


class ConversationEngine:
    def __init__(
        self,
        *,
        storage: Storage,
        model: ModelClient,
        audio: AudioConverter,
        context: ContextBuilder,
        spend: Spend,
        metrics: Metrics,
        summary_model: str,
        keep_audio: bool,
        max_voice_seconds: float | None,
        stream_replies: bool,
        tools: Toolbox | None,
        tool_scope: ToolScope | None,
        tool_rounds: int,
        audio_memory: MemoryBudget | None = None,
    ) -> None:
        self.storage = storage
        self.audio_memory = audio_memory or MemoryBudget(DEFAULT_AUDIO_MEMORY)
        """What the recordings of turns in progress may hold at once (PARLEY_AUDIO_MEMORY_MB)."""
        self.model = model
        self.audio = audio
        self.context = context  # owns the system prompt, the history window and the token budget
        self.spend = spend
        self.metrics = metrics
        self.summary_model = summary_model
        self.keep_audio = keep_audio
        self.max_voice_seconds = max_voice_seconds
        self.stream_replies = stream_replies
        """Ask for the reply streamed and encode its voice note as it arrives (off for OpenAI-compatible
        servers that cannot stream audio)."""
        self.tools = tools if tools and tool_scope is not None else None
        """Offered to the model (PARLEY_TOOLS); None: plain replies, exactly as without tools."""
        self.tool_scope = tool_scope
        self.tool_rounds = tool_rounds

    async def reset(self, chat_id: int, user_id: int, thread_id: int = 0) -> bool:
        return await self.storage.turns.reset(chat_id, user_id, thread_id)

    async def forget(self, user_id: int) -> ForgetReport:
        return await self.storage.privacy.forget_user(
            user_id, forgotten_key=self.spend.forgotten_key(user_id), day_of=self.spend.day_of
        )

    async def respond(self, request: TurnRequest) -> Turn:
        """Convert, ask the model, remember, encode: the reply, and what is left to do once it is delivered.

        The transcription runs alongside the model call and never delays the reply: if it is not in by
        the time the reply is, the user's turn is stored with a placeholder, and `Turn.finish()` fills it in.
        """
        limit = self.max_voice_seconds + VOICE_GRACE_SECONDS + 1 if self.max_voice_seconds else None
        if request.audio is None:
            return await self._respond(request, None, limit)
        async with self.audio_memory.share(_audio_estimate(len(request.audio), limit)) as share:
            return await self._respond(request, share, limit)

    async def _respond(self, request: TurnRequest, share: Share | None, limit: float | None) -> Turn:
        clock = _Stopwatch()
        if request.audio is None and not visible_text(request.text):
            raise EmptyMessage("empty turn")
        # The history is read from the database while the note decodes in a codec worker: neither waits for
        # the other. The decoding stays in this coroutine, so a recording refused while decoding (a bomb's
        # megabytes in its traceback) is freed as soon as its error is handled, not held by a task's result.
        current: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        building = asyncio.create_task(
            self.context.build(
                request.chat_id,
                request.user_id,
                current,
                thread_id=request.thread_id,
                persona=request.persona,
                replacing=request.message_id if request.again else None,
            )
        )
        try:
            wav = await self._heard(request.audio, share, limit, clock) if request.audio is not None else None
            current.set_result({"role": "user", "content": self._user_content(request, wav)})
            context = await building
        finally:
            await settled(building)
            del current, building  # the user message is the context's now
        model = request.preferences.model
        seconds = wav.duration if wav is not None else 0.0
        estimate = self.spend.prices.estimate_reply(model, text_tokens=context.text_tokens, audio_seconds=seconds)
        if wav is not None:
            estimate += self.spend.prices.estimate_transcription(self.model.transcribe_model, audio_seconds=seconds)
        release = self.spend.once(await self.spend.reserve(request.user_id, estimate))  # BudgetExceeded: no call
        # From here on the WAV is the transcription's only if it is what the transcription sends (see
        # for_transcription): a voice note goes as its rebuilt OGG/Opus, and its WAV is freed here (the
        # model's request has its own copy, as base64); otherwise it is freed once the transcription's
        # request is done.
        heard = _Heard(seconds, self._transcribe(request, for_transcription(wav), seconds)) if wav is not None else None
        del wav
        try:
            return await self._answer(request, heard, context, clock, release)
        finally:
            if heard is not None:
                heard.drop()
            await release()  # usually released already, as soon as the reply was recorded

    async def _heard(self, audio: bytes, share: Share | None, limit: float | None, clock: _Stopwatch) -> WavAudio:
        """The recording as the model hears it, its memory share corrected to its real size."""
        started = time.perf_counter()
        try:
            wav = await self.audio.to_model_wav(audio, max_seconds=limit)
        except AudioTooLong as exc:  # the declared duration lied, or the container declares too much
            if limit is None or self.max_voice_seconds is None:
                raise
            raise VoiceTooLong(limit, self.max_voice_seconds) from exc
        clock.lap("convert", started)
        self.metrics.audio_conversion("to_model", clock.timings["convert"])
        if share is not None:
            share.resize(AUDIO_COPIES * len(wav.data))
        if self.max_voice_seconds and wav.duration > self.max_voice_seconds + VOICE_GRACE_SECONDS:
            raise VoiceTooLong(wav.duration, self.max_voice_seconds)  # the declared duration lied
        return wav

    async def _answer(
        self,
        request: TurnRequest,
        heard: _Heard | None,
        context: Context,
        clock: _Stopwatch,
        release: Callable[[], Awaitable[None]],
    ) -> Turn:
        started = time.perf_counter()
        text_only = request.preferences.reply_mode == "text"
        voice, model = request.preferences.voice, request.preferences.model
        # An audio model needs audio in or out: text-only replies are possible when the user spoke.
        speak = not text_only or heard is None
        # The reply is the critical path, so its request goes out first; the transcription rides alongside,
        # started once the reply's request is on its way (the two would otherwise share the uplink).
        # With tools, each round is streamed too; a round that ends in calls has its audio dropped.
        streamed = speak and not text_only and self.stream_replies
        seconds = heard.seconds if heard is not None else 0.0
        transcription: asyncio.Task[tuple[str, Usage | None]] | None = None

        def transcribe() -> None:
            nonlocal transcription
            if heard is not None and transcription is None:
                transcription = heard.start()

        # Once the model answers, the request is never sent again: its messages (the note as base64) can go,
        # not only once the reply has finished streaming.
        answer = asyncio.create_task(
            self._streamed(context.messages, voice, model, clock, on_sent=transcribe, on_answer=context.messages.clear)
            if streamed and self.tools is None
            else self._whole(
                request, context.messages, voice, model, speak, seconds, release, clock, streamed, on_sent=transcribe
            )
        )
        try:
            reply, finishing, tool_turn = await answer
        except BaseException:
            await cancel_and_wait([answer])
            await cancel_and_wait([transcription])  # the answer's request may have started it as it was stopped
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                _, finishing, _ = answer.result()  # answered just as this turn was stopped
                await cancel_and_wait([finishing])
            raise
        transcribe()  # (a reply that never sent its request has none to wait for)
        del answer  # the task would keep the reply (and its audio) alive as its result
        clock.lap("model", started)
        # The request (with the note as base64 text, a megabyte for 30 s) has done its work: a turn that still
        # has to encode, send and fold should not hold it.
        context.messages.clear()
        # Encoding the voice note (or the end of a streamed one) in a codec worker overlaps storing the turn
        # (SQLite, a thread).
        encoding = (
            asyncio.create_task(self._encode(reply.audio, clock))
            if reply.audio is not None and not streamed and not text_only  # nobody listens: no encode
            else finishing
        )
        voice_ogg: bytes | None = None
        try:
            if tool_turn is None:  # with tools, each round went into the ledger as it was made
                await self._record(request, "reply", reply.usage)
            await release()  # the real cost is in the ledger now: holding the estimate too would count it twice

            late_transcript: asyncio.Task[tuple[str, Usage | None]] | None = None
            if heard is None or transcription is None:
                user_text, user_usage = (request.text or "").strip(), None
            elif transcription.done():
                user_text, user_usage = transcription.result()
            else:  # not in yet: store a placeholder now and the words once the reply is out
                user_text, user_usage = voice_placeholder(heard.seconds), None
                late_transcript = transcription
            heard_seconds = heard.seconds if heard is not None else None
            user_turn_id = await self._remember(request, heard_seconds, user_text, user_usage, reply, tool_turn)
            if self.keep_audio and request.audio is not None:
                await self.storage.privacy.keep_audio(user_turn_id, request.user_id, request.audio)
            if encoding is not None:
                voice_ogg = await encoding
        except BaseException:
            await cancel_and_wait([encoding, transcription])
            raise
        result = Reply(
            text=reply.text,
            voice_ogg=voice_ogg,
            voice_seconds=(reply.audio_seconds or 0.0) if voice_ogg else 0.0,
            timings=clock.timings,
            new_conversation=context.new_conversation,
            transcript=user_text if heard is not None and late_transcript is None else None,
        )
        return Turn(
            result,
            engine=self,
            request=request,
            clock=clock,
            user_turn_id=user_turn_id,
            late_transcript=late_transcript,
            fold_due=context.fold_due,
        )

    async def _whole(
        self,
        request: TurnRequest,
        messages: list[dict[str, Any]],
        voice: str,
        model: str,
        speak: bool,
        audio_seconds: float,
        release: Callable[[], Awaitable[None]],
        clock: _Stopwatch,
        streamed: bool,
        *,
        on_sent: Callable[[], None],
    ) -> tuple[ModelReply, asyncio.Task[bytes | None] | None, ToolTurn | None]:
        """The reply in one piece (its WAV is encoded afterwards, alongside storing the turn); with tools,
        after the rounds of calls the model makes first, each held against the budgets and ledgered — each
        round streamed when `streamed`, the answering round's voice note encoded as its audio arrives.
        `on_sent`: called once the (first) request is on its way."""
        if self.tools is None or self.tool_scope is None:
            reply = await self.model.reply(messages, voice=voice, model=model, speak=speak, on_sent=on_sent)
            return reply, None, None
        on_sent()  # the rounds' requests are the tool loop's: the transcription does not wait for them
        voice_note: asyncio.Task[bytes | None] | None = None

        async def streamed_round(
            messages: list[dict[str, Any]],
            *,
            voice: str,
            model: str | None = None,
            speak: bool = True,
            tools: list[dict[str, Any]] | None = None,
            tool_choice: str | None = None,
        ) -> ModelReply:
            nonlocal voice_note
            if voice_note is not None:  # (only the last round's note is the answer's)
                await settled(voice_note)
            reply, voice_note, _ = await self._streamed(
                messages, voice, model or self.model.model, clock, tools=tools, tool_choice=tool_choice
            )
            return reply

        tool_context = await self.tool_scope.context(
            chat_id=request.chat_id, user_id=request.user_id, thread_id=request.thread_id
        )
        meter = SpendMeter(
            self.spend, user_id=request.user_id, chat_id=request.chat_id, model=model, audio_seconds=audio_seconds,
            release_first=release,
        )  # fmt: skip
        try:
            turn = await converse(
                self.model, messages, toolbox=self.tools, context=tool_context, meter=meter,
                max_rounds=self.tool_rounds, voice=voice, model_name=model, speak=speak,
                ask=streamed_round if streamed else None,
            )  # fmt: skip
        except BaseException:
            if voice_note is not None:
                await settled(voice_note)
            raise
        finally:
            await meter.release()
        return turn.reply, voice_note, turn

    async def _streamed(
        self,
        messages: list[dict[str, Any]],
        voice: str,
        model: str,
        clock: _Stopwatch,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        on_sent: Callable[[], None] | None = None,
        on_answer: Callable[[], None] | None = None,
    ) -> tuple[ModelReply, asyncio.Task[bytes | None] | None, None]:
        """The reply streamed, its voice note encoded on a codec worker as the audio arrives, so the note is
        ready when the model's last chunk is. If the encoder fails, the words still come (as text). A reply
        that is calls to tools has no voice note: what it may have said is not the answer. The encoder is
        opened while the request goes out: it is first needed when the model speaks. The note is returned
        still being finished (its last audio encoded), which the caller overlaps with storing the turn.
        `on_answer` is called once, with the reply's first audio."""
        opening = asyncio.create_task(self.audio.open_voice_stream(rate=PCM16_RATE))
        encoder: VoiceStream | None = None
        opened = False

        async def ready() -> VoiceStream | None:
            nonlocal encoder, opened
            if not opened:
                opened = True
                try:
                    encoder = await opening
                except AudioError as exc:
                    log.warning("could not start encoding the reply, it will go out as text: %s", exc)
            return encoder

        async def on_audio(pcm: bytes) -> None:
            nonlocal encoder, on_answer
            if on_answer is not None:
                answering, on_answer = on_answer, None
                answering()
            if await ready() is not None and encoder is not None:
                try:
                    await encoder.add(pcm)
                except AudioError as exc:  # the stream is closed by now; the reply goes on as text
                    log.warning("could not encode the reply as a voice note, sending text: %s", exc)
                    encoder = None

        try:
            reply = await self.model.reply_stream(
                messages, voice=voice, model=model, on_audio=on_audio, tools=tools, tool_choice=tool_choice,
                on_sent=on_sent,
            )  # fmt: skip
        except BaseException:
            if await ready() is not None and encoder is not None:
                await encoder.abort()
            raise
        await ready()
        if reply.tool_calls and encoder is not None:
            await encoder.abort()
            encoder = None
        whole = ModelReply(
            text=reply.text,
            audio=None,
            usage=reply.usage,
            tool_calls=reply.tool_calls,
            streamed_seconds=reply.audio_seconds,
        )
        return whole, asyncio.create_task(self._finish(encoder, clock)) if encoder is not None else None, None

    async def _finish(self, encoder: VoiceStream, clock: _Stopwatch) -> bytes | None:
        """The end of a streamed reply's voice note (its last audio, and the pages back from the worker);
        None (the reply goes out as text) when the encoder fails."""
        started = time.perf_counter()
        try:
            return await encoder.finish()
        except AudioError as exc:
            log.warning("could not finish the reply's voice note, sending text: %s", exc)
            return None
        finally:
            clock.lap("encode", started)
            self.metrics.audio_conversion("to_voice", clock.timings["encode"])

    async def _encode(self, audio: WavAudio, clock: _Stopwatch) -> bytes | None:
        """The reply as a voice note; None (the reply goes out as text) when ffmpeg cannot make one."""
        started = time.perf_counter()
        try:
            return await self.audio.to_voice_ogg(audio)
        except AudioError as exc:
            log.warning("could not encode the reply as a voice note, sending text: %s", exc)
            return None
        finally:
            clock.lap("encode", started)
            self.metrics.audio_conversion("to_voice", clock.timings["encode"])

    async def fold(self, request: TurnRequest) -> None:
        """Fold older turns into the conversation's summary; a failure is logged, never raised."""

        async def summarise(messages: list[dict[str, Any]]) -> tuple[str, Usage]:
            return await self.model.text(messages, model=self.summary_model, max_tokens=SUMMARY_MAX_TOKENS)

        async def record(usage: Usage) -> None:
            await self._record(request, "summary", usage)

        try:
            await self.context.fold(request.chat_id, request.user_id, summarise, record, thread_id=request.thread_id)
        except Exception:  # the reply is out; the next turn simply carries fewer verbatim turns
            log.exception("chat=%s could not fold the conversation into its summary", request.chat_id)

    async def _record(
        self, request: TurnRequest, purpose: str, usage: Usage, audio_seconds: float | None = None
    ) -> None:
        """Ledger the call; a failure to write it is logged loudly but never costs the user their reply."""
        try:
            await self.spend.record(
                user_id=request.user_id, chat_id=request.chat_id, purpose=purpose, usage=usage,
                audio_seconds=audio_seconds,
            )  # fmt: skip
        except Exception:
            log.exception("chat=%s could not record the %s call in the usage ledger", request.chat_id, purpose)

    @staticmethod
    def _user_content(request: TurnRequest, wav: WavAudio | None) -> str | list[dict[str, Any]]:
        if wav is None:
            return (request.text or "").strip()
        return [
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(wav.data).decode("ascii"), "format": "wav"},
            }
        ]

    async def _transcribe(self, request: TurnRequest, upload: Upload, seconds: float) -> tuple[str, Usage | None]:
        """The note's words for future context; a placeholder when transcription fails (never fatal)."""
        try:
            text, usage = await self.model.transcribe(upload)
        except ParleyError as exc:
            log.warning("transcription failed, storing a placeholder: %s", exc)
            return voice_placeholder(seconds), None
        finally:
            del upload  # the recording is not kept while the ledger is written
        await self._record(request, "transcription", usage, audio_seconds=seconds)
        return (text or voice_placeholder(seconds)), usage

    async def _remember(
        self,
        request: TurnRequest,
        heard_seconds: float | None,
        user_text: str,
        transcription_usage: Usage | None,
        reply: ModelReply,
        tool_turn: ToolTurn | None = None,
    ) -> int:
        """Store the user's turn and the reply in one transaction; return the user turn's id."""
        tool_calls = json.dumps(tool_turn.record(), ensure_ascii=False) if tool_turn and tool_turn.outcomes else None
        kind = "voice" if heard_seconds is not None else "text"
        user_turn_id, _ = await self.storage.turns.add(
            [
                NewTurn(
                    chat_id=request.chat_id,
                    user_id=request.user_id,
                    role="user",
                    kind=kind,
                    text=user_text,
                    message_id=request.message_id,
                    audio_seconds=heard_seconds,
                    usage=transcription_usage,
                    thread_id=request.thread_id,
                ),
                NewTurn(
                    chat_id=request.chat_id,
                    user_id=request.user_id,
                    role="assistant",
                    kind="voice" if reply.audio_seconds is not None else "text",
                    text=reply.text,
                    message_id=request.message_id,  # the message it answers
                    audio_seconds=reply.audio_seconds,
                    usage=tool_turn.usage if tool_turn is not None and tool_turn.usage else reply.usage,
                    tool_calls=tool_calls,
                    thread_id=request.thread_id,
                ),
            ],
            # A job resumed after a crash between storing and delivering answers again: its new turns
            # replace the old pair, so the history holds what the user actually received, once.
            replacing_message=request.message_id,
        )
        return user_turn_id
