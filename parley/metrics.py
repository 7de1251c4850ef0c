"""Prometheus metrics: one object per process, built with the services and passed to whoever counts.

Each Metrics owns its own CollectorRegistry (never prometheus_client's global one), so two bots in one
process — the tests start many — never share or collide on counters. Names follow Prometheus'
conventions: counters end in `_total`, durations are histograms in seconds. The README lists them all.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from storage import Usage

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

MODEL_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
"""Model calls take seconds (a spoken reply) to a minute and a half (the default timeout)."""

AUDIO_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""ffmpeg conversions take tens of milliseconds for a voice note, seconds only for long or hostile audio."""

TOKEN_KINDS = ("prompt_text", "prompt_audio", "completion_text", "completion_audio", "cached")


class Metrics:
    """The counters, gauges and histograms Parley exports on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, open fds …
        self.updates = Counter("parley_updates", "Updates received from Telegram, by kind", ["kind"], registry=r)
        self.jobs_queued = Gauge("parley_jobs_queued", "Accepted jobs waiting for their turn", registry=r)
        self.jobs_in_flight = Gauge("parley_jobs_in_flight", "Jobs running now", registry=r)
        self.model_calls = Counter(
            "parley_model_calls", "Calls to the OpenAI API, by purpose and outcome", ["purpose", "outcome"], registry=r
        )
        self.model_seconds = Histogram(
            "parley_model_call_seconds",
            "Duration of calls to the OpenAI API (retries included), by purpose",
            ["purpose"],
            buckets=MODEL_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Histogram(
            "parley_audio_conversion_seconds",
            "Duration of ffmpeg conversions: to_model (voice note to WAV), to_voice (reply to OGG/Opus)",
            ["direction"],
            buckets=AUDIO_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "parley_tokens", "Tokens the API reported, by model and kind", ["model", "kind"], registry=r
        )
        self.errors = Counter(
            "parley_errors", "Failures that reached the user or the log, by error class", ["class"], registry=r
        )
        self.telegram_rate_limited = Counter(
            "parley_telegram_rate_limited", "Bot API answers 429 Too Many Requests (waited out and retried)", registry=r
        )
        self.telegram_reached = Gauge(
            "parley_telegram_api_reached", "1 once a Bot API request has succeeded since start-up", registry=r
        )
        self.reached_telegram = False
        for purpose in ("reply", "transcription"):  # present at zero from the start, so rates work at once
            self.model_seconds.labels(purpose)
        for direction in ("to_model", "to_voice"):
            self.audio_seconds.labels(direction)

    # --- recording ----------------------------------------------------------------------------------

    def watch_jobs(self, queued: Callable[[], float], in_flight: Callable[[], float]) -> None:
        """Read the scheduler's counts at scrape time (nothing to keep in step)."""
        self.jobs_queued.set_function(queued)
        self.jobs_in_flight.set_function(in_flight)

    def model_call(self, purpose: str, outcome: str, seconds: float) -> None:
        self.model_calls.labels(purpose, outcome).inc()
        self.model_seconds.labels(purpose).observe(seconds)

    def usage(self, usage: Usage) -> None:
        """Split the API's token counts into text and audio (the API reports totals and audio parts)."""
        counts = {
            "prompt_text": usage.prompt_tokens - usage.prompt_audio_tokens,
            "prompt_audio": usage.prompt_audio_tokens,
            "completion_text": usage.completion_tokens - usage.completion_audio_tokens,
            "completion_audio": usage.completion_audio_tokens,
            "cached": usage.cached_tokens,
        }
        for kind, count in counts.items():
            if count > 0:
                self.tokens.labels(usage.model, kind).inc(count)

    def audio_conversion(self, direction: str, seconds: float) -> None:
        self.audio_seconds.labels(direction).observe(seconds)

    def error(self, name: str) -> None:
        self.errors.labels(name).inc()

    def telegram_succeeded(self) -> None:
        if not self.reached_telegram:
            self.reached_telegram = True
            self.telegram_reached.set(1)

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4)."""
        return generate_latest(self.registry)
