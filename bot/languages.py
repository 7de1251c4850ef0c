"""Which language each chat is answered in, decided again for every update and every job.

In a private chat: the person's choice (/language), else the language of their Telegram app when Parley
ships it (or its base language), else PARLEY_LANGUAGE. In a group: the language a group admin chose, else
PARLEY_LANGUAGE — a group's members may each speak another, and its summaries should read the same to all.

The language of a person's app arrives with each update (`language_code`); the intake hands it over here,
and it is also kept with the user's row, so a job resumed after a restart still knows it.
"""

from __future__ import annotations

from parley.i18n.locales import SHIPPED, normalise
from storage import Storage

REMEMBERED = 10_000
"""App languages remembered in memory at most (one short string per person; forgotten all at once when full)."""


class Languages:
    def __init__(self, storage: Storage, default: str) -> None:
        self._storage = storage
        self.default = default
        self._app: dict[int, str | None] = {}

    def heard(self, user_id: int, language_code: str | None) -> bool:
        """Note the language of a person's app; True when it is new to this process (worth storing)."""
        if self._app.get(user_id, "") == language_code:
            return False
        if len(self._app) >= REMEMBERED:
            self._app.clear()
        self._app[user_id] = language_code
        return True

    async def of_chat(self, chat_id: int) -> str:
        """The language to answer `chat_id` in (a private chat's id is its person's user id)."""
        if chat_id < 0:
            chosen = await self._storage.groups.language(chat_id)
            return chosen if chosen in SHIPPED else self.default
        chosen, stored_code = await self._storage.users.languages(chat_id)
        if chosen in SHIPPED:
            return chosen
        code = self._app.get(chat_id, stored_code)
        return normalise(code) or self.default
