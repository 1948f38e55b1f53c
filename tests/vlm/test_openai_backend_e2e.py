"""The OpenAI-compatible backend against the test server over real HTTP on 127.0.0.1, in real
time: the request on the wire, a retry, and a hung server cut by the real timeout (the unit
tests in test_openai_backend.py cover the rest without sockets)."""

from __future__ import annotations

import time

import pytest
from openai_server import OpenAIServer, error, hang, logprobs  # tests/vlm is on sys.path
from test_openai_backend import (
    KEY,
    check_interleaved,
    make_context,
    one_line,
    run,
    start_generate,
)

from affectstream.vlm.backend import BackendError

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_real_server_generate_with_api_key() -> None:
    ctx = make_context(4)
    with OpenAIServer(api_key=KEY) as srv:
        answer = run(srv.url, lambda b: start_generate(b, ctx), api_key=KEY)
        assert [r.path for r in srv.requests] == ["/v1/models", "/v1/chat/completions"]
        assert {r.headers.get("authorization") for r in srv.requests} == {f"Bearer {KEY}"}
        check_interleaved(srv.chat_requests[0].body, ctx, answer)


def test_real_server_retries_and_scores() -> None:
    with OpenAIServer() as srv:
        srv.script(error(503, "loading", {"Retry-After": "0"}), logprobs([(" fear", -0.2)]))
        scores = run(srv.url, lambda b: b.score(make_context(1)), max_retries=1)
        assert len(srv.chat_requests) == 2
    assert max(scores, key=scores.__getitem__) == "fear"


def test_real_hung_server_is_cut_by_the_timeout() -> None:
    with OpenAIServer() as srv:
        srv.script(hang(30), hang(30))
        t0 = time.monotonic()
        with pytest.raises(BackendError) as exc:
            run(srv.url, lambda b: b.generate(make_context(1)), timeout_s=0.5, max_retries=1)
        elapsed = time.monotonic() - t0
        assert len(srv.chat_requests) == 2  # the server saw both attempts
    assert elapsed < 10.0
    assert "no answer within 0.5 s" in one_line(exc)
