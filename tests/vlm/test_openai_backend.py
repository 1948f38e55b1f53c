"""OpenAI-compatible backend (DESIGN §8, R3): request shape (interleaved JPEG data URLs,
response_format and its fallback, strict retry), API key handling, retries, backoff, timeouts,
start() checks and logprob scoring.

These talk to the test server's behaviour (tests/openai_server.py) through an
``httpx.MockTransport`` and wait on a :class:`ManualClock`, so backoffs are checked exactly and
nothing waits; test_openai_backend_e2e.py runs the same server over real HTTP in real time."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import cv2
import httpx
import numpy as np
import pytest
from openai_server import (  # tests/vlm is on sys.path
    OpenAIApi,
    Reply,
    content,
    error,
    garbage,
    hang,
    logprobs,
    reject_response_format,
)

from affectstream.clock import ManualClock
from affectstream.errors import ConfigError
from affectstream.types import Keyframe, LogLine
from affectstream.vlm.backend import BackendError, ScoringUnsupported, VlmBackend
from affectstream.vlm.backends.openai import OpenAIBackend
from affectstream.vlm.context import ImagePart, TextPart, VlmContext, build_context
from affectstream.vlm.logprobs import label_logprobs
from affectstream.vlm.parsing import json_schema, parse_emotion, strict_retry_prompt
from affectstream.vlm.prompts import question

LABELS = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
KEY = "sk-test-VERY-SECRET-0123456789"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def colour(i: int) -> tuple[int, int, int]:
    """A distinct BGR colour per keyframe."""
    return (40 + 25 * i, 220 - 20 * i, 90 + 15 * (i % 3))


def make_context(n: int = 4) -> VlmContext:
    """``n`` periodic keyframes 0.5 s apart (the first one 600×300, the rest 224×224, each its
    own colour, BGR as perception stores them) with a change line after each."""
    frames: list[Keyframe] = []
    lines: list[LogLine] = []
    for i in range(n):
        shape = (600, 300, 3) if i == 0 else (224, 224, 3)
        crop = np.empty(shape, np.uint8)
        crop[:] = colour(i)
        frames.append(Keyframe(1, 15 * i, 0.5 * i, "periodic", crop))
        t = 0.5 * i + 0.2
        lines.append(LogLine("cam0", 1, t, t, "change",
                             f"{t:.2f} s: lip corner puller (AU12) rose to moderate"))
    return build_context(1, frames, [], lines, (0.0, 0.5 * n), LABELS, k=n)


def run(url: str, action: Callable[[OpenAIBackend], Awaitable[T]], model: str | None = None,
        **kwargs: Any) -> T:
    async def go() -> T:
        backend = OpenAIBackend(url, model, **kwargs)
        try:
            return await action(backend)
        finally:
            await backend.close()
            await backend.close()  # idempotent

    return asyncio.run(go())


def call(api: OpenAIApi, action: Callable[[OpenAIBackend], Awaitable[T]],
         model: str | None = None, *, clock: ManualClock | None = None, url: str | None = None,
         **kwargs: Any) -> T:
    """``action`` on a backend reaching ``api`` through its MockTransport, on a manual clock."""
    return run(url or api.url, action, model, transport=api.transport(),
               clock=clock or ManualClock(), **kwargs)


def refused(request: httpx.Request) -> httpx.Response:
    """What httpx raises when nothing listens on the port."""
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


async def start_generate(backend: OpenAIBackend, ctx: VlmContext, *,
                         strict: bool = False) -> str:
    await backend.start()
    return await backend.generate(ctx, strict=strict)


def decode(item: dict[str, Any]) -> np.ndarray:
    assert item["type"] == "image_url"
    url = item["image_url"]["url"]
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    raw = np.frombuffer(base64.b64decode(url[len(prefix):]), np.uint8)
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    assert isinstance(image, np.ndarray)
    return image


def user_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    items: list[dict[str, Any]] = messages[1]["content"]
    return items


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


# --- generate: the request ---------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 8])
def test_generate_sends_interleaved_context(n: int) -> None:
    ctx = make_context(n)
    api = OpenAIApi()
    answer = call(api, lambda b: start_generate(b, ctx))
    assert [r.path for r in api.requests] == ["/v1/models", "/v1/chat/completions"]
    check_interleaved(api.chat_requests[0].body, ctx, answer)


def check_interleaved(body: dict[str, Any], ctx: VlmContext, answer: str) -> None:
    assert parse_emotion(answer, LABELS).label == "happiness"
    assert body["model"] == "test-vlm"  # auto-picked
    assert body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert body["messages"][0]["content"] == ctx.system
    items = user_items(body)
    assert len(items) == len(ctx.parts)
    assert sum(item["type"] == "image_url" for item in items) == len(ctx.images)
    for item, part in zip(items, ctx.parts, strict=True):
        if isinstance(part, TextPart):
            assert item == {"type": "text", "text": part.text}
        else:
            assert isinstance(part, ImagePart)
            image = decode(item)
            assert image.shape == part.image.shape  # resized by the context (≤ 448)
            assert max(image.shape[:2]) <= 448
            expected = colour(ctx.images.index(part))
            assert np.abs(image.reshape(-1, 3).mean(0) - expected).max() < 6
    assert items[-1] == {"type": "text", "text": question(LABELS)}
    assert decode(next(i for i in items if i["type"] == "image_url")).shape[:2] == (448, 224)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "emotion", "schema": json_schema(LABELS), "strict": True}}


def test_strict_retry_appends_the_instruction() -> None:
    ctx = make_context(2)
    api = OpenAIApi()
    call(api, lambda b: start_generate(b, ctx, strict=True))
    items = user_items(api.chat_requests[0].body)
    assert items[-1] == {"type": "text", "text": strict_retry_prompt(LABELS)}
    assert items[-2] == {"type": "text", "text": question(LABELS)}
    assert len(items) == len(ctx.parts) + 1


def test_response_format_fallback_is_remembered() -> None:
    ctx = make_context(1)

    async def twice(backend: OpenAIBackend) -> list[str]:
        await backend.start()
        out = [await backend.generate(ctx), await backend.generate(ctx)]
        assert backend.response_format == "json_object"
        return out

    api = OpenAIApi(reject_formats={"json_schema"})
    answers = call(api, twice)
    kinds = [(r.body.get("response_format") or {}).get("type") for r in api.chat_requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert all(parse_emotion(a, LABELS).label == "happiness" for a in answers)


def test_response_format_falls_back_to_none() -> None:
    ctx = make_context(1)
    api = OpenAIApi()
    api.script(reject_response_format("json_schema"), reject_response_format("json_object"),
               content('{"label": "fear"}'))
    answer = call(api, lambda b: start_generate(b, ctx))
    bodies = [r.body for r in api.chat_requests]
    assert answer == '{"label": "fear"}'
    assert [("response_format" in b) for b in bodies] == [True, True, False]


def test_other_400_fails_at_once() -> None:
    api = OpenAIApi()
    api.script(error(400, "This model's maximum context length is 8192 tokens"))
    clock = ManualClock()
    with pytest.raises(BackendError) as exc:
        call(api, lambda b: start_generate(b, make_context(1)), clock=clock)
    assert len(api.chat_requests) == 1 and clock.slept == []
    text = one_line(exc)
    assert "HTTP 400" in text and "maximum context length" in text


@pytest.mark.parametrize("body", [
    "<html><body>502 Bad Gateway, or so</body></html>", "", "[1, 2, 3]", '"just a string"'])
def test_garbage_body_is_a_backend_error(body: str) -> None:
    api = OpenAIApi()
    api.script(garbage(body))
    with pytest.raises(BackendError) as exc:
        call(api, lambda b: start_generate(b, make_context(1)))
    assert len(api.chat_requests) == 1
    assert "non-JSON" in one_line(exc)


@pytest.mark.parametrize("answer", [
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": None}}]},
    {"choices": []}, {"choices": [{"message": {"content": ["a", "list"]}}]}, {"id": "x"}])
def test_an_answer_without_text_is_a_backend_error(answer: dict[str, Any]) -> None:
    api = OpenAIApi()
    api.script(Reply(body=json.dumps(answer).encode()))
    with pytest.raises(BackendError, match="no text content"):
        call(api, lambda b: b.generate(make_context(1)))


# --- API key -------------------------------------------------------------------------------

def test_api_key_sent_as_bearer_and_never_shown() -> None:
    ctx = make_context(1)
    api = OpenAIApi(api_key=KEY)
    call(api, lambda b: start_generate(b, ctx), api_key=KEY)
    assert {r.headers.get("authorization") for r in api.requests} == {f"Bearer {KEY}"}

    with pytest.raises(ConfigError) as wrong:
        call(api, lambda b: b.start(), api_key="sk-wrong-key-42")
    assert "API key" in one_line(wrong) and "sk-wrong-key-42" not in str(wrong.value)
    with pytest.raises(ConfigError, match="API key"):
        call(api, lambda b: b.start())

    api.script(error(500, f"upstream rejected Authorization: Bearer {KEY}"))
    with pytest.raises(BackendError) as echoed:
        call(api, lambda b: b.generate(ctx), api_key=KEY, max_retries=0)
    assert KEY not in one_line(echoed) and "***" in str(echoed.value)
    assert KEY not in repr(OpenAIBackend("http://127.0.0.1:1/v1", None, api_key=KEY))


# --- retries, backoff and timeouts -------------------------------------------------------

def test_retries_5xx_then_succeeds_with_exponential_backoff() -> None:
    api = OpenAIApi()
    api.script(error(500, "boom"), error(503, "loading"))
    clock = ManualClock()
    answer = call(api, lambda b: start_generate(b, make_context(1)), max_retries=2, clock=clock)
    assert len(api.chat_requests) == 3
    assert clock.slept == [0.5, 1.0]
    assert parse_emotion(answer, LABELS).label == "happiness"


@pytest.mark.parametrize(("retry_after", "slept"), [
    ("0", [0.0]), ("3", [3.0]), ("10", [10.0]),
    ("60", [0.5]), ("-1", [0.5]), ("Wed, 21 Oct 2015 07:28:00 GMT", [0.5])])
def test_429_honours_a_small_numeric_retry_after(retry_after: str, slept: list[float]) -> None:
    api = OpenAIApi()
    api.script(error(429, "slow down", {"Retry-After": retry_after}))
    clock = ManualClock()
    call(api, lambda b: b.generate(make_context(1)), max_retries=1, clock=clock)
    assert len(api.chat_requests) == 2
    assert clock.slept == slept  # too long, negative or a date: the usual backoff


def test_5xx_forever_gives_up_after_max_retries_with_capped_backoff() -> None:
    api = OpenAIApi()
    api.script(*[error(500, "CUDA out of memory")] * 10)
    clock = ManualClock()
    with pytest.raises(BackendError) as exc:
        call(api, lambda b: b.generate(make_context(1)), max_retries=5, clock=clock)
    assert len(api.chat_requests) == 6
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 4.0]
    text = one_line(exc)
    assert "HTTP 500" in text and "CUDA out of memory" in text and "6 times" in text


def test_hung_server_is_cut_by_the_timeout() -> None:
    api = OpenAIApi()
    api.script(hang(30), hang(30))
    clock = ManualClock()
    with pytest.raises(BackendError) as exc:
        call(api, lambda b: b.generate(make_context(1)), timeout_s=0.5, max_retries=1,
             clock=clock)
    assert len(api.chat_requests) == 2 and clock.slept == [0.5]
    assert "no answer within 0.5 s" in one_line(exc)


def test_a_slow_answer_within_the_timeout_is_taken() -> None:
    api = OpenAIApi()
    api.script(hang(0.2))
    answer = call(api, lambda b: b.generate(make_context(1)), timeout_s=0.5)
    assert parse_emotion(answer, LABELS).label == "happiness"
    assert len(api.chat_requests) == 1


# --- start() -------------------------------------------------------------------------------

def test_start_picks_or_checks_the_model() -> None:
    async def started(backend: OpenAIBackend) -> str:
        await backend.start()
        await backend.generate(make_context(1))
        return backend.model

    api = OpenAIApi(models=["qwen-a", "qwen-b"])
    assert call(api, started) == "qwen-a"
    assert call(api, started, url=api.url + "/", model="qwen-b") == "qwen-b"
    assert [r.body["model"] for r in api.chat_requests] == ["qwen-a", "qwen-b"]
    with pytest.raises(ConfigError) as exc:
        call(api, lambda b: b.start(), model="llava")
    with pytest.raises(ConfigError, match="/v1"):
        call(api, lambda b: b.start(), url=api.url.removesuffix("/v1"))
    text = one_line(exc)
    assert "'llava'" in text and "qwen-a, qwen-b" in text


def test_start_refused_names_the_redacted_url_after_retries() -> None:
    clock = ManualClock()
    url = "http://user:secret@openai.test/v1"
    with pytest.raises(ConfigError) as exc:
        run(url, lambda b: b.start(), max_retries=2, clock=clock,
            transport=httpx.MockTransport(refused))
    text = one_line(exc)
    assert clock.slept == [0.5, 1.0]
    assert "secret" not in text and "user:***@openai.test/v1" in text
    assert text.startswith("cannot reach the VLM server") and "vllm serve" in text
    assert "ConnectError" in text


def test_start_unreachable_port() -> None:
    """A real connection refused by 127.0.0.1 (nothing listens), on a manual clock."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = ManualClock()
    with pytest.raises(ConfigError) as exc:
        run(f"http://user:secret@127.0.0.1:{port}/v1", lambda b: b.start(), max_retries=1,
            clock=clock)
    text = one_line(exc)
    assert "secret" not in text and f"user:***@127.0.0.1:{port}/v1" in text
    assert clock.slept == [0.5]


def test_satisfies_the_protocol() -> None:
    backend: VlmBackend = OpenAIBackend("http://127.0.0.1:1/v1", "m")  # checked by mypy
    assert backend.name == "openai" and backend.model == "m"


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http://"):
        OpenAIBackend("ftp://pass:word@host/v1", None)


# --- score() -------------------------------------------------------------------------------

def test_score_maps_first_token_logprobs_to_labels() -> None:
    ctx = make_context(2)
    alts = [(" happ", -0.3), ("Happiness", -2.0), (" sad", -2.5), ("Ne", -3.0), ("s", -3.5),
            ("{", -4.0)]
    api = OpenAIApi()
    api.script(logprobs(alts))
    scores = call(api, lambda b: b.score(ctx))
    body = api.chat_requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["max_tokens"] == 1 and body["guided_choice"] == list(LABELS)
    assert "response_format" not in body
    items = user_items(body)
    assert items[-1] == {"type": "text", "text": "Answer with one word from: "
                         + ", ".join(LABELS) + "."}
    assert sum(i["type"] == "image_url" for i in items) == 2
    assert len(items) == len(ctx.parts)
    floor = -4.0 - math.log(20)
    expected = {
        "happiness": math.log(math.exp(-0.3) + math.exp(-2.0)),
        "sadness": math.log(math.exp(-2.5) + math.exp(-3.5) / 2),  # "s": sadness or surprise
        "neutral": -3.0, "surprise": -3.5 - math.log(2),
        "anger": floor, "disgust": floor, "fear": floor,
    }
    assert list(scores) == list(LABELS)
    assert scores == pytest.approx(expected)


def test_score_default_answer_and_guided_choice_fallback() -> None:
    ctx = make_context(1)

    async def twice(backend: OpenAIBackend) -> list[dict[str, float]]:
        return [await backend.score(ctx), await backend.score(ctx)]

    api = OpenAIApi(reject_fields={"guided_choice"})
    first, second = call(api, twice)
    guided = ["guided_choice" in r.body for r in api.chat_requests]
    assert guided == [True, False, False]
    assert first == second and max(first, key=first.__getitem__) == "happiness"
    assert first["fear"] == pytest.approx(-6.5)


def test_score_without_logprobs_is_unsupported_and_remembered() -> None:
    ctx = make_context(1)
    api = OpenAIApi(logprobs=False)

    async def twice(backend: OpenAIBackend) -> None:
        for _ in range(2):
            with pytest.raises(ScoringUnsupported) as exc:
                await backend.score(ctx)
            assert one_line(exc) == (f"the server at {api.url} does not return logprobs; "
                                     "use vlm.decode: generate")

    call(api, twice)
    assert len(api.chat_requests) == 1


def test_score_answer_matching_no_label() -> None:
    api = OpenAIApi()
    api.script(logprobs([("{", -0.1), ("```", -2.0)]))
    with pytest.raises(BackendError, match="matches no label"):
        call(api, lambda b: b.score(make_context(1)))


def test_label_logprobs_tokens() -> None:
    labels = ("happiness", "sadness", "fear")
    out = label_logprobs([("▁Happy", -1.0), ("Ġfear", -2.0), ("fear.", -3.0), (" ", -4.0)],
                         labels)
    assert out == pytest.approx({"happiness": -1.0,
                                 "fear": math.log(math.exp(-2.0) + math.exp(-3.0)),
                                 "sadness": -4.0 - math.log(20)})
    assert label_logprobs([("{", -0.1)], labels) is None
