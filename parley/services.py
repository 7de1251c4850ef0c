"""The services object: everything the bot needs, built once at start-up and passed in (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from parley.access import AccessPolicy
from parley.actions import PluginError, Toolbox
from parley.actions import load as load_tools
from parley.actions.scheduler import ReminderScheduler
from parley.actions.scope import CallerScope
from parley.audio import AudioConverter, find_ffmpeg
from parley.config import ConfigError, Settings
from parley.engine import ConversationEngine
from parley.jobs import ChatScheduler, MemoryBudget
from parley.metrics import Metrics
from parley.model import ModelClient
from parley.preferences import PreferenceBook
from parley.providers import build_context, build_spend, openai_client
from parley.summaries import GroupSummarizer
from parley.tools import VoiceTools
from storage import Storage

LONG_RECORDING_SECONDS = 4 * 3600.0
"""The voice tools take recordings up to four hours (a 20 MB voice note can hold more than one)."""


@dataclass(slots=True)
class Services:
    settings: Settings
    storage: Storage
    audio: AudioConverter
    model: ModelClient
    engine: ConversationEngine
    preferences: PreferenceBook
    scheduler: ChatScheduler
    access: AccessPolicy
    metrics: Metrics
    summarizer: GroupSummarizer  # /summary and /digest
    voice_tools: VoiceTools  # /transcribe, /tone, /speak: recordings of hours, not minutes
    tool_scope: CallerScope  # what the model's tools may reach in a turn: the caller's own data
    reminders: ReminderScheduler | None = None  # started by the edge, which knows how to deliver them

    @classmethod
    def build(cls, settings: Settings, storage: Storage) -> Services:
        """Everything else around an opened database (opening it is where start-up usually fails)."""
        metrics = Metrics()
        try:
            tools = Toolbox(
                load_tools(settings.actions.enabled),
                timeout=settings.actions.timeout_seconds,
                result_chars=settings.actions.result_chars,
                secrets=settings.secrets,
            )
        except PluginError as exc:
            raise ConfigError([f"PARLEY_TOOLS: {exc}"]) from exc
        tool_scope = CallerScope(storage, is_admin=lambda user_id: user_id in settings.access.admins)
        audio = AudioConverter(find_ffmpeg(), timeout=settings.operations.ffmpeg_timeout_seconds)
        client = openai_client(settings)  # OpenAI, or Azure OpenAI when configured
        model = ModelClient(
            client,
            model=settings.model.name,
            transcribe_model=settings.model.transcribe_model,
            metrics=metrics,
            lift_audio=True,  # openai_client's HTTP client puts the recordings back in place
        )
        preferences = PreferenceBook(
            storage,
            voices=settings.model.voices,
            default_voice=settings.model.voice,
            models=settings.model.choices or (settings.model.name,),
            default_model=settings.model.name,
        )
        engine = ConversationEngine(
            storage=storage,
            model=model,
            audio=audio,
            context=build_context(settings, storage),
            spend=build_spend(settings, storage, is_admin=lambda user_id: user_id in settings.access.admins),
            metrics=metrics,
            summary_model=settings.model.summary_model,
            keep_audio=settings.privacy.keep_audio,
            max_voice_seconds=settings.spend.max_voice_seconds,
            stream_replies=settings.model.stream,
            tools=tools,
            tool_scope=tool_scope,
            tool_rounds=settings.actions.rounds,
            audio_memory=MemoryBudget(settings.operations.audio_memory_mb * 2**20),
        )
        access = AccessPolicy(allowed=settings.access.allowed, admins=settings.access.admins, storage=storage)
        scheduler = ChatScheduler(max_concurrent=settings.operations.workers)
        metrics.watch_jobs(queued=lambda: scheduler.pending - scheduler.running, in_flight=lambda: scheduler.running)
        long_audio = audio.with_limits(
            timeout=settings.operations.ffmpeg_timeout_seconds * 10, max_seconds=LONG_RECORDING_SECONDS
        )
        summarizer = GroupSummarizer(
            model=model,
            audio=audio,
            summary_model=settings.model.summary_model,
            chunk_tokens=settings.groups.summary_chunk_tokens,
        )
        voice_tools = VoiceTools(
            model=model,
            audio=long_audio,
            summary_model=settings.model.summary_model,
            segment_seconds=settings.tools.segment_seconds,
        )
        return cls(
            settings=settings,
            storage=storage,
            audio=audio,
            model=model,
            engine=engine,
            preferences=preferences,
            scheduler=scheduler,
            access=access,
            metrics=metrics,
            summarizer=summarizer,
            voice_tools=voice_tools,
            tool_scope=tool_scope,
        )

    async def close(self) -> None:
        await self.audio.close()
        await self.model.close()
        await self.storage.close()
