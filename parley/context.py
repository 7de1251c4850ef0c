"""Bounded context: what is sent to the model stays under a token budget however long the conversation.

A request is the system prompt (with a running summary of older turns), the most recent turns verbatim
as text, and the current turn (the only audio). When the turns not yet summarised outgrow the verbatim
window, the older ones are folded into the summary by a cheap text model, after the reply is delivered,
so the fold never delays an answer. Stored turns are never touched: only what is sent is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from parley import tokens
from parley.errors import ParleyError
from storage import Storage, StoredTurn, Usage

log = logging.getLogger(__name__)


def fold_slack(history_turns: int) -> int:
    """A fold leaves this much room in the verbatim window (a quarter of it, at least one exchange), so it
    runs every few exchanges rather than after every one."""
    return max(2, history_turns // 4)


SUMMARY_MAX_TOKENS = 300
SUMMARY_PROMPT = (
    "You keep the running memory of a spoken conversation between a user and Parley, a voice assistant. "
    "Merge the summary so far with the new turns into one updated summary, written in the conversation's "
    "language: who the user is and what they told about themselves, what was discussed and decided, open "
    "questions, and anything Parley promised. Keep names, numbers and dates exactly. At most 150 words, "
    "plain prose, no preamble."
)
SUMMARY_HEADER = "Summary of the earlier conversation (older turns are not repeated below):"

Summarise = Callable[[list[dict[str, Any]]], Awaitable[tuple[str, Usage]]]
"""Sends the fold request to the summary model; returns its text and usage."""
Record = Callable[[Usage], Awaitable[object]]
"""Puts the summary call into the usage ledger."""


@dataclass(slots=True)
class Context:
    messages: list[dict[str, Any]]
    text_tokens: int
    conversation_id: int | None
    fold_due: bool
    """Turns not yet summarised no longer all fit: fold them after the reply."""
    new_conversation: bool
    """The previous conversation was idle for longer than PARLEY_IDLE_RESET_HOURS and was ended."""


def history_messages(turns: list[StoredTurn]) -> list[dict[str, Any]]:
    return [{"role": turn.role, "content": turn.text} for turn in turns if turn.text]


def transcript(turns: list[StoredTurn]) -> str:
    return "\n".join(f"{'User' if t.role == 'user' else 'Parley'}: {t.text}" for t in turns if t.text)


class ContextBuilder:
    def __init__(
        self,
        storage: Storage,
        *,
        system_prompt: str,
        max_tokens: int,
        history_turns: int,
        idle_reset_hours: float | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.system_prompt = system_prompt
        self.max_tokens = max_tokens
        self.history_turns = history_turns
        self.idle_reset_seconds = idle_reset_hours * 3600 if idle_reset_hours else None
        self.now = now

    def system_message(self, summary: str, persona: str = "") -> dict[str, Any]:
        """The operator's prompt first, always; then the persona's instructions; then the summary."""
        parts = [self.system_prompt]
        if persona:
            parts.append(persona)
        if summary:
            parts.append(f"{SUMMARY_HEADER}\n{summary}")
        return {"role": "system", "content": "\n\n".join(parts)}

    async def build(
        self,
        chat_id: int,
        user_id: int,
        current: dict[str, Any] | Awaitable[dict[str, Any]],
        *,
        thread_id: int = 0,
        persona: str = "",
        replacing: int | None = None,
    ) -> Context:
        """Summary, then as many recent turns as fit (newest first, at most PARLEY_HISTORY_TURNS), then now.
        `current` may be still in the making (a voice note being decoded): it is awaited once the history
        has been read, so the reads wait for the database while it is made, not after.
        `replacing`: the message a new answer is made for, whose earlier exchange is left out (it is what
        `current` asks again, and the answer it gets replaces it)."""
        state = await self.storage.turns.state(chat_id, user_id, thread_id)
        idle = (
            self.idle_reset_seconds is not None
            and state.last_turn_at is not None
            and self.now() - state.last_turn_at >= self.idle_reset_seconds
        )
        turns: list[StoredTurn] = []
        summary = "" if idle else state.summary
        if state.conversation_id is not None and not idle:
            turns = await self.storage.turns.after(
                state.conversation_id, state.through_turn_id, self.history_turns + 1
            )
            if replacing is not None:
                turns = [turn for turn in turns if turn.message_id != replacing]
        system = self.system_message(summary, persona)
        window = turns[-self.history_turns :] if self.history_turns else []
        if not isinstance(current, dict):
            current = await current
        if idle:  # only once `current` is made: a note that cannot be read leaves the new start to the next turn
            await self.storage.turns.reset(chat_id, user_id, thread_id)
            log.info("chat=%s user=%s idle: a new conversation starts", chat_id, user_id)
        everything = [system, *history_messages(window), current]
        if tokens.upper_bound(everything) <= self.max_tokens:  # fits for certain: no tokenizer needed
            return Context(
                messages=everything,
                text_tokens=tokens.rough_count(everything),
                conversation_id=None if idle else state.conversation_id,
                fold_due=len(turns) > self.history_turns,
                new_conversation=idle,
            )
        await asyncio.to_thread(tokens.o200k_base)  # loaded once, when first needed, off the event loop
        used = tokens.count_messages([system, current])
        kept: list[dict[str, Any]] = []
        for message in reversed(history_messages(window)):
            cost = tokens.count_messages([message]) - tokens.REPLY_PRIMING
            if used + cost > self.max_tokens:
                break
            kept.insert(0, message)
            used += cost
        fold_due = len(turns) > self.history_turns or len(kept) < len(history_messages(window))
        return Context(
            messages=[system, *kept, current],
            text_tokens=used,
            conversation_id=None if idle else state.conversation_id,
            fold_due=fold_due,
            new_conversation=idle,
        )

    async def fold(
        self, chat_id: int, user_id: int, summarise: Summarise, record: Record, *, thread_id: int = 0
    ) -> bool:
        """Fold the older unsummarised turns into the summary, leaving room in the verbatim window.

        Runs after delivery; a failure only means the next request carries fewer verbatim turns.
        """
        state = await self.storage.turns.state(chat_id, user_id, thread_id)
        if state.conversation_id is None:
            return False
        pending = await self.storage.turns.after(state.conversation_id, state.through_turn_id, 10_000)
        keep = self._keep_by_bytes(state.summary, pending)
        if keep is None:  # too close to call without counting: load the tokenizer off the loop
            await asyncio.to_thread(tokens.o200k_base)
            keep = self._keep(state.summary, pending)
        folding = pending[: len(pending) - keep]
        if not folding:
            return False
        request = [
            {"role": "system", "content": SUMMARY_PROMPT},
            {
                "role": "user",
                "content": f"Summary so far:\n{state.summary or '(none yet)'}\n\nNew turns:\n{transcript(folding)}",
            },
        ]
        try:
            text, usage = await summarise(request)
        except ParleyError as exc:
            log.warning("chat=%s could not fold %d turns into the summary: %s", chat_id, len(folding), exc)
            return False
        await record(usage)
        await self.storage.turns.set_summary(state.conversation_id, text.strip(), folding[-1].id)
        log.info("chat=%s folded %d turns into the summary", chat_id, len(folding))
        return True

    def _initial_keep(self, pending: list[StoredTurn]) -> int:
        keep = max(0, min(len(pending), self.history_turns - fold_slack(self.history_turns)))
        return keep - keep % 2  # whole exchanges: the verbatim part starts with what the user said

    def _keep_by_bytes(self, summary: str, pending: list[StoredTurn]) -> int | None:
        """`_keep`'s answer when byte counts (upper bounds of token counts) prove it, without the tokenizer:
        if the window fits a room computed from an over-count of the system prompt, it fits the real room."""
        keep = self._initial_keep(pending)
        room = (self.max_tokens - tokens.upper_bound([self.system_message(summary)])) // 2
        if keep == 0 or tokens.upper_bound(history_messages(pending[len(pending) - keep :])) <= room:
            return keep
        return None

    def _keep(self, summary: str, pending: list[StoredTurn]) -> int:
        """How many of the newest pending turns stay verbatim: the window less some slack, and few enough
        that they fit in half of what the token budget leaves after the system prompt and summary."""
        keep = self._initial_keep(pending)
        room = (self.max_tokens - tokens.count_messages([self.system_message(summary)])) // 2
        while keep and tokens.count_messages(history_messages(pending[len(pending) - keep :])) > room:
            keep -= 1
        return keep
