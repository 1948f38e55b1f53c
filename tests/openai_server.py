"""A real OpenAI-compatible HTTP server for tests (not a mock object).

``OpenAIServer`` is a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a background thread,
used as a context manager. It serves ``GET /v1/models`` and ``POST /v1/chat/completions`` with
the response shapes of the OpenAI API (and of vLLM, which copies them), records every request
(method, path, headers, parsed JSON body) and answers each chat request either with the next
scripted :class:`Reply` from its queue or, when the queue is empty, with a valid emotion JSON
over the labels of the request's ``json_schema`` (or :data:`LABELS`). Persistent settings mimic
server capabilities: ``api_key`` (401 without ``Authorization: Bearer <key>``),
``reject_formats`` (400 for those ``response_format`` types, worded like vLLM),
``reject_fields`` (400 for unknown request fields, worded like OpenAI) and ``logprobs``
(whether logprobs are returned when asked for).

Caption requests (``vlm.context.motion_text`` vlm or both), recognised by their system prompt
(:data:`~affectstream.vlm.prompts.CAPTION_PROMPT`), never take a scripted reply: they are
answered with ``caption_text``, or with an error when ``caption_status`` is not 200.

:class:`OpenAIApi` is the same server without the socket: the same routing, replies and request
records, reached through :meth:`OpenAIApi.transport` (an ``httpx.MockTransport``) so unit tests
run in microseconds. A scripted hang longer than the client's read timeout raises
``httpx.ReadTimeout`` there, as httpx does against the real server.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from affectstream.vlm.prompts import CAPTION_PROMPT

LABELS = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
CAPTION = "The lip corners move up and back into a brief smile."
"""The default answer to a caption request."""


@dataclass
class Reply:
    """One scripted answer to a chat request (use the constructors below)."""

    status: int = 200
    content: str | None = None
    """The assistant message (status 200); None: the default emotion JSON."""
    body: bytes | None = None
    """A raw body sent as is instead (garbage, error objects)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    """Wait this long before answering (a hung server); cut short when the server stops."""
    logprobs: list[tuple[str, float]] | None = None
    """First-token alternatives for ``choices[0].logprobs.content[0].top_logprobs``."""


def content(text: str) -> Reply:
    return Reply(content=text)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``."""
    return Reply(status=status, body=_error_body(status, message), headers=dict(headers or {}))


def hang(seconds: float) -> Reply:
    return Reply(delay_s=seconds)


def garbage(text: str = "<html><body>502 Bad Gateway, or so</body></html>") -> Reply:
    """HTTP 200 with a body that is not JSON."""
    return Reply(body=text.encode())


def reject_response_format(kind: str = "json_schema") -> Reply:
    """What vLLM says when a response_format type is not supported."""
    return error(400, f"1 validation error for ChatCompletionRequest response_format: "
                      f"type '{kind}' is not supported")


def logprobs(alternatives: Sequence[tuple[str, float]], text: str | None = None) -> Reply:
    """A one-token answer with these first-token alternatives (the first is the sampled one)."""
    return Reply(content=text if text is not None else alternatives[0][0],
                 logprobs=list(alternatives))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: Any
    """The parsed JSON body (None for GET or a body that is not JSON)."""


def _error_body(status: int, message: str) -> bytes:
    kind = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError",
            429: "RateLimitError"}.get(status, "InternalServerError")
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": status}}).encode()


def emotion_json(labels: Sequence[str]) -> str:
    """A valid answer: the first label most probable, the rest sharing the remainder."""
    names = list(labels)
    rest = 0.5 / max(1, len(names) - 1)
    probs = {name: 0.5 if i == 0 else rest for i, name in enumerate(names)}
    return json.dumps({"label": names[0], "probs": probs, "valence": 0.5, "arousal": 0.6,
                       "confidence": 0.5, "rationale": "Lip corners pulled up."})


class OpenAIApi:
    """The server's behaviour (see the module docstring), reached through :meth:`transport`."""

    def __init__(self, models: Iterable[str] = ("test-vlm",), *, api_key: str | None = None,
                 reject_formats: Iterable[str] = (), reject_fields: Iterable[str] = (),
                 logprobs: bool = True, caption_text: str = CAPTION,
                 caption_status: int = 200) -> None:
        self.models = list(models)
        self.caption_text = caption_text
        self.caption_status = caption_status
        self.api_key = api_key
        self.reject_formats = set(reject_formats)
        self.reject_fields = set(reject_fields)
        self.logprobs = logprobs
        self._queue: deque[Reply] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The API base; only :meth:`transport` answers it (``.test`` never resolves)."""
        return "http://openai.test/v1"

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next chat requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def caption_requests(self) -> list[Request]:
        return [r for r in self.chat_requests if is_caption(r.body)]

    @property
    def main_requests(self) -> list[Request]:
        """Chat requests that are not caption requests (emotion questions)."""
        return [r for r in self.chat_requests if not is_caption(r.body)]

    # ------------------------------------------------------------------ request handling

    def handle(self, method: str, path: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, bytes, dict[str, str], float]:
        """Record one request and answer it: status, body, headers and the delay before the
        answer (a hung server). Header names in ``headers`` are in lower case."""
        try:
            body = json.loads(raw) if method == "POST" else None
        except ValueError:
            body = None
        self._record(Request(method, path, headers, body))
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error_body(401, "Incorrect API key provided"), {}, 0.0
        if method == "GET" and path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in self.models]
            return 200, json.dumps({"object": "list", "data": data}).encode(), {}, 0.0
        if method == "POST" and path.rstrip("/") == "/v1/chat/completions":
            return self._chat(body)
        return 404, _error_body(404, f"not found: {path}"), {}, 0.0

    def transport(self) -> httpx.MockTransport:
        """This API as an httpx transport: no socket, no thread, no waiting."""

        def answer(request: httpx.Request) -> httpx.Response:
            headers = {k.lower(): v for k, v in request.headers.items()}
            status, body, extra, delay_s = self.handle(request.method, request.url.path,
                                                       headers, request.read())
            read_timeout = request.extensions.get("timeout", {}).get("read")
            if delay_s > 0 and read_timeout is not None and delay_s >= read_timeout:
                raise httpx.ReadTimeout("timed out", request=request)  # what httpx raises
            return httpx.Response(status, content=body,
                                  headers={"Content-Type": "application/json", **extra})

        return httpx.MockTransport(answer)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _next(self) -> Reply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _chat(self, body: Any) -> tuple[int, bytes, dict[str, str], float]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, _error_body(400, "'messages' is a required property"), {}, 0.0
        unknown = sorted(self.reject_fields & set(body))
        if unknown:
            return 400, _error_body(400, f"Unrecognized request argument supplied: "
                                         f"{unknown[0]}"), {}, 0.0
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in self.reject_formats:
            reply = reject_response_format(str(fmt["type"]))
            return reply.status, reply.body or b"", {}, 0.0
        if is_caption(body):
            return self._caption(body)
        reply = self._next() or Reply()
        if reply.body is not None or reply.status != 200:
            return reply.status, reply.body or b"", reply.headers, reply.delay_s
        text = reply.content if reply.content is not None else emotion_json(_labels(body))
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": text}}
        if body.get("logprobs") and self.logprobs:
            alts = reply.logprobs or [(f" {name}", -0.5 - i) for i, name
                                      in enumerate(_labels(body))]
            top = [{"token": tok, "logprob": lp, "bytes": list(tok.encode())}
                   for tok, lp in alts[: int(body.get("top_logprobs") or 0)]]
            choice["logprobs"] = {"content": [{"token": alts[0][0], "logprob": alts[0][1],
                                               "bytes": list(alts[0][0].encode()),
                                               "top_logprobs": top}]}
        prompt = len(json.dumps(body["messages"])) // 4
        answer = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                  "model": body.get("model", self.models[0] if self.models else ""),
                  "choices": [choice],
                  "usage": {"prompt_tokens": prompt, "completion_tokens": 1,
                            "total_tokens": prompt + 1}}
        return 200, json.dumps(answer).encode(), reply.headers, reply.delay_s

    def _caption(self, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str], float]:
        if self.caption_status != 200:
            return (self.caption_status, _error_body(self.caption_status, "captioner down"), {},
                    0.0)
        return 200, _completion(body, self.caption_text, self.models), {}, 0.0


class OpenAIServer(OpenAIApi):
    """:class:`OpenAIApi` served over real HTTP on 127.0.0.1 in a background thread; ``url`` is
    the API base (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, models: Iterable[str] = ("test-vlm",), **settings: Any) -> None:
        super().__init__(models, **settings)
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # releases hung handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, raw: bytes) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, extra, delay_s = server.handle(self.command, self.path, headers,
                                                             raw)
                if delay_s > 0:
                    server._stop.wait(delay_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout)

            def do_GET(self) -> None:
                self._answer(b"")

            def do_POST(self) -> None:
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        return Handler


def is_caption(body: Any) -> bool:
    """Whether a chat request body is a caption request (by its system prompt)."""
    try:
        return bool(body["messages"][0]["content"] == CAPTION_PROMPT)
    except (KeyError, IndexError, TypeError):
        return False


def _completion(body: dict[str, Any], text: str, models: Sequence[str]) -> bytes:
    """A plain chat completion answering ``text``."""
    prompt = len(json.dumps(body["messages"])) // 4
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
        "model": body.get("model", models[0] if models else ""),
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": len(text.split()),
                  "total_tokens": prompt + len(text.split())}}).encode()


def _labels(body: dict[str, Any]) -> list[str]:
    """The labels of the request's json_schema, guided_choice, or :data:`LABELS`."""
    if isinstance(body.get("guided_choice"), list):
        return [str(x) for x in body["guided_choice"]]
    try:
        enum = body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"]
        return [str(x) for x in enum]
    except (KeyError, TypeError):
        return list(LABELS)
