"""How each person wants Parley to answer: one record (voice, model, reply mode), read once per turn.

What is stored is what the person chose; what `of()` returns is what applies: a choice no longer offered
(the operator changed PARLEY_VOICES or PARLEY_MODELS) falls back to the default, as if never made.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage import Storage

REPLY_MODES = ("voice", "text", "both")
"""voice: a voice message with its transcript as caption; text: words only; both: the voice, then the words."""


@dataclass(frozen=True, slots=True)
class Preferences:
    voice: str
    model: str
    reply_mode: str  # one of REPLY_MODES


class PreferenceBook:
    """Reads and writes people's preferences, within what the operator offers."""

    def __init__(
        self,
        storage: Storage,
        *,
        voices: tuple[str, ...],
        default_voice: str,
        models: tuple[str, ...],
        default_model: str,
    ) -> None:
        self.storage = storage
        self.voices = voices
        self.default_voice = default_voice
        self.models = models
        self.default_model = default_model

    async def of(self, user_id: int) -> Preferences:
        stored = await self.storage.users.preferences(user_id)  # one row, one query
        voice, model, reply_mode = stored.voice, stored.model, stored.reply_mode
        return Preferences(
            voice=voice if voice is not None and voice in self.voices else self.default_voice,
            model=model if model is not None and model in self.models else self.default_model,
            reply_mode=reply_mode if reply_mode is not None and reply_mode in REPLY_MODES else "voice",
        )

    async def choose_voice(self, user_id: int, name: str) -> str | None:
        """Keep the user's voice; None (and nothing stored) when the name is not offered."""
        found = name.strip().lower()
        if found not in self.voices:
            return None
        await self.storage.users.update_preferences(user_id, voice=found)
        return found

    async def choose_model(self, user_id: int, name: str) -> str | None:
        """Keep the user's model; None (and nothing stored) when it is not one of PARLEY_MODELS."""
        found = next((m for m in self.models if m.lower() == name.strip().lower()), None)
        if found is not None:
            await self.storage.users.update_preferences(user_id, model=found)
        return found

    async def choose_reply_mode(self, user_id: int, mode: str) -> str | None:
        found = mode.strip().lower()
        if found not in REPLY_MODES:
            return None
        await self.storage.users.update_preferences(user_id, reply_mode=found)
        return found
