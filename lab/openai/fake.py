"""FakeOpenAI: the scenario façade tests and the benchmark drive.

Knobs say what the stand-in answers (latency, reply_text, reply_audio …), one-shot behaviours script the
next requests (queue_replies, fail_next, omit_audio_next, hang_next), and waits fail with a summary of the
recent requests. Validation lives in chat_checks.py, answers in chat_reply.py, HTTP in server.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .chat_tools import ToolCall
from .knob import Knob
from .records import RecordedRequest
from .server import OpenAIServer

__all__ = ["FakeOpenAI"]


class FakeOpenAI(OpenAIServer):
    """Loopback OpenAI API: give the SDK `base_url` and `api_key`."""

    latency: Knob[float] = Knob()
    latency_fn: Knob[Callable[[dict[str, Any]], float] | None] = Knob()
    transcription_latency: Knob[float] = Knob()
    reply_text: Knob[Callable[[dict[str, Any]], str] | None] = Knob()
    transcript_text: Knob[Callable[[bytes, str], str] | None] = Knob()
    seconds_per_char: Knob[float] = Knob()
    reply_audio: Knob[Callable[[str], bytes] | None] = Knob()
    first_chunk_share: Knob[float] = Knob()

    def __init__(self, api_key: str = "sk-test-lab-key-0123456789") -> None:
        super().__init__(api_key)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        """What AZURE_OPENAI_ENDPOINT is for the stand-in (the SDK appends /openai itself)."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting the next answers -------------------------------------------------------------------
    def queue_replies(self, *texts: str) -> None:
        """The next chat completions answer with these texts, in order (before reply_text/default)."""
        self.script.replies.extend(texts)

    def queue_tool_calls(self, *calls: tuple[str, dict[str, Any] | str]) -> None:
        """The next chat completion answers with these tool calls, (name, arguments) each, as one round
        (finish_reason "tool_calls"); call again for further rounds. Rounds come before any text reply.
        Arguments given as a str are sent as is (a model's broken JSON, say)."""
        self.script.tool_rounds.append([ToolCall(name, arguments) for name, arguments in calls])

    def cut_stream_next(self, after_chunks: int = 3, times: int = 1) -> None:
        """The next `times` streamed answers drop the connection after `after_chunks` chunks (no [DONE]),
        as networks and the API sometimes do mid-stream."""
        self.script.cut_streams.extend([after_chunks] * times)

    def omit_audio_next(self, times: int = 1) -> None:
        """Answer the next audio requests with text content and audio null (the real API sometimes does)."""
        self.script.omit_audio += times

    def hang_next(self, times: int = 1) -> None:
        """Never answer the next chat requests (until the server stops): for client timeout handling."""
        self.script.hang += times

    def expire_audio(self, audio_id: str | None = None) -> None:
        """Forget reply audio ids (all by default), as the real API does after `expires_at`."""
        if audio_id is None:
            self.script.audio_ids.clear()
        else:
            self.script.audio_ids.pop(audio_id, None)

    # -- what the application sent --------------------------------------------------------------------
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "chat"]

    def transcription_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "transcriptions"]

    def azure_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/openai/deployments/")]

    async def wait_requests(
        self,
        count: int = 1,
        kind: str = "chat",
        timeout: float = 15.0,  # noqa: ASYNC109
    ) -> list[RecordedRequest]:
        """Wait until `count` requests of `kind` have been answered."""
        await self.wait_for(
            lambda: sum(1 for r in self.requests if r.kind == kind and r.finished) >= count,
            timeout,
            what=f"{count} answered {kind} request(s)",
        )
        return [r for r in self.requests if r.kind == kind]

    def describe(self, last: int = 15) -> str:
        lines = [f"FakeOpenAI: {len(self.requests)} requests"]
        for req in self.requests[-last:]:
            state = "…" if req.finished is None else f"{req.status}"
            err = f" {req.error['message'][:150]}" if req.error else ""
            lines.append(f"  {req.method} {req.path} model={req.model} -> {state}{err}")
        if self.internal_errors:
            lines.append("LAB INTERNAL ERRORS:\n" + "\n".join(self.internal_errors))
        return "\n".join(lines)
