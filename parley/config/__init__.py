"""Settings: small frozen groups read from the environment (and `.env`), validated once at start-up.

`groups.py` declares every setting once (variable, default, parser, one-line doc); this module reads them
all and adds the checks that span several settings. Every problem is reported as one plain line naming the
variable and what to do, so an operator can fix a deployment without reading a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from dotenv import dotenv_values

from parley.config.declare import Spec, raw, read_group, specs
from parley.config.groups import (
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_VOICES,
    FILL_IN,
    GROUPS,
    Access,
    Actions,
    Groups,
    Model,
    Operations,
    Privacy,
    Settings,
    Spend,
    Telegram,
    Tools,
)
from parley.config.parsers import Address

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_VOICES",
    "Access",
    "Actions",
    "Address",
    "ConfigError",
    "Groups",
    "Model",
    "Operations",
    "Privacy",
    "Settings",
    "Spend",
    "Telegram",
    "Tools",
    "declared",
    "load_settings",
    "read_environment",
]


class ConfigError(Exception):
    """Raised with every problem found, one plain line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def declared() -> list[Spec]:
    """Every setting's declaration, group by group: what the documentation must list."""
    return [spec for group in GROUPS for _, spec in specs(group)]


def read_environment(env_file: str | Path | None = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins, as python-dotenv does)."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def _model(env: Mapping[str, str], problems: list[str]) -> Model:
    """The model group, with the checks between its settings: Azure's pair, the key, the voice, the choices."""
    model = read_group(Model, env, problems)
    if (model.azure_endpoint is None) != (model.azure_api_key is None):
        problems.append("AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY must be set together (or neither)")
    if not model.api_key and model.azure_endpoint is None:
        problems.append(f"OPENAI_API_KEY is not set: {FILL_IN}")
    voice = model.voice if raw(env, "PARLEY_VOICE") else ("alloy" if "alloy" in model.voices else model.voices[0])
    if voice not in model.voices:
        problems.append(f"PARLEY_VOICE is {voice!r}, which is not one of PARLEY_VOICES ({', '.join(model.voices)})")
    return replace(model, voice=voice, choices=tuple(dict.fromkeys([model.name, *model.choices])))


def _operations(env: Mapping[str, str], problems: list[str], webhook: bool) -> Operations:
    """The operations group; webhook mode (the URL set, or `--webhook`) needs the URL and the secret."""
    operations = read_group(Operations, env, problems)
    url_given = raw(env, "PARLEY_WEBHOOK_URL") is not None
    if webhook and not url_given:
        problems.append("PARLEY_WEBHOOK_URL is not set: --webhook needs the public https:// URL Telegram posts to")
    if (webhook or url_given) and raw(env, "PARLEY_WEBHOOK_SECRET") is None:
        problems.append(
            "PARLEY_WEBHOOK_SECRET is not set: webhook mode needs one (16-256 letters, digits, _ or -; "
            "e.g. the output of `openssl rand -hex 32`)"
        )
    return operations


def load_settings(env: Mapping[str, str], *, webhook: bool = False) -> Settings:
    """Build validated settings from a mapping of variables; raise ConfigError listing every problem.

    `webhook` is `parley run --webhook`: it makes PARLEY_WEBHOOK_URL required.
    """
    problems: list[str] = []
    settings = Settings(
        telegram=read_group(Telegram, env, problems),
        access=read_group(Access, env, problems),
        model=_model(env, problems),
        spend=read_group(Spend, env, problems),
        privacy=read_group(Privacy, env, problems),
        groups=read_group(Groups, env, problems),
        tools=read_group(Tools, env, problems),
        operations=_operations(env, problems, webhook),
        actions=read_group(Actions, env, problems),
    )
    if problems:
        raise ConfigError(problems)
    return settings
