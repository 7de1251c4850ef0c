"""What a model call costs: a price table (shipped as prices.json, or PARLEY_PRICES) applied to its usage.

Prices are per 1M tokens and per kind of token, because an audio token costs 10-20 times a text token and
a cost that lumps them together is wrong by that much. Costs are worked out when a call is recorded, so a
later price change never rewrites what was spent.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from storage import Usage

log = logging.getLogger(__name__)

_SNAPSHOT_RE = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_KINDS = ("text_in", "cached_in", "text_out", "audio_in", "audio_out", "per_minute")

AUDIO_IN_TOKENS_PER_SECOND = 10.0
"""OpenAI's audio models count about one input token per 100 ms of speech."""
AUDIO_OUT_TOKENS_PER_SECOND = 20.0
"""... and about twice that for the speech they produce."""
TEXT_TOKENS_PER_SECOND = 3.5
"""Words spoken per second (~2.5) in tokens: the transcript that comes with a reply or a transcription."""
EXPECTED_REPLY_SECONDS = 30.0
"""The system prompt asks for answers under about 30 s of speech: the reply an estimate budgets for."""


class PriceError(ValueError):
    """The price file is missing, unreadable or malformed (one plain sentence)."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens of each kind (per_minute: USD per minute of audio, for whisper-1)."""

    text_in: float = 0.0
    cached_in: float | None = None
    text_out: float = 0.0
    audio_in: float = 0.0
    audio_out: float = 0.0
    per_minute: float = 0.0


def base_model(name: str) -> str:
    """'gpt-audio-2025-08-28' -> 'gpt-audio': a dated snapshot is priced as its model."""
    return _SNAPSHOT_RE.sub("", name.strip().lower())


@dataclass(frozen=True, slots=True)
class PriceTable:
    taken: str
    models: dict[str, Price]
    fallback: str
    source: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    """Other names for priced models: Azure deployment names, mostly ("my-stt": "gpt-4o-mini-transcribe")."""

    @classmethod
    def shipped(cls) -> PriceTable:
        return cls.parse(resources.files("parley").joinpath("prices.json").read_text("utf-8"), "prices.json")

    @classmethod
    def load(cls, path: Path | None) -> PriceTable:
        """The operator's table (PARLEY_PRICES) or, without one, the shipped table."""
        if path is None:
            return cls.shipped()
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise PriceError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, where: str) -> PriceTable:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PriceError(f"{where} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict) or not data["models"]:
            raise PriceError(f'{where} needs a non-empty "models" object')
        models: dict[str, Price] = {}
        for name, entry in data["models"].items():
            if not isinstance(entry, dict) or set(entry) - set(_KINDS):
                raise PriceError(f"{where}: model {name!r} may only have {', '.join(_KINDS)}")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in entry.values()):
                raise PriceError(f"{where}: the prices of {name!r} must be numbers of at least 0")
            models[base_model(name)] = Price(**{k: float(v) for k, v in entry.items()})
        fallback = base_model(str(data.get("fallback") or next(iter(models))))
        if fallback not in models:
            raise PriceError(f"{where}: fallback {fallback!r} is not one of its models")
        aliases = data.get("aliases") or {}
        if not isinstance(aliases, dict) or any(base_model(str(m)) not in models for m in aliases.values()):
            raise PriceError(f'{where}: "aliases" must map names to models the file prices')
        return cls(taken=str(data.get("taken") or "unknown"), models=models, fallback=fallback,
                   source=str(data.get("source") or ""),
                   aliases={k.lower(): base_model(str(v)) for k, v in aliases.items()})  # fmt: skip

    def _name(self, model: str) -> str:
        return self.aliases.get(model.strip().lower()) or base_model(model)

    def knows(self, model: str) -> bool:
        return self._name(model) in self.models

    def price(self, model: str) -> Price:
        """The model's prices; an unknown model costs what the fallback does (never nothing)."""
        found = self.models.get(self._name(model))
        if found is None:
            log.debug("no price for model %r: priced as %s", model, self.fallback)
            return self.models[self.fallback]
        return found

    def cost(self, usage: Usage, *, audio_seconds: float | None = None) -> float:
        """USD for one call: each kind of token at its own price (cached input at the cached price)."""
        p = self.price(usage.model)
        cached = min(usage.cached_tokens, max(0, usage.prompt_tokens - usage.prompt_audio_tokens))
        text_in = max(0, usage.prompt_tokens - usage.prompt_audio_tokens - cached)
        text_out = max(0, usage.completion_tokens - usage.completion_audio_tokens)
        per_million = (
            text_in * p.text_in
            + cached * (p.text_in if p.cached_in is None else p.cached_in)
            + usage.prompt_audio_tokens * p.audio_in
            + text_out * p.text_out
            + usage.completion_audio_tokens * p.audio_out
        )
        return per_million / 1_000_000 + (audio_seconds or 0.0) / 60 * p.per_minute

    # --- estimates, before a call ----------------------------------------------------------------

    def estimate_reply(self, model: str, *, text_tokens: int, audio_seconds: float) -> float:
        """A spoken reply: the context as text, the note as audio, and an answer of the expected length."""
        audio_in = math.ceil(audio_seconds * AUDIO_IN_TOKENS_PER_SECOND)
        audio_out = math.ceil(EXPECTED_REPLY_SECONDS * AUDIO_OUT_TOKENS_PER_SECOND)
        words_out = math.ceil(EXPECTED_REPLY_SECONDS * TEXT_TOKENS_PER_SECOND)
        return self.cost(
            Usage(
                model=model,
                prompt_tokens=text_tokens + audio_in,
                prompt_audio_tokens=audio_in,
                completion_tokens=audio_out + words_out,
                completion_audio_tokens=audio_out,
            )
        )

    def estimate_transcription(self, model: str, *, audio_seconds: float) -> float:
        audio_in = math.ceil(audio_seconds * AUDIO_IN_TOKENS_PER_SECOND)
        words = math.ceil(audio_seconds * TEXT_TOKENS_PER_SECOND)
        usage = Usage(model=model, prompt_tokens=audio_in, prompt_audio_tokens=audio_in, completion_tokens=words)
        return self.cost(usage, audio_seconds=audio_seconds)
