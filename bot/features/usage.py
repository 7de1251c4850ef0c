"""/usage: a person's own tokens and cost, per period and per model, and what is left of their budgets."""

from __future__ import annotations

from dataclasses import dataclass

from bot import texts
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from parley.prices import base_model
from storage.usage import ModelTotals


@dataclass(frozen=True, slots=True)
class Usage(Payload, kind="usage"):
    user_id: int


def usage(got: Incoming) -> Usage:
    return Usage(user_id=got.user.id)


async def report(job: Usage, run: Run) -> bool:
    spend = run.services.engine.spend
    periods = await spend.totals(job.user_id)
    by_model = merge_snapshots(periods[-1][1])
    allowances = [] if spend.exempt(job.user_id) else await spend.allowances(job.user_id)
    return await run.say(texts.usage_report(periods, by_model, allowances, spend.zone.key))


def merge_snapshots(totals: list[ModelTotals]) -> list[ModelTotals]:
    """One line per model: 'gpt-audio-2025-08-28' counts as gpt-audio."""
    merged: dict[str, ModelTotals] = {}
    for t in totals:
        name = base_model(t.model)
        m = merged.get(name, ModelTotals(name))
        merged[name] = ModelTotals(
            name, m.calls + t.calls, m.text_in + t.text_in, m.audio_in + t.audio_in, m.cached + t.cached,
            m.text_out + t.text_out, m.audio_out + t.audio_out, m.cost_usd + t.cost_usd,
        )  # fmt: skip
    return sorted(merged.values(), key=lambda t: t.cost_usd, reverse=True)
