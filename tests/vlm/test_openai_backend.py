"""OpenAI-compatible backend against a real local HTTP server (tests/vlm/openai_server.py):
request shape (interleaved JPEG data URLs, response_format and its fallback, strict retry),
API key handling, retries, timeouts, start() checks and logprob scoring (DESIGN §8, R3)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import cv2
import numpy as np
import pytest
from openai_server import (  # tests/vlm is on sys.path
    OpenAIServer,
    Reply,
    content,
    error,
    garbage,
    hang,
    logprobs,
    reject_response_format,
)

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
    with OpenAIServer() as srv:
        answer = run(srv.url, lambda b: start_generate(b, ctx))
        assert [r.path for r in srv.requests] == ["/v1/models", "/v1/chat/completions"]
        body = srv.chat_requests[0].body
    assert parse_emotion(answer, LABELS).label == "happiness"
    assert body["model"] == "test-vlm"  # auto-picked
    assert body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert body["messages"][0]["content"] == ctx.system
    items = user_items(body)
    assert len(items) == len(ctx.parts)
    assert sum(item["type"] == "image_url" for item in items) == n
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
    with OpenAIServer() as srv:
        run(srv.url, lambda b: start_generate(b, ctx, strict=True))
        items = user_items(srv.chat_requests[0].body)
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

    with OpenAIServer(reject_formats={"json_schema"}) as srv:
        answers = run(srv.url, twice)
        kinds = [(r.body.get("response_format") or {}).get("type") for r in srv.chat_requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert all(parse_emotion(a, LABELS).label == "happiness" for a in answers)


def test_response_format_falls_back_to_none() -> None:
    ctx = make_context(1)
    with OpenAIServer() as srv:
        srv.script(reject_response_format("json_schema"), reject_response_format("json_object"),
                   content('{"label": "fear"}'))
        answer = run(srv.url, lambda b: start_generate(b, ctx))
        bodies = [r.body for r in srv.chat_requests]
    assert answer == '{"label": "fear"}'
    assert [("response_format" in b) for b in bodies] == [True, True, False]


def test_other_400_fails_at_once() -> None:
    with OpenAIServer() as srv:
        srv.script(error(400, "This model's maximum context length is 8192 tokens"))
        with pytest.raises(BackendError) as exc:
            run(srv.url, lambda b: start_generate(b, make_context(1)))
        assert len(srv.chat_requests) == 1
    text = one_line(exc)
    assert "HTTP 400" in text and "maximum context length" in text


def test_garbage_body_is_a_backend_error() -> None:
    with OpenAIServer() as srv:
        srv.script(garbage())
        with pytest.raises(BackendError) as exc:
            run(srv.url, lambda b: start_generate(b, make_context(1)))
        assert len(srv.chat_requests) == 1
    assert "non-JSON" in one_line(exc)


def test_null_content_is_a_backend_error() -> None:
    refusal = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None}}]}
    with OpenAIServer() as srv:
        srv.script(Reply(body=json.dumps(refusal).encode()))
        with pytest.raises(BackendError, match="no text content"):
            run(srv.url, lambda b: b.generate(make_context(1)))


# --- API key -------------------------------------------------------------------------------

def test_api_key_sent_as_bearer_and_never_shown() -> None:
    ctx = make_context(1)
    with OpenAIServer(api_key=KEY) as srv:
        run(srv.url, lambda b: start_generate(b, ctx), api_key=KEY)
        assert {r.headers.get("authorization") for r in srv.requests} == {f"Bearer {KEY}"}

        with pytest.raises(ConfigError) as wrong:
            run(srv.url, lambda b: b.start(), api_key="sk-wrong-key-42")
        assert "API key" in one_line(wrong) and "sk-wrong-key-42" not in str(wrong.value)
        with pytest.raises(ConfigError, match="API key"):
            run(srv.url, lambda b: b.start())

        srv.script(error(500, f"upstream rejected Authorization: Bearer {KEY}"))
        with pytest.raises(BackendError) as echoed:
            run(srv.url, lambda b: b.generate(ctx), api_key=KEY, max_retries=0)
    assert KEY not in one_line(echoed) and "***" in str(echoed.value)
    assert KEY not in repr(OpenAIBackend("http://127.0.0.1:1/v1", None, api_key=KEY))


# --- retries and timeouts ----------------------------------------------------------------

def test_retries_5xx_then_succeeds() -> None:
    with OpenAIServer() as srv:
        srv.script(error(500, "boom"), error(503, "loading"))
        answer = run(srv.url, lambda b: start_generate(b, make_context(1)), max_retries=2)
        assert len(srv.chat_requests) == 3
    assert parse_emotion(answer, LABELS).label == "happiness"


def test_429_honours_small_retry_after() -> None:
    with OpenAIServer() as srv:
        srv.script(error(429, "slow down", {"Retry-After": "0"}))
        t0 = time.monotonic()
        run(srv.url, lambda b: b.generate(make_context(1)), max_retries=1)
        assert time.monotonic() - t0 < 5.0
        assert len(srv.chat_requests) == 2


def test_5xx_forever_gives_up_after_max_retries() -> None:
    with OpenAIServer() as srv:
        srv.script(*[error(500, "CUDA out of memory")] * 10)
        with pytest.raises(BackendError) as exc:
            run(srv.url, lambda b: b.generate(make_context(1)), max_retries=2)
        assert len(srv.chat_requests) == 3
    text = one_line(exc)
    assert "HTTP 500" in text and "CUDA out of memory" in text and "3 times" in text


def test_hung_server_is_cut_by_the_timeout() -> None:
    with OpenAIServer() as srv:
        srv.script(hang(30), hang(30))
        t0 = time.monotonic()
        with pytest.raises(BackendError) as exc:
            run(srv.url, lambda b: b.generate(make_context(1)), timeout_s=0.5, max_retries=1)
        elapsed = time.monotonic() - t0
        assert len(srv.chat_requests) == 2  # the server saw both attempts
    assert elapsed < 10.0
    assert "no answer within 0.5 s" in one_line(exc)


# --- start() -------------------------------------------------------------------------------

def test_start_picks_or_checks_the_model() -> None:
    async def started(backend: OpenAIBackend) -> str:
        await backend.start()
        await backend.generate(make_context(1))
        return backend.model

    with OpenAIServer(models=["qwen-a", "qwen-b"]) as srv:
        assert run(srv.url, started) == "qwen-a"
        assert run(srv.url + "/", started, model="qwen-b") == "qwen-b"
        assert [r.body["model"] for r in srv.chat_requests] == ["qwen-a", "qwen-b"]
        with pytest.raises(ConfigError) as exc:
            run(srv.url, lambda b: b.start(), model="llava")
        with pytest.raises(ConfigError, match="/v1"):
            run(srv.url.removesuffix("/v1"), lambda b: b.start())
    text = one_line(exc)
    assert "'llava'" in text and "qwen-a, qwen-b" in text


def test_start_unreachable_names_the_redacted_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:secret@127.0.0.1:{port}/v1"
    with pytest.raises(ConfigError) as exc:
        run(url, lambda b: b.start(), max_retries=1)
    text = one_line(exc)
    assert "secret" not in text and f"user:***@127.0.0.1:{port}/v1" in text
    assert text.startswith("cannot reach the VLM server") and "vllm serve" in text


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
    with OpenAIServer() as srv:
        srv.script(logprobs(alts))
        scores = run(srv.url, lambda b: b.score(ctx))
        body = srv.chat_requests[0].body
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

    with OpenAIServer(reject_fields={"guided_choice"}) as srv:
        first, second = run(srv.url, twice)
        guided = ["guided_choice" in r.body for r in srv.chat_requests]
    assert guided == [True, False, False]
    assert first == second and max(first, key=first.__getitem__) == "happiness"
    assert first["fear"] == pytest.approx(-6.5)


def test_score_without_logprobs_is_unsupported_and_remembered() -> None:
    ctx = make_context(1)

    async def twice(backend: OpenAIBackend) -> None:
        for _ in range(2):
            with pytest.raises(ScoringUnsupported) as exc:
                await backend.score(ctx)
            assert one_line(exc) == (f"the server at {srv.url} does not return logprobs; "
                                     "use vlm.decode: generate")

    with OpenAIServer(logprobs=False) as srv:
        run(srv.url, twice)
        assert len(srv.chat_requests) == 1


def test_score_answer_matching_no_label() -> None:
    with OpenAIServer() as srv:
        srv.script(logprobs([("{", -0.1), ("```", -2.0)]))
        with pytest.raises(BackendError, match="matches no label"):
            run(srv.url, lambda b: b.score(make_context(1)))


def test_label_logprobs_tokens() -> None:
    labels = ("happiness", "sadness", "fear")
    out = label_logprobs([("▁Happy", -1.0), ("Ġfear", -2.0), ("fear.", -3.0), (" ", -4.0)],
                         labels)
    assert out == pytest.approx({"happiness": -1.0,
                                 "fear": math.log(math.exp(-2.0) + math.exp(-3.0)),
                                 "sadness": -4.0 - math.log(20)})
    assert label_logprobs([("{", -0.1)], labels) is None
