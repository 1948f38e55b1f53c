"""OpenAI-compatible chat-completions backend (DESIGN §8): vLLM, SGLang, Ollama, llama.cpp, …

``url`` is the API base ending in ``/v1`` (``http://127.0.0.1:8000/v1``). :meth:`start` checks
the server with ``GET {url}/models`` and picks the first served model when none is named.

``generate`` sends the context as one user turn whose content interleaves text parts and JPEG
data URLs (quality 90, in the context's order; the question is the last part) after the system
prompt, and asks for the emotion JSON with ``response_format`` of type ``json_schema`` (strict).
A server that rejects that (HTTP 400/422 naming ``response_format``/``json_schema``) is asked
again with ``{"type": "json_object"}``, then with no ``response_format``; the first that works
is kept for the rest of the session. ``caption`` sends a caption context the same way, as free
text (no ``response_format``) with its own ``max_tokens``.

``score`` asks for one token (the question replaced by "Answer with one word from: …") with
``logprobs`` and ``top_logprobs=20``, plus vLLM's ``guided_choice`` (dropped for the session
when the server rejects it), and maps the first token's alternatives to labels with
:func:`label_logprobs`. A server that returns no logprobs raises :class:`ScoringUnsupported`
(remembered: later calls raise at once).

Robustness (R3): connect errors, timeouts, HTTP 429 and 5xx are retried ``max_retries`` times
with exponential backoff (0.5 s, 1 s, 2 s, capped at 4 s; a numeric ``Retry-After`` of at most
10 s is honoured instead), then raise :class:`BackendError`; other 4xx raise at once. Every
request (connect, send, wait, read) is cut after ``timeout_s``. Messages are one line, carry the
URL redacted and never the API key (it is also scrubbed from server error excerpts).

The backoff waits go through ``clock`` and the requests through ``transport`` when given (an
``httpx.MockTransport`` in unit tests), so retries are tested without a server or real waits.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx

from affectstream.clock import SYSTEM_CLOCK, Clock
from affectstream.errors import ConfigError
from affectstream.urls import redact_url
from affectstream.vlm.backend import BackendError, ScoringUnsupported
from affectstream.vlm.context import ImagePart, Part, TextPart, VlmContext
from affectstream.vlm.logprobs import TOP_LOGPROBS, label_logprobs, top_logprobs
from affectstream.vlm.parsing import json_schema, preview, strict_retry_prompt
from affectstream.vlm.prompts import SCORE_SYSTEM_SUFFIX, score_question

log = logging.getLogger(__name__)

FORMATS = ("json_schema", "json_object", "none")
"""``response_format`` modes, tried in this order until the server accepts one."""
JPEG_QUALITY = 90
BACKOFF_S = 0.5
BACKOFF_CAP_S = 4.0
RETRY_AFTER_MAX_S = 10.0
SCORE_TEMPERATURE = 1.0  # post-sampling logprobs then are the model's own (raw ones: no matter)
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|guided_json", re.IGNORECASE)


class _UnavailableError(Exception):
    """Retries exhausted (connect error, timeout, HTTP 429/5xx); ``reason`` is one safe line."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class OpenAIBackend:
    """Any OpenAI-compatible chat-completions server (see the module docstring)."""

    name = "openai"

    def __init__(self, url: str, model: str | None, *, api_key: str | None = None,
                 timeout_s: float = 30.0, max_retries: int = 2, max_tokens: int = 256,
                 temperature: float = 0.0, url_setting: str = "vlm.url",
                 model_setting: str = "vlm.model", clock: Clock = SYSTEM_CLOCK,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``url_setting`` and ``model_setting`` name the config fields ``url`` and ``model``
        come from, so that the fixes in errors point there; ``clock`` times the retries'
        backoff; ``transport`` replaces the network (tests: ``httpx.MockTransport``)."""
        self._url_setting = url_setting
        self._model_setting = model_setting
        base = url.strip().rstrip("/")
        safe = redact_url(base)
        try:
            scheme = httpx.URL(base).scheme
        except httpx.InvalidURL as exc:
            raise ConfigError(f"invalid VLM server URL {safe}; fix {url_setting}") from exc
        if scheme not in ("http", "https"):
            raise ConfigError(f"the VLM server URL {safe} must start with http:// or https:// "
                              f"and end in /v1; fix {url_setting}")
        if not timeout_s > 0 or max_retries < 0 or max_tokens < 1:
            raise ValueError(f"need timeout_s > 0, max_retries ≥ 0, max_tokens ≥ 1; got "
                             f"{timeout_s}, {max_retries}, {max_tokens}")
        self.model: str = model or ""
        self._wanted = model or None
        self._base = base
        self._safe_url = safe
        self._password = urlsplit(base).password
        self._api_key = api_key or None
        self._timeout_s = float(timeout_s)
        self._max_retries = int(max_retries)
        self._max_tokens = int(max_tokens)
        self._temperature = float(temperature)
        self._format = 0  # index into FORMATS; only ever increases
        self._guided_choice = True
        self._logprobs = True
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(url={self._safe_url!r}, model={self.model!r})"

    @property
    def response_format(self) -> str:
        """The ``response_format`` mode in use (one of :data:`FORMATS`)."""
        return FORMATS[self._format]

    # ----------------------------------------------------------------------- interface

    async def start(self) -> None:
        try:
            resp = await self._request("GET", "/models")
        except _UnavailableError as exc:
            raise ConfigError(f"cannot reach the VLM server at {self._safe_url} "
                              f"({exc.reason}); start it (e.g. `vllm serve "
                              f"Qwen/Qwen2.5-VL-3B-Instruct`) or fix {self._url_setting}") from exc
        where = f"the VLM server at {self._safe_url}"
        if resp.status_code in (401, 403):
            given = "the API key it was given" if self._api_key else "a request without API key"
            raise ConfigError(f"{where} refused {given} (HTTP {resp.status_code}); set "
                              "vlm.api_key or the OPENAI_API_KEY environment variable")
        if resp.status_code == 404:
            raise ConfigError(f"{where} has no /models endpoint (HTTP 404); {self._url_setting} "
                              "must be the OpenAI API base ending in /v1, e.g. "
                              "http://127.0.0.1:8000/v1")
        if resp.status_code != 200:
            raise ConfigError(f"{where} answered GET /models with HTTP {resp.status_code}: "
                              f"{self._excerpt(resp)}; check the server log or fix "
                              f"{self._url_setting}")
        try:
            served = [str(m["id"]) for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where} is not an OpenAI-compatible API (GET /models gave "
                              f"{self._excerpt(resp)}); fix {self._url_setting} (it ends in "
                              "/v1)") from exc
        if not served:
            raise ConfigError(f"{where} serves no model; load one (e.g. `vllm serve "
                              f"Qwen/Qwen2.5-VL-3B-Instruct`) or fix {self._url_setting}")
        if self._wanted is None:
            self.model = served[0]
            log.info("VLM server %s: using model %s", self._safe_url, self.model)
        elif self._wanted not in served and f"{self._wanted}:latest" not in served:
            listed = ", ".join(served[:12]) + (", …" if len(served) > 12 else "")
            raise ConfigError(f"{where} does not serve model {self._wanted!r} (it serves: "
                              f"{listed}); set {self._model_setting} to one of those or leave "
                              "it unset")

    async def generate(self, context: VlmContext, *, strict: bool = False) -> str:
        labels = _labels(context)
        user = await asyncio.to_thread(user_content, context.parts)
        if strict:
            user.append({"type": "text", "text": strict_retry_prompt(labels)})
        messages: list[dict[str, Any]] = [{"role": "system", "content": context.system},
                                          {"role": "user", "content": user}]
        while True:
            level = self._format
            body = self._body(messages, self._max_tokens, self._temperature)
            fmt = _response_format(FORMATS[level], labels)
            if fmt is not None:
                body["response_format"] = fmt
            resp = await self._post(body)
            if (resp.status_code in (400, 422) and level + 1 < len(FORMATS)
                    and _FORMAT_WORDS.search(resp.text)):
                self._downgrade(level, self._excerpt(resp))
                continue
            return self._message_content(self._json(resp))

    async def caption(self, context: VlmContext, *, max_tokens: int) -> str:
        """Free text (a motion caption): no ``response_format``; retries, timeouts and
        redaction as for :meth:`generate`."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be ≥ 1, got {max_tokens}")
        user = await asyncio.to_thread(user_content, context.parts)
        messages: list[dict[str, Any]] = [{"role": "system", "content": context.system},
                                          {"role": "user", "content": user}]
        resp = await self._post(self._body(messages, max_tokens, self._temperature))
        return self._message_content(self._json(resp)).strip()

    async def score(self, context: VlmContext) -> dict[str, float]:
        labels = _labels(context)
        if not self._logprobs:
            raise self._unsupported()
        ask = TextPart(score_question(labels))
        user = await asyncio.to_thread(user_content, (*context.parts[:-1], ask))
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": context.system + SCORE_SYSTEM_SUFFIX},
            {"role": "user", "content": user}]
        while True:
            guided = self._guided_choice
            body = self._body(messages, 1, SCORE_TEMPERATURE)
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            if guided:
                body["guided_choice"] = list(labels)
            resp = await self._post(body)
            if resp.status_code in (400, 422):
                text = resp.text.lower()
                if guided and "guided_choice" in text:
                    self._guided_choice = False
                    log.info("VLM server %s rejects guided_choice; scoring without it",
                             self._safe_url)
                    continue
                if "logprobs" in text:
                    raise self._unsupported()
            data = self._json(resp)
            entries = top_logprobs(data)
            if not entries:
                raise self._unsupported()
            scores = label_logprobs(entries, labels)
            if scores is None:
                seen = ", ".join(repr(tok) for tok, _ in entries[:5])
                raise BackendError(f"the VLM's first answer token matches no label (top: "
                                   f"{seen}); use vlm.decode: generate for this model")
            return scores

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ----------------------------------------------------------------------- HTTP

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.AsyncClient(headers=headers, transport=self._transport,
                                             timeout=httpx.Timeout(self._timeout_s))
        return self._client

    async def _request(self, method: str, path: str,
                       body: dict[str, Any] | None = None) -> httpx.Response:
        """The first response that is neither HTTP 429 nor 5xx, retrying those, connect errors
        and timeouts (see the module docstring); raises :class:`_UnavailableError`."""
        client = self._http()
        reason = "no attempt"
        delay = 0.0
        for attempt in range(self._max_retries + 1):
            if attempt:
                await self._clock.sleep(delay)
            delay = min(BACKOFF_CAP_S, BACKOFF_S * 2.0 ** attempt)
            try:
                async with asyncio.timeout(self._timeout_s):
                    resp = await client.request(method, self._base + path, json=body)
            except (TimeoutError, httpx.TimeoutException):
                reason = f"no answer within {self._timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                reason = self._scrub(f"{type(exc).__name__}: {exc}" if str(exc)
                                     else type(exc).__name__)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                reason = f"HTTP {resp.status_code}: {self._excerpt(resp)}"
                wait = _retry_after(resp)
                delay = delay if wait is None else wait
                continue
            return resp
        raise _UnavailableError(reason, self._max_retries + 1)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            return await self._request("POST", "/chat/completions", body)
        except _UnavailableError as exc:
            tries = "once" if exc.attempts == 1 else f"{exc.attempts} times"
            raise BackendError(f"the VLM server at {self._safe_url} failed {tries} ("
                               f"{exc.reason}); check that it runs and is not overloaded, or "
                               "raise vlm.timeout_s") from exc

    def _json(self, resp: httpx.Response) -> dict[str, Any]:
        """The body of a successful answer; BackendError for any other status or non-JSON."""
        where = f"the VLM server at {self._safe_url}"
        if resp.status_code in (401, 403):
            raise BackendError(f"{where} refused the API key (HTTP {resp.status_code}); set "
                               "vlm.api_key or the OPENAI_API_KEY environment variable")
        if resp.status_code != 200:
            raise BackendError(f"{where} rejected the request with HTTP {resp.status_code}: "
                               f"{self._excerpt(resp)}; check the model name, the context "
                               "size and the server log")
        try:
            data = resp.json()
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
        except ValueError as exc:
            raise BackendError(f"{where} answered with non-JSON ({self._excerpt(resp)}); "
                               f"{self._url_setting} must be an OpenAI-compatible /v1 "
                               "endpoint") from exc
        return data

    def _message_content(self, data: dict[str, Any]) -> str:
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise BackendError(f"the VLM server at {self._safe_url} sent no text content in "
                               f"choices[0].message ({self._scrub(preview(json.dumps(data)))})"
                               "; check the model and the server log")
        return content

    def _body(self, messages: list[dict[str, Any]], max_tokens: int,
              temperature: float) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens,
                                "temperature": temperature}
        if self.model:
            body["model"] = self.model
        return body

    def _downgrade(self, level: int, why: str) -> None:
        if self._format <= level:
            self._format = level + 1
            log.warning("VLM server %s rejected response_format %s (%s); using %s from now on",
                        self._safe_url, FORMATS[level], why, FORMATS[level + 1])

    def _unsupported(self) -> ScoringUnsupported:
        self._logprobs = False  # remembered for the session
        return ScoringUnsupported(f"the server at {self._safe_url} does not return logprobs; "
                                  "use vlm.decode: generate")

    def _scrub(self, text: str) -> str:
        for secret in (self._api_key, self._password):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _excerpt(self, resp: httpx.Response, n: int = 160) -> str:
        """The server's error message (OpenAI/vLLM/FastAPI shapes, else the raw text), one
        short line without secrets."""
        text = resp.text
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            err = data.get("error")
            msg = err.get("message") if isinstance(err, dict) else err
            msg = msg or data.get("message") or data.get("detail")
            if msg:
                text = msg if isinstance(msg, str) else json.dumps(msg)
        return preview(self._scrub(text), n) if text.strip() else "empty body"


# --------------------------------------------------------------------------- helpers


def user_content(parts: Sequence[Part]) -> list[dict[str, Any]]:
    """OpenAI ``content`` items for the context parts, in order (images as JPEG data URLs)."""
    return [{"type": "image_url", "image_url": {"url": jpeg_data_url(part.image)}}
            if isinstance(part, ImagePart) else {"type": "text", "text": part.text}
            for part in parts]


def jpeg_data_url(rgb: Any, quality: int = JPEG_QUALITY) -> str:
    """``data:image/jpeg;base64,…`` of an RGB uint8 image."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BackendError(f"cannot JPEG-encode a keyframe of shape {rgb.shape}; report a bug")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _labels(context: VlmContext) -> tuple[str, ...]:
    if not context.labels:
        raise ValueError("the VLM context has no labels; build it with build_context(…, labels)")
    return context.labels


def _response_format(mode: str, labels: Sequence[str]) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {
            "name": "emotion", "schema": json_schema(labels), "strict": True}}
    return {"type": "json_object"} if mode == "json_object" else None


def _retry_after(resp: httpx.Response) -> float | None:
    """A numeric ``Retry-After`` in [0, RETRY_AFTER_MAX_S] seconds, else None (use backoff)."""
    try:
        wait = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None
    return wait if 0.0 <= wait <= RETRY_AFTER_MAX_S else None
