"""FakeOpenAI: a loopback stand-in for the parts of the OpenAI API Parley uses, driven by the real SDK.

It validates requests the way the real API does where an application can plausibly get them wrong (model
names, message shapes, input_audio formats, audio that does not decode -- including WAVs with broken RIFF
sizes --, voices, output formats, transcription uploads) and answers with the real error shapes, which the
SDK turns into the real exception classes. Replies carry real audio (a tone whose length follows the
transcript) so the application's audio path is exercised end to end. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import math
import re
import secrets
import string
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .audio import (
    AudioDecodeError,
    InvalidWav,
    WavInfo,
    _ffmpeg_ok,
    _is_mp3,
    decode_duration,
    make_wav,
    parse_wav,
    sniff_audio_format,
)
from .server import LabServer

__all__ = [
    "AUDIO_CHAT_MODELS",
    "CHAT_MODELS",
    "TRANSCRIPTION_MODELS",
    "VOICES",
    "FakeOpenAI",
    "RecordedRequest",
]

# alias -> snapshot the real API reports back in `model`
_ALIASES = {
    "gpt-audio": "gpt-audio-2025-08-28",
    "gpt-audio-mini": "gpt-audio-mini-2025-10-06",
    "gpt-4o-audio-preview": "gpt-4o-audio-preview-2025-06-03",
    "gpt-4o-mini-audio-preview": "gpt-4o-mini-audio-preview-2024-12-17",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
}
AUDIO_CHAT_MODELS = frozenset(
    {
        "gpt-audio",
        "gpt-audio-2025-08-28",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-4o-audio-preview",
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-audio-preview-2025-06-03",
        "gpt-4o-mini-audio-preview",
        "gpt-4o-mini-audio-preview-2024-12-17",
    }
)
TEXT_CHAT_MODELS = frozenset({"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4o-2024-08-06"})
CHAT_MODELS = AUDIO_CHAT_MODELS | TEXT_CHAT_MODELS
TRANSCRIPTION_MODELS = frozenset(
    {"gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1", "gpt-4o-transcribe-diarize"}
)
VOICES = tuple("alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split())
OUTPUT_FORMATS = ("wav", "aac", "mp3", "flac", "opus", "pcm16")
INPUT_AUDIO_FORMATS = ("wav", "mp3")
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
CONTENT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
# Top-level chat.completions parameters the real API knows; anything else is refused ("Unrecognized request
# argument"), which catches typos and parameters that belong to another endpoint.
CHAT_PARAMS = frozenset(
    {
        "model", "messages", "modalities", "audio", "frequency_penalty", "presence_penalty", "logit_bias",
        "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens", "n", "response_format", "seed",
        "service_tier", "stop", "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice",
        "parallel_tool_calls", "user", "store", "metadata", "reasoning_effort", "prediction", "function_call",
        "functions", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
        "prompt_cache_retention",
    }
)  # fmt: skip
_AZURE_PATH = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<endpoint>chat/completions|audio/transcriptions)$"
)
_AZURE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
TRANSCRIBE_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
TRANSCRIBE_LIMIT = 26_214_400
REPLY_RATE = 24_000

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_UNDECODABLE = "The audio file could not be decoded or its format is not supported."
_SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that! You can retry your request, or "
    "contact us through our help center at help.openai.com if the error persists."
)


@functools.lru_cache(maxsize=64)
def _reply_tone(seconds: float) -> bytes:
    """The reply's audio, made once per length: the stand-in's own CPU time stays out of what is measured."""
    return make_wav(seconds, REPLY_RATE, 330.0)


def _supported(values: tuple[str, ...] | list[str]) -> str:
    """'a', 'b', and 'c' -- the enumeration style of the real API's "Supported values are" messages."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def mask_key(key: str) -> str:
    """The API key as the real 401 message shows it: first 5 characters, stars, then the tail."""
    tail = 4 if len(key) > 12 else 2
    if len(key) <= 5 + tail:
        return key[:2] + "*" * max(len(key) - 2, 0)
    return key[:5] + "*" * (len(key) - 5 - tail) + key[-tail:]


class OpenAIAPIError(Exception):
    """An error answer in the real shape {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> OpenAIAPIError:
    return OpenAIAPIError(400, message, param=param, code=code)


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
    query: dict[str, str] = field(default_factory=dict)
    """The query string (Azure requests carry api-version there)."""
    """The client hung up before the answer (a cancelled request): it reached nobody."""

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


@dataclass
class _Fault:
    status: int
    message: str | None
    code: str | None
    times: int
    retry_after: float | None


class FakeOpenAI(LabServer):
    """Loopback OpenAI API: give the SDK `base_url` and `api_key`."""

    def __init__(self, api_key: str = "sk-test-lab-key-0123456789") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        # behaviour knobs
        self.latency: float = 0.0
        self.latency_fn: Callable[[dict[str, Any]], float] | None = None
        self.transcription_latency: float = 0.0
        self.reply_text: Callable[[dict[str, Any]], str] | None = None
        self.transcript_text: Callable[[bytes, str], str] | None = None
        self.seconds_per_char: float = 0.05
        self.reply_audio: Callable[[str], bytes] | None = None
        """Voices a reply: transcript in, 24 kHz mono WAV out (e.g. real speech); a tone when None."""
        self._replies: deque[str] = deque()
        self._faults: dict[str, list[_Fault]] = {"chat": [], "transcriptions": []}
        self._omit_audio = 0
        self._hang = 0
        self._audio_ids: dict[str, dict[str, Any]] = {}
        # Azure OpenAI: requests to /openai/deployments/{name}/... with an `api-key` header
        self.azure_api_key = "azure-test-lab-key-0123456789abcdef"
        self.azure_deployments: dict[str, str] = {}
        """Deployment name -> the model it serves (empty: no deployment exists, every Azure call is 404)."""

    # =====================================================================================================
    # test-facing API
    # =====================================================================================================
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue_replies(self, *texts: str) -> None:
        """The next chat completions answer with these texts, in order (before reply_text/default)."""
        self._replies.extend(texts)

    def fail_next(
        self,
        status: int,
        message: str | None = None,
        code: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
        path: str = "chat",
    ) -> None:
        """Make the next `times` requests to `path` ("chat" or "transcriptions") fail with `status`."""
        if path not in self._faults:
            raise ValueError(f"path must be one of {sorted(self._faults)}")
        self._faults[path].append(_Fault(status, message, code, times, retry_after))

    def omit_audio_next(self, times: int = 1) -> None:
        """Answer the next audio requests with text content and audio null (the real API sometimes does)."""
        self._omit_audio += times

    def hang_next(self, times: int = 1) -> None:
        """Never answer the next chat requests (until the server stops): for client timeout handling."""
        self._hang += times

    def expire_audio(self, audio_id: str | None = None) -> None:
        """Forget reply audio ids (all by default), as the real API does after `expires_at`."""
        if audio_id is None:
            self._audio_ids.clear()
        else:
            self._audio_ids.pop(audio_id, None)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "chat"]

    def transcription_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.kind == "transcriptions"]

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 15.0,  # noqa: ASYNC109 - a plain test deadline
        what: str = "condition",
    ) -> None:
        await self._poll_until(predicate, timeout, self.describe, what)

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

    # =====================================================================================================
    # HTTP plumbing
    # =====================================================================================================
    @staticmethod
    def _headers() -> dict[str, str]:
        return {"x-request-id": f"req_{secrets.token_hex(16)}", "openai-processing-ms": "12"}

    @property
    def azure_endpoint(self) -> str:
        """What AZURE_OPENAI_ENDPOINT is for the stand-in (the SDK appends /openai itself)."""
        return f"http://127.0.0.1:{self.port}"

    def azure_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/openai/deployments/")]

    def _check_azure(self, request: web.Request, record: RecordedRequest, deployment: str) -> str:
        """Azure's own checks, in its order: key, api-version, deployment. Returns the deployed model."""
        record.query = dict(request.query)
        if request.headers.get("api-key") != self.azure_api_key:
            raise OpenAIAPIError(
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource.",
                type=None,  # type: ignore[arg-type]
                code="401",
            )
        version = request.query.get("api-version")
        if not version:
            raise OpenAIAPIError(404, "Resource not found", type=None, code="404")  # type: ignore[arg-type]
        if not _AZURE_VERSION.match(version):
            raise OpenAIAPIError(404, "Resource not found", type=None, code="404")  # type: ignore[arg-type]
        model = self.azure_deployments.get(deployment)
        if model is None:
            raise OpenAIAPIError(
                404,
                "The API deployment for this resource does not exist. If you created the deployment within the "
                "last 5 minutes, please wait a moment and try again.",
                type=None,  # type: ignore[arg-type]
                code="DeploymentNotFound",
            )
        return model

    def _error_response(self, err: OpenAIAPIError, record: RecordedRequest | None) -> web.Response:
        body = err.body()
        if record is not None:
            record.status, record.error, record.response = err.status, body["error"], body
        return web.json_response(body, status=err.status, headers={**self._headers(), **err.headers})

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.strip():
            raise OpenAIAPIError(401, _MISSING_KEY)
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key != self.api_key:
            shown = mask_key(key or auth)
            raise OpenAIAPIError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            method=request.method, path=request.path, headers=dict(request.headers), started=time.monotonic()
        )
        self.requests.append(record)
        try:
            azure = _AZURE_PATH.match(request.path.rstrip("/"))
            if azure is not None:  # Azure OpenAI: deployment in the path, api-version in the query, api-key
                model = self._check_azure(request, record, azure["deployment"])
                if azure["endpoint"] == "chat/completions" and request.method == "POST":
                    return await self._chat(request, record, model_override=model)
                if azure["endpoint"] == "audio/transcriptions" and request.method == "POST":
                    return await self._transcriptions(request, record, model_override=model)
            self._check_auth(request)
            route = (request.method, request.path.rstrip("/"))
            if route == ("POST", "/v1/chat/completions"):
                response = await self._chat(request, record)
            elif route == ("POST", "/v1/audio/transcriptions"):
                response = await self._transcriptions(request, record)
            elif route == ("GET", "/v1/models"):
                response = self._json(record, self._models_list())
            elif request.method == "GET" and request.path.startswith("/v1/models/"):
                response = self._json(record, self._model(request.path[len("/v1/models/") :]))
            else:
                raise OpenAIAPIError(404, f"Invalid URL ({request.method} {request.path})")
            return response
        except OpenAIAPIError as err:
            return self._error_response(err, record)
        except (ConnectionResetError, asyncio.CancelledError):
            # The client hung up (e.g. it cancelled a request it no longer needs): not a lab failure.
            record.abandoned = True
            raise
        except Exception as exc:  # a bug in the lab itself: make it loud
            self.internal_errors.append(f"{request.path}: {''.join(traceback.format_exception(exc))}")
            return self._error_response(OpenAIAPIError(500, _SERVER_ERROR, type="server_error"), record)
        finally:
            record.finished = time.monotonic()
            self.signal.notify()

    def _json(self, record: RecordedRequest, body: Any) -> web.Response:
        record.status, record.response = 200, body
        return web.json_response(body, headers=self._headers())

    async def _maybe_fault(self, path: str) -> None:
        queue = self._faults[path]
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = str(fault.retry_after)
        if fault.status == 429 and fault.code == "insufficient_quota":
            raise OpenAIAPIError(
                429,
                fault.message
                or "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type="insufficient_quota",
                code="insufficient_quota",
                headers=headers,
            )
        if fault.status == 429:
            raise OpenAIAPIError(
                429,
                fault.message
                or "Rate limit reached for requests. Limit: 500 / min. Please try again in 1s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                type="requests",
                code=fault.code or "rate_limit_exceeded",
                headers=headers,
            )
        if fault.status >= 500:
            message = fault.message or (
                "The engine is currently overloaded, please try again later" if fault.status == 503 else _SERVER_ERROR
            )
            raise OpenAIAPIError(fault.status, message, type="server_error", code=fault.code, headers=headers)
        raise OpenAIAPIError(fault.status, fault.message or "Injected failure.", code=fault.code, headers=headers)

    # =====================================================================================================
    # /v1/models
    # =====================================================================================================
    @staticmethod
    def _model_obj(model_id: str) -> dict[str, Any]:
        owner = "openai-internal" if model_id == "whisper-1" else "system"
        return {"id": model_id, "object": "model", "created": 1_727_000_000, "owned_by": owner}

    def _models_list(self) -> dict[str, Any]:
        ids = sorted(CHAT_MODELS | TRANSCRIPTION_MODELS)
        return {"object": "list", "data": [self._model_obj(m) for m in ids]}

    def _model(self, model_id: str) -> dict[str, Any]:
        if model_id not in CHAT_MODELS | TRANSCRIPTION_MODELS:
            raise OpenAIAPIError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        return self._model_obj(model_id)

    # =====================================================================================================
    # /v1/chat/completions
    # =====================================================================================================
    async def _chat(
        self, request: web.Request, record: RecordedRequest, model_override: str | None = None
    ) -> web.Response:
        if request.content_type != "application/json":
            raise _invalid(
                f"Invalid Content-Type header ({request.content_type}), expected application/json.", code=None
            )
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
                "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
                "through our help center at help.openai.com.)",
                code=None,
            ) from exc
        record.json = body
        if self._hang > 0:
            self._hang -= 1
            await self.signal.wait_stopping()
            raise OpenAIAPIError(503, "The lab server is shutting down.", type="server_error")
        await self._maybe_fault("chat")
        if not isinstance(body, dict):
            raise _invalid("Invalid type for body: expected an object.", code="invalid_type")
        if model_override is not None:  # Azure: the deployment decides the model, whatever the body says
            body = {**body, "model": model_override}
        plan = await self._validate_chat(body, record)
        delay = self.latency_fn(body) if self.latency_fn else self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        return self._json(record, await self._chat_response(body, plan, record))

    async def _validate_chat(self, body: dict[str, Any], record: RecordedRequest) -> dict[str, Any]:
        model = body.get("model")
        if not model:
            raise _invalid("you must provide a model parameter", code=None)
        for name in body:
            if name not in CHAT_PARAMS:
                raise _invalid(f"Unrecognized request argument supplied: {name}", code=None)
        if not isinstance(model, str) or model not in CHAT_MODELS:
            raise OpenAIAPIError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        audio_model = model in AUDIO_CHAT_MODELS
        messages = body.get("messages")
        if messages is None:
            raise _invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
        if not isinstance(messages, list):
            raise _invalid(
                "Invalid type for 'messages': expected an array, but got an object instead.",
                "messages",
                "invalid_type",
            )
        if not messages:
            raise _invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                "array instead.",
                "messages",
                "empty_array",
            )
        record.messages = messages
        has_input_audio = False
        last_user_audio: list[float] = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                raise _invalid(
                    f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type"
                )
            role = msg.get("role")
            if role is None:
                raise _invalid(
                    f"Missing required parameter: 'messages[{i}].role'.",
                    f"messages[{i}].role",
                    "missing_required_parameter",
                )
            if role not in ROLES:
                raise _invalid(
                    f"Invalid value: '{role}'. Supported values are: {_supported(ROLES)}.",
                    f"messages[{i}].role",
                )
            content = msg.get("content")
            if role == "assistant" and content is None:
                audio = msg.get("audio")
                if not msg.get("tool_calls") and not (isinstance(audio, dict) and audio.get("id")):
                    raise _invalid(
                        "Invalid value for 'content': expected a string, got null.",
                        f"messages.[{i}].content",
                        None,
                    )
            elif content is None:
                raise _invalid(
                    f"Missing required parameter: 'messages[{i}].content'.",
                    f"messages[{i}].content",
                    "missing_required_parameter",
                )
            elif not isinstance(content, str | list):
                raise _invalid(
                    f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
                    "objects, but got an object instead.",
                    f"messages[{i}].content",
                    "invalid_type",
                )
            if role == "assistant" and isinstance(msg.get("audio"), dict):
                audio_id = msg["audio"].get("id")
                known = self._audio_ids.get(str(audio_id))
                if known is None or known["expires_at"] < time.time():
                    raise _invalid(f"Audio with ID {audio_id} not found.", f"messages[{i}].audio", None)
            if role == "tool" and not msg.get("tool_call_id"):
                raise _invalid(
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    f"messages[{i}].tool_call_id",
                    "missing_required_parameter",
                )
            if not isinstance(content, list):
                if role == "user":
                    last_user_audio = []
                continue
            if role == "user":
                last_user_audio = []
            allowed = {
                "user": ("text", "image_url", "input_audio", "file"),
                "assistant": ("text", "refusal"),
            }.get(role, ("text",))
            for j, part in enumerate(content):
                where = f"messages[{i}].content[{j}]"
                if not isinstance(part, dict):
                    raise _invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
                ptype = part.get("type")
                if ptype not in CONTENT_PART_TYPES:
                    raise _invalid(
                        f"Invalid value: '{ptype}'. Supported values are: {_supported(CONTENT_PART_TYPES)}.",
                        f"{where}.type",
                    )
                if ptype not in allowed:
                    raise _invalid(
                        f"Invalid value: '{ptype}'. Supported values are: {_supported(allowed)}.",
                        f"{where}.type",
                    )
                if ptype == "text" and not isinstance(part.get("text"), str):
                    raise _invalid(
                        f"Missing required parameter: '{where}.text'.",
                        f"{where}.text",
                        "missing_required_parameter",
                    )
                if ptype == "input_audio":
                    if not audio_model:
                        raise _invalid(
                            "Invalid content type. input_audio is only supported by certain models.",
                            f"messages.[{i}].content.[{j}].type",
                            None,
                        )
                    seconds = await self._check_input_audio(part.get("input_audio"), where, record)
                    has_input_audio = True
                    if role == "user":
                        last_user_audio.append(seconds)
        modalities = body.get("modalities") or ["text"]
        if not isinstance(modalities, list):
            raise _invalid("Invalid type for 'modalities': expected an array.", "modalities", "invalid_type")
        for k, mod in enumerate(modalities):
            if mod not in ("text", "audio"):
                raise _invalid(f"Invalid value: '{mod}'. Supported values are: 'text' and 'audio'.", f"modalities[{k}]")
        wants_audio = "audio" in modalities
        out_format = None
        if wants_audio:
            if not audio_model:
                raise _invalid("This model does not support the audio modality.", "modalities", "invalid_value")
            audio = body.get("audio")
            if not isinstance(audio, dict):
                raise _invalid("Missing required parameter: 'audio'.", "audio", "missing_required_parameter")
            voice = audio.get("voice")
            if voice is None:
                raise _invalid(
                    "Missing required parameter: 'audio.voice'.", "audio.voice", "missing_required_parameter"
                )
            if voice not in VOICES:
                raise _invalid(f"Invalid value: '{voice}'. Supported values are: {_supported(VOICES)}.", "audio.voice")
            out_format = audio.get("format")
            if out_format is None:
                raise _invalid(
                    "Missing required parameter: 'audio.format'.",
                    "audio.format",
                    "missing_required_parameter",
                )
            if out_format not in OUTPUT_FORMATS:
                raise _invalid(
                    f"Invalid value: '{out_format}'. Supported values are: {_supported(OUTPUT_FORMATS)}.",
                    "audio.format",
                )
        if audio_model and not wants_audio and not has_input_audio:
            raise _invalid("This model requires that either input content or output modality contain audio.", "model")
        if body.get("stream"):
            raise _invalid("FakeOpenAI does not implement stream=true.", "stream", "lab_unsupported")
        n = body.get("n", 1)
        if n not in (None, 1) and wants_audio:
            raise _invalid("Audio output only supports n=1.", "n")
        return {
            "model": model,
            "wants_audio": wants_audio,
            "format": out_format,
            "voice": (body.get("audio") or {}).get("voice"),
            "last_user_audio": last_user_audio,
        }

    async def _check_input_audio(self, spec: Any, where: str, record: RecordedRequest) -> float:
        if not isinstance(spec, dict):
            raise _invalid(
                f"Missing required parameter: '{where}.input_audio'.",
                f"{where}.input_audio",
                "missing_required_parameter",
            )
        fmt = spec.get("format")
        if fmt not in INPUT_AUDIO_FORMATS:
            raise _invalid(
                f"Invalid value: '{fmt}'. Supported values are: {_supported(INPUT_AUDIO_FORMATS)}.",
                f"{where}.input_audio.format",
            )
        data = spec.get("data")
        if not isinstance(data, str) or not data:
            raise _invalid(
                f"Missing required parameter: '{where}.input_audio.data'.",
                f"{where}.input_audio.data",
                "missing_required_parameter",
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid(
                f"Invalid '{where}.input_audio.data': expected base64-encoded audio data.",
                f"{where}.input_audio.data",
            ) from exc
        if fmt == "wav":
            try:
                info = parse_wav(raw)
            except InvalidWav as exc:
                record.audio_inputs.append(raw)
                raise _invalid(_UNDECODABLE, "messages") from exc
            record.audio_inputs.append(info)
            record.audio_input_seconds.append(info.duration)
            return info.duration
        record.audio_inputs.append(raw)
        if not _is_mp3(raw):
            raise _invalid(_UNDECODABLE, "messages")
        try:
            seconds = await asyncio.to_thread(decode_duration, raw)
        except AudioDecodeError as exc:
            raise _invalid(_UNDECODABLE, "messages") from exc
        record.audio_input_seconds.append(seconds)
        return seconds

    def _choose_reply(self, body: dict[str, Any], plan: dict[str, Any]) -> str:
        if self._replies:
            return self._replies.popleft()
        if self.reply_text is not None:
            return self.reply_text(body)
        if plan["last_user_audio"]:
            return f"I heard {sum(plan['last_user_audio']):.1f} seconds of audio."
        last_text = ""
        for msg in body["messages"]:
            if msg.get("role") != "user":
                continue
            content = msg.get("content")
            if isinstance(content, str):
                last_text = content
            elif isinstance(content, list):
                last_text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        return f"You said: {last_text}"

    @staticmethod
    def _prompt_usage(body: dict[str, Any], record: RecordedRequest) -> tuple[int, int]:
        text_chars = 0
        for msg in body["messages"]:
            content = msg.get("content")
            if isinstance(content, str):
                text_chars += len(content)
            elif isinstance(content, list):
                text_chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
        text_tokens = math.ceil(text_chars / 4) + 4 * len(body["messages"]) + 3
        audio_tokens = math.ceil(10 * sum(record.audio_input_seconds))
        return text_tokens, audio_tokens

    async def _encode_reply_audio(self, wav: bytes, fmt: str) -> bytes:
        if fmt == "wav":
            return wav
        if fmt == "pcm16":
            return wav[44:]  # make_wav writes the canonical 44-byte header
        args = {
            "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
            "opus": ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "ogg"],
            "flac": ["-c:a", "flac", "-f", "flac"],
            "aac": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
        }[fmt]
        return await asyncio.to_thread(_ffmpeg_ok, ["-f", "wav", "-i", "pipe:0", *args, "pipe:1"], wav)

    async def _chat_response(
        self, body: dict[str, Any], plan: dict[str, Any], record: RecordedRequest
    ) -> dict[str, Any]:
        text = self._choose_reply(body, plan)
        finish_reason = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and not plan["wants_audio"] and len(text) > 4 * limit:
            text, finish_reason = text[: 4 * limit], "length"  # the real API stops at the limit, mid-sentence
        prompt_text, prompt_audio = self._prompt_usage(body, record)
        completion_text = max(1, math.ceil(len(text) / 4))
        completion_audio = 0
        now = int(time.time())
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if plan["wants_audio"] and self._omit_audio > 0:
            self._omit_audio -= 1
            message["content"] = text
            message["audio"] = None
        elif plan["wants_audio"]:
            if self.reply_audio is not None:
                wav = self.reply_audio(text)
                seconds = parse_wav(wav).duration
            else:
                seconds = min(max(len(text) * self.seconds_per_char, 0.5), 30.0)
                wav = await asyncio.to_thread(_reply_tone, seconds)
            data = await self._encode_reply_audio(wav, plan["format"])
            audio_id = f"audio_{secrets.token_hex(16)}"
            self._audio_ids[audio_id] = {"expires_at": now + 3600, "transcript": text}
            message["audio"] = {
                "id": audio_id,
                "data": base64.b64encode(data).decode("ascii"),
                "expires_at": now + 3600,
                "transcript": text,
            }
            completion_audio = math.ceil(20 * seconds)
        else:
            message["content"] = text
            message["audio"] = None
        prompt_tokens = prompt_text + prompt_audio
        completion_tokens = completion_text + completion_audio
        alphabet = string.ascii_letters + string.digits
        return {
            "id": "chatcmpl-" + "".join(secrets.choice(alphabet) for _ in range(29)),
            "object": "chat.completion",
            "created": now,
            "model": _ALIASES.get(plan["model"], plan["model"]),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": 0,
                    "audio_tokens": prompt_audio,
                    "text_tokens": prompt_text,
                    "image_tokens": 0,
                },
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": completion_audio,
                    "text_tokens": completion_text,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": f"fp_{secrets.token_hex(5)}",
        }

    # =====================================================================================================
    # /v1/audio/transcriptions
    # =====================================================================================================
    async def _transcriptions(
        self, request: web.Request, record: RecordedRequest, model_override: str | None = None
    ) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise _invalid(
                f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data. "
                "(HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
                code=None,
            )
        reader = await request.multipart()
        async for part in reader:
            if not hasattr(part, "filename") or part.name is None:
                continue
            if part.filename is not None:
                record.files[part.name] = (part.filename, bytes(await part.read(decode=False)))
            else:
                record.form[part.name] = await part.text()
        await self._maybe_fault("transcriptions")
        form = {**record.form, "model": model_override} if model_override else record.form
        model = form.get("model")
        if not model:
            raise _invalid("you must provide a model parameter", code=None)
        if model not in TRANSCRIPTION_MODELS:
            if model in CHAT_MODELS:
                raise _invalid(f"Invalid value for 'model' = {model}.", "model")
            raise OpenAIAPIError(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        upload = record.files.get("file")
        if upload is None:
            raise _invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
        filename, data = upload
        if len(data) > TRANSCRIBE_LIMIT:
            raise OpenAIAPIError(
                413,
                f"Maximum content size limit ({TRANSCRIBE_LIMIT}) exceeded ({len(data)} bytes read)",
                type="server_error",
            )
        response_format = form.get("response_format", "json")
        gpt4o = model.startswith("gpt-4o")
        allowed_formats = ("json", "text") if gpt4o else ("json", "text", "srt", "verbose_json", "vtt")
        if model == "gpt-4o-transcribe-diarize":
            allowed_formats = ("json", "text", "diarized_json")
        if response_format not in allowed_formats:
            raise _invalid(
                f"response_format '{response_format}' is not compatible with model '{model}'. "
                f"Use {' or '.join(repr(f) for f in allowed_formats)} instead.",
                "response_format",
                "unsupported_value",
            )
        language = form.get("language")
        if language is not None and not (len(language) == 2 and language.isalpha() and language.islower()):
            raise _invalid(
                f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
                "language",
            )
        ext = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
        fmt = sniff_audio_format(data)
        if ext not in TRANSCRIBE_EXTENSIONS or fmt is None:
            raise _invalid(f"Invalid file format. Supported formats: {list(TRANSCRIBE_EXTENSIONS)}", None, None)
        try:
            seconds = parse_wav(data).duration if fmt == "wav" else await asyncio.to_thread(decode_duration, data)
        except (InvalidWav, AudioDecodeError) as exc:
            raise _invalid(_UNDECODABLE, "file", None) from exc
        if self.transcription_latency > 0:
            await asyncio.sleep(self.transcription_latency)
        text = self.transcript_text(data, filename) if self.transcript_text else f"transcript of {seconds:.1f} s"
        if response_format == "text":
            record.status, record.response = 200, text
            return web.Response(text=text + "\n", content_type="text/plain", headers=self._headers())
        body: dict[str, Any] = {"text": text}
        if model == "whisper-1":
            body["usage"] = {"type": "duration", "seconds": math.ceil(seconds)}
            if response_format == "verbose_json":
                body.update(
                    task="transcribe",
                    language="english",
                    duration=round(seconds, 2),
                    segments=[
                        {
                            "id": 0,
                            "seek": 0,
                            "start": 0.0,
                            "end": round(seconds, 2),
                            "text": text,
                            "tokens": [],
                            "temperature": 0.0,
                            "avg_logprob": -0.2,
                            "compression_ratio": 1.0,
                            "no_speech_prob": 0.01,
                        }
                    ],
                )
        else:
            audio_tokens = max(1, math.ceil(10 * seconds))
            prompt_tokens = math.ceil(len(form.get("prompt", "")) / 4)
            output_tokens = max(1, math.ceil(len(text) / 4))
            body["usage"] = {
                "type": "tokens",
                "input_tokens": audio_tokens + prompt_tokens,
                "input_token_details": {"text_tokens": prompt_tokens, "audio_tokens": audio_tokens},
                "output_tokens": output_tokens,
                "total_tokens": audio_tokens + prompt_tokens + output_tokens,
            }
        return self._json(record, body)
