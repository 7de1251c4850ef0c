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
from parley.model_http import http_client
from parley.prices import PriceTable
from parley.spend import Limits, Spend
from storage import Storage


def openai_client(settings: Settings) -> AsyncOpenAI:
    """The SDK client for the configured provider, with Parley's timeout and retry policy."""
    if settings.model.azure_endpoint and settings.model.azure_api_key:
        return AsyncAzureOpenAI(
            azure_endpoint=settings.model.azure_endpoint,
            api_key=settings.model.azure_api_key,
            api_version=settings.model.api_version,
            timeout=settings.model.timeout_seconds,
            max_retries=settings.model.retries,
            http_client=http_client(),
        )
    return AsyncOpenAI(
        api_key=settings.model.api_key,
        base_url=settings.model.base_url,
        timeout=settings.model.timeout_seconds,
        max_retries=settings.model.retries,
        http_client=http_client(),
    )


def build_spend(settings: Settings, storage: Storage, is_admin: Callable[[int], bool]) -> Spend:
    """Prices, ledger and budgets; admins are exempt from budgets unless PARLEY_BUDGET_ADMINS is true."""
    return Spend(
        storage.usage,
        PriceTable.load(settings.spend.prices_path),
        limits=Limits(
            user_daily=settings.spend.user_daily_budget_usd,
            user_monthly=settings.spend.user_monthly_budget_usd,
            monthly=settings.spend.monthly_budget_usd,
        ),
        zone=ZoneInfo(settings.groups.timezone),
        exempt=(lambda _user_id: False) if settings.spend.budget_admins else is_admin,
        secret=settings.telegram.token.encode(),
    )


def build_context(settings: Settings, storage: Storage) -> ContextBuilder:
    return ContextBuilder(
        storage,
        system_prompt=settings.model.system_prompt,
        max_tokens=settings.spend.context_tokens,
        history_turns=settings.model.history_turns,
        idle_reset_hours=settings.spend.idle_reset_hours,
    )
