"""The OpenAI API over HTTP: authentication (OpenAI and Azure), routes, injected faults, the models list.

A bug in the stand-in itself is recorded in `internal_errors` (the test fixtures fail on it) and answered
as the real API's 500, never passed off as a rejection of the request.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import traceback
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..server import LabServer
from .chat_checks import validate_chat
from .chat_reply import completion, make_reply
from .chat_stream import send_stream
from .errors import MISSING_KEY, SERVER_ERROR, OpenAIAPIError, invalid, mask_key
from .models import AZURE_PATH, AZURE_VERSION, CHAT_MODELS, TRANSCRIPTION_MODELS
from .records import RecordedRequest
from .script import Script
from .transcriptions import read_upload, transcriptions

__all__ = ["OpenAIServer"]

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have "
    "trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)
_AZURE_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
_AZURE_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again."
)
_RATE_LIMITED = (
    "Rate limit reached for requests. Limit: 500 / min. Please try again in 1s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more."
)
_NO_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


@dataclass
class _Fault:
    status: int
    message: str | None
    code: str | None
    times: int
    retry_after: float | None


def response_headers() -> dict[str, str]:
    return {"x-request-id": f"req_{secrets.token_hex(16)}", "openai-processing-ms": "12"}


class OpenAIServer(LabServer):
    """Serves the chat, transcription and models endpoints, and records every request."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.script = Script()
        self.requests: list[RecordedRequest] = []
        self.internal_errors: list[str] = []
        self._faults: dict[str, list[_Fault]] = {"chat": [], "transcriptions": []}
        self._garbled: dict[str, int] = {}
        # Azure OpenAI: requests to /openai/deployments/{name}/... with an `api-key` header
        self.azure_api_key = "azure-test-lab-key-0123456789abcdef"
        self.azure_deployments: dict[str, str] = {}
        """Deployment name -> the model it serves (empty: no deployment exists, every Azure call is 404)."""

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

    def garble_next(self, times: int = 1, path: str = "chat") -> None:
        """Answer the next `times` requests to `path` with 200 and a body that is not JSON (cut short, as a
        broken proxy or a dropped connection leaves it)."""
        self._garbled[path] = self._garbled.get(path, 0) + times

    def _garbled_response(self, route: tuple[str, str]) -> web.Response | None:
        path = {"/v1/chat/completions": "chat", "/v1/audio/transcriptions": "transcriptions"}.get(route[1])
        if route[0] != "POST" or path is None or not self._garbled.get(path):
            return None
        self._garbled[path] -= 1
        return web.Response(status=200, body=b'{"id": "chatcmpl-', content_type="application/json")

    # -- HTTP ------------------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            method=request.method, path=request.path, headers=dict(request.headers), started=time.monotonic()
        )
        self.requests.append(record)
        try:
            azure = AZURE_PATH.match(request.path.rstrip("/"))
            if azure is not None:  # Azure OpenAI: deployment in the path, api-version in the query, api-key
                model = self._check_azure(request, record, azure["deployment"])
                if azure["endpoint"] == "chat/completions" and request.method == "POST":
                    return await self._chat(request, record, model_override=model)
                if azure["endpoint"] == "audio/transcriptions" and request.method == "POST":
                    return await self._transcriptions(request, record, model_override=model)
            self._check_auth(request)
            route = (request.method, request.path.rstrip("/"))
            if (garbled := self._garbled_response(route)) is not None:
                return garbled
            if route == ("POST", "/v1/chat/completions"):
                return await self._chat(request, record)
            if route == ("POST", "/v1/audio/transcriptions"):
                return await self._transcriptions(request, record)
            if route == ("GET", "/v1/models"):
                return self._json(record, {"object": "list", "data": [_model(m) for m in sorted(_ALL_MODELS)]})
            if request.method == "GET" and request.path.startswith("/v1/models/"):
                model_id = request.path[len("/v1/models/") :]
                if model_id not in _ALL_MODELS:
                    raise OpenAIAPIError(
                        404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
                    )
                return self._json(record, _model(model_id))
            raise OpenAIAPIError(404, f"Invalid URL ({request.method} {request.path})")
        except OpenAIAPIError as err:
            return self._error_response(err, record)
        except (ConnectionResetError, asyncio.CancelledError):
            # The client hung up (e.g. it cancelled a request it no longer needs): not a lab failure.
            record.abandoned = True
            raise
        except Exception as exc:  # a bug in the lab itself: make it loud
            self.internal_errors.append(f"{request.path}: {''.join(traceback.format_exception(exc))}")
            return self._error_response(OpenAIAPIError(500, SERVER_ERROR, type="server_error"), record)
        finally:
            record.finished = time.monotonic()
            self.signal.notify()

    def _json(self, record: RecordedRequest, body: Any) -> web.Response:
        record.status, record.response = 200, body
        return web.json_response(body, headers=response_headers())

    @staticmethod
    def _error_response(err: OpenAIAPIError, record: RecordedRequest | None) -> web.Response:
        body = err.body()
        if record is not None:
            record.status, record.error, record.response = err.status, body["error"], body
        return web.json_response(body, status=err.status, headers={**response_headers(), **err.headers})

    def _check_auth(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.strip():
            raise OpenAIAPIError(401, MISSING_KEY)
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

    def _check_azure(self, request: web.Request, record: RecordedRequest, deployment: str) -> str:
        """Azure's own checks, in its order: key, api-version, deployment. Returns the deployed model."""
        record.query = dict(request.query)
        if request.headers.get("api-key") != self.azure_api_key:
            raise OpenAIAPIError(401, _AZURE_KEY, type=None, code="401")
        version = request.query.get("api-version")
        if not version or not AZURE_VERSION.match(version):
            raise OpenAIAPIError(404, "Resource not found", type=None, code="404")
        model = self.azure_deployments.get(deployment)
        if model is None:
            raise OpenAIAPIError(404, _AZURE_NO_DEPLOYMENT, type=None, code="DeploymentNotFound")
        return model

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
                429, fault.message or _NO_QUOTA, type="insufficient_quota", code="insufficient_quota", headers=headers
            )
        if fault.status == 429:
            raise OpenAIAPIError(
                429,
                fault.message or _RATE_LIMITED,
                type="requests",
                code=fault.code or "rate_limit_exceeded",
                headers=headers,
            )
        if fault.status >= 500:
            message = fault.message or (
                "The engine is currently overloaded, please try again later" if fault.status == 503 else SERVER_ERROR
            )
            raise OpenAIAPIError(fault.status, message, type="server_error", code=fault.code, headers=headers)
        raise OpenAIAPIError(fault.status, fault.message or "Injected failure.", code=fault.code, headers=headers)

    # -- endpoints ---------------------------------------------------------------------------------------
    async def _chat(
        self, request: web.Request, record: RecordedRequest, model_override: str | None = None
    ) -> web.StreamResponse:
        if request.content_type != "application/json":
            raise invalid(
                f"Invalid Content-Type header ({request.content_type}), expected application/json.", code=None
            )
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise invalid(_BAD_JSON, code=None) from exc
        record.json = body
        if self.script.hang > 0:
            self.script.hang -= 1
            await self.signal.wait_stopping()
            raise OpenAIAPIError(503, "The lab server is shutting down.", type="server_error")
        await self._maybe_fault("chat")
        if not isinstance(body, dict):
            raise invalid("Invalid type for body: expected an object.", code="invalid_type")
        if model_override is not None:  # Azure: the deployment decides the model, whatever the body says
            body = {**body, "model": model_override}
        plan = await validate_chat(body, record, self.script.audio_ids)
        delay = self.script.latency_fn(body) if self.script.latency_fn else self.script.latency
        if plan.stream:
            reply = await make_reply(body, plan, record, self.script)
            first = delay * self.script.first_chunk_share
            cut = self.script.cut_streams.popleft() if self.script.cut_streams else None
            response, sent = await send_stream(
                request,
                reply,
                plan.include_usage,
                first_delay=first,
                spread=delay - first,
                headers=response_headers(),
                cut_after=cut,
            )
            record.status, record.response = 200, sent
            return response
        if delay > 0:
            await asyncio.sleep(delay)
        return self._json(record, completion(await make_reply(body, plan, record, self.script)))

    async def _transcriptions(
        self, request: web.Request, record: RecordedRequest, model_override: str | None = None
    ) -> web.Response:
        await read_upload(request, record)
        await self._maybe_fault("transcriptions")
        body, content_type = await transcriptions(record, self.script, model_override)
        if content_type == "text/plain":
            record.status, record.response = 200, body
            return web.Response(text=body + "\n", content_type="text/plain", headers=response_headers())
        return self._json(record, body)


_ALL_MODELS = CHAT_MODELS | TRANSCRIPTION_MODELS


def _model(model_id: str) -> dict[str, Any]:
    owner = "openai-internal" if model_id == "whisper-1" else "system"
    return {"id": model_id, "object": "model", "created": 1_727_000_000, "owned_by": owner}
