"""What the OpenAI stand-in records of every request, for assertions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..audio import WavInfo

__all__ = ["RecordedRequest"]


@dataclass
class RecordedRequest:
    """One request to the fake, with a parsed view of chat and transcription payloads."""

    method: str
    path: str
    headers: dict[str, str]
    started: float
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    finished: float | None = None
    status: int | None = None
    response: Any = None
    error: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    audio_inputs: list[WavInfo | bytes] = field(default_factory=list)
    audio_input_seconds: list[float] = field(default_factory=list)
    abandoned: bool = False
    """The client hung up before the answer (a cancelled request): it reached nobody."""
    query: dict[str, str] = field(default_factory=dict)
    """The query string (Azure requests carry api-version there)."""

    @property
    def kind(self) -> str:
        if self.path.endswith("/chat/completions"):
            return "chat"
        if self.path.endswith("/audio/transcriptions"):
            return "transcriptions"
        return "other"

    @property
    def model(self) -> str | None:
        if isinstance(self.json, dict):
            return self.json.get("model")
        return self.form.get("model")

    @property
    def usage(self) -> dict[str, Any] | None:
        """The usage the answer reported: the body's, or a stream's last chunk's (with include_usage)."""
        if isinstance(self.response, dict):
            return self.response.get("usage")
        if isinstance(self.response, list):
            return next((c["usage"] for c in reversed(self.response) if c.get("usage")), None)
        return None

    @property
    def answered_model(self) -> str | None:
        """The model the answer named (a dated snapshot, often): the body's, or a stream's chunks'."""
        if isinstance(self.response, dict):
            return self.response.get("model")
        if isinstance(self.response, list) and self.response:
            return self.response[0].get("model")
        return None
