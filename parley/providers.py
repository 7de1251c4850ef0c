"""Which API Parley talks to, and what it may spend there: built once from the settings.

OpenAI by default; Azure OpenAI when AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY are set. On Azure the
SDK puts the `model` of each request into the URL as the deployment name, so PARLEY_MODEL, PARLEY_MODELS,
PARLEY_TRANSCRIBE_MODEL and PARLEY_SUMMARY_MODEL name deployments there, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from openai import AsyncAzureOpenAI, AsyncOpenAI

from parley.config import Settings
from parley.context import ContextBuilder
from parley.prices import PriceTable
from parley.spend import Limits, Spend
from storage import Storage


def openai_client(settings: Settings) -> AsyncOpenAI:
    """The SDK client for the configured provider, with Parley's timeout and retry policy."""
    if settings.azure_endpoint and settings.azure_api_key:
        return AsyncAzureOpenAI(
            azure_endpoint=settings.azure_endpoint,
            api_key=settings.azure_api_key,
            api_version=settings.openai_api_version,
            timeout=settings.model_timeout_seconds,
            max_retries=settings.model_retries,
        )
    return AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.model_timeout_seconds,
        max_retries=settings.model_retries,
    )


def build_spend(settings: Settings, storage: Storage, is_admin: Callable[[int], bool]) -> Spend:
    """Prices, ledger and budgets; admins are exempt from budgets unless PARLEY_BUDGET_ADMINS is true."""
    return Spend(
        storage.usage,
        PriceTable.load(settings.prices_path),
        limits=Limits(
            user_daily=settings.user_daily_budget_usd,
            user_monthly=settings.user_monthly_budget_usd,
            monthly=settings.monthly_budget_usd,
        ),
        zone=ZoneInfo(getattr(settings, "timezone", "UTC")),
        exempt=(lambda _user_id: False) if settings.budget_admins else is_admin,
    )


def build_context(settings: Settings, storage: Storage) -> ContextBuilder:
    return ContextBuilder(
        storage,
        system_prompt=settings.system_prompt,
        max_tokens=settings.context_tokens,
        history_turns=settings.history_turns,
        idle_reset_hours=settings.idle_reset_hours,
    )
