"""How each person wants Parley to answer: one record (voice, model, reply mode, language), read once per
turn, and the one writer of those choices.

What is stored is what the person chose; what `of()` returns is what applies: a choice no longer offered
(the operator changed PARLEY_VOICES or PARLEY_MODELS, or a language stopped shipping) falls back to the
default, as if never made.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley import personas
from parley.i18n.locales import SHIPPED
from storage import Storage

REPLY_MODES = ("voice", "text", "both")
"""voice: a voice message with its transcript as caption; text: words only; both: the voice, then the words."""


@dataclass(frozen=True, slots=True)
class Preferences:
    voice: str
    model: str
    reply_mode: str  # one of REPLY_MODES
    language: str | None = None  # the locale chosen with /language; None: the app's language decides
    persona: str = personas.DEFAULT  # a built-in persona's key, or personas.CUSTOM
    persona_text: str | None = None  # the person's own instructions, kept even while a built-in applies


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
        voice, model, reply_mode, language = stored.voice, stored.model, stored.reply_mode, stored.language
        return Preferences(
            voice=voice if voice is not None and voice in self.voices else self.default_voice,
            model=model if model is not None and model in self.models else self.default_model,
            reply_mode=reply_mode if reply_mode is not None and reply_mode in REPLY_MODES else "voice",
            language=language if language in SHIPPED else None,
            persona=_persona(stored.persona, stored.persona_text),
            persona_text=stored.persona_text,
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

    async def choose_language(self, user_id: int, locale: str) -> str | None:
        """Keep the language Parley speaks with the person; None (nothing stored) when it does not ship."""
        if locale not in SHIPPED:
            return None
        await self.storage.users.update_preferences(user_id, language=locale)
        return locale

    async def choose_group_language(self, chat_id: int, locale: str) -> str | None:
        """A group's language (its admins choose it; the caller checks who asks)."""
        if locale not in SHIPPED:
            return None
        await self.storage.groups.set_language(chat_id, locale)
        return locale

    # --- personas ----------------------------------------------------------------------------------

    async def choose_persona(self, user_id: int, key: str) -> str | None:
        """A built-in persona, or back to the person's own instructions; None (nothing stored) otherwise."""
        if key == personas.CUSTOM and not (await self.of(user_id)).persona_text:
            return None
        if key != personas.CUSTOM and key not in personas.BY_KEY:
            return None
        await self.storage.users.update_preferences(user_id, persona=key)
        return key

    async def write_persona(self, user_id: int, text: str) -> bool:
        """The person's own instructions, which then apply; False (nothing stored) when they are too long."""
        if len(text.strip()) > personas.MAX_INSTRUCTION_CHARS or not text.strip():
            return False
        await self.storage.users.update_preferences(user_id, persona=personas.CUSTOM, persona_text=text.strip())
        return True

    async def group_persona(self, chat_id: int) -> tuple[str | None, str | None]:
        """(the group's persona, the group's own instructions); (None, …) when its admins never chose one."""
        key, text = await self.storage.groups.persona(chat_id)
        return (_persona(key, text) if key is not None else None), text

    async def choose_group_persona(self, chat_id: int, key: str) -> str | None:
        """A group's persona (its admins choose it; the caller checks who asks)."""
        if key == personas.CUSTOM and not (await self.storage.groups.persona(chat_id))[1]:
            return None
        if key != personas.CUSTOM and key not in personas.BY_KEY:
            return None
        await self.storage.groups.set_persona(chat_id, key)
        return key

    async def write_group_persona(self, chat_id: int, text: str) -> bool:
        if len(text.strip()) > personas.MAX_INSTRUCTION_CHARS or not text.strip():
            return False
        await self.storage.groups.set_persona(chat_id, personas.CUSTOM, text.strip())
        return True

    async def instruction(self, chat_id: int, preferences: Preferences) -> str:
        """What the model is told after the operator's prompt in this chat: in a group, the persona its
        admins chose (when they did), else the person's own."""
        if chat_id < 0:
            key, text = await self.group_persona(chat_id)
            if key is not None:
                return personas.instruction(key, text, group=True)
        return personas.instruction(preferences.persona, preferences.persona_text)


def _persona(key: str | None, text: str | None) -> str:
    """The persona that applies: a stored key still offered (custom only with its text), else the default."""
    if key == personas.CUSTOM:
        return key if text else personas.DEFAULT
    return key if key in personas.BY_KEY else personas.DEFAULT
