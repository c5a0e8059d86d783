"""llm.py against a fake OpenAI-compatible server that the tests start on 127.0.0.1: the request
shape, retries (429 + Retry-After, 500, timeouts, garbage, empty choices), one-line errors, the
request cap, and that the key never shows."""
import socket
import threading
import time

import pytest

from lib import http, llm
from local_server import LocalServer

KEY = "sk-test-SECRET-0123456789"


class FakeServer(LocalServer):
    """Speaks POST /v1/chat/completions. `script` is a list of behaviours used one per request,
    then `reply(body)` answers: ('status', code, headers), ('garbage',), ('empty',), ('sleep', s),
    or ('text', str). Every request is recorded in `requests` as (path, headers, body)."""

    def __init__(self, reply=None):
        self.script, self.requests, self.lock = [], [], threading.Lock()
        self.reply = reply or (lambda body: "Grammar: 8/10\nCreativity: 7/10\nConsistency: 9/10\nPlot: 6/10\nAge group: C")
        super().__init__(self.handle)

    def handle(self, path, headers, body):
        with self.lock:
            self.requests.append((path, headers, body))
            action = self.script.pop(0) if self.script else ("text", None)
        if path != "/v1/chat/completions":
            return 404, {"error": "not found"}, {}
        kind = action[0]
        if kind == "status":
            return action[1], {"error": "busy"}, action[2] if len(action) > 2 else {}
        if kind == "garbage":
            return 200, b"<html>definitely not json", {}
        if kind == "empty":
            return 200, {"choices": []}, {}
        if kind == "sleep":
            time.sleep(action[1])
        text = action[1] if kind == "text" and action[1] is not None else self.reply(body)
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 10}}, {}


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def client(server, **kw):
    kw = dict(api_base=server.base, api_key=KEY, timeout=2.0, max_retries=3, backoff=0.01) | kw
    return llm.Client("gpt-4o", **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_request_shape_reply_and_counters(server):
    c = client(server, api_base=server.base + "/")  # trailing slash tolerated
    messages = [{"role": "user", "content": "Grade this."}]
    out = c.chat(messages, max_tokens=50)
    assert out == {"text": server.reply(None), "prompt_tokens": 100, "completion_tokens": 10}
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body == {"model": "gpt-4o", "messages": messages, "temperature": 0.0, "max_tokens": 50}
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert (c.requests_sent, c.prompt_tokens, c.completion_tokens) == (1, 100, 10)
    assert c.cost() == pytest.approx((100 * 2.50 + 10 * 10.00) / 1e6)
    assert llm.Client("my-local-model", api_base=server.base).cost() is None


def test_base_and_key_come_from_the_environment_and_a_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    c = llm.Client("local")
    assert c.chat([{"role": "user", "content": "hi"}])["text"]
    assert "Authorization" not in server.requests[0][1]


def test_429_with_retry_after_is_honoured(server):
    server.script = [("status", 429, {"Retry-After": "1"})]
    t0 = time.time()
    assert client(server).chat([{"role": "user", "content": "x"}])["text"]
    assert time.time() - t0 >= 0.9  # waited what the server asked, not the 0.01 s backoff
    assert len(server.requests) == 2


@pytest.mark.parametrize("failure", [("status", 500), ("status", 503), ("garbage",), ("empty",), ("sleep", 1.0)])
def test_transient_failures_are_retried(server, failure):
    server.script = [failure, failure]
    c = client(server, timeout=0.4)
    assert c.chat([{"role": "user", "content": "x"}])["text"].startswith("Grammar")
    assert len(server.requests) == 3 and c.requests_sent == 3


def test_retries_run_out_with_a_one_line_error(server):
    server.script = [("status", 500)] * 10
    with pytest.raises(llm.LLMError) as e:
        client(server, max_retries=2).chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 3
    assert "\n" not in str(e.value) and server.base in str(e.value) and KEY not in str(e.value)


def test_client_errors_fail_at_once_and_401_names_the_key(server):
    server.script = [("status", 401)]
    with pytest.raises(llm.LLMError, match="OPENAI_API_KEY") as e:
        client(server).chat([{"role": "user", "content": "x"}])
    assert KEY not in str(e.value)
    server.script = [("status", 400)]
    with pytest.raises(llm.LLMError, match="400"):
        client(server).chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 2  # neither retried


def test_missing_key_for_openai_is_a_one_line_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(llm.LLMError, match="OPENAI_API_KEY") as e:
        llm.Client("gpt-4o")
    assert "\n" not in str(e.value)


def test_unreachable_base_is_a_one_line_error_naming_the_url():
    base = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(llm.LLMError) as e:
        llm.Client("m", api_base=base, max_retries=2, backoff=0.01, timeout=1).chat([{"role": "user", "content": "x"}])
    assert base in str(e.value) and "\n" not in str(e.value)


def test_request_cap_raises_before_sending(server):
    c = client(server, max_requests=2)
    for _ in range(2):
        c.chat([{"role": "user", "content": "x"}])
    with pytest.raises(llm.BudgetExceeded, match="max_requests"):
        c.chat([{"role": "user", "content": "x"}])
    assert len(server.requests) == 2


def test_the_key_never_appears_in_repr_or_errors(server):
    c = client(server)
    assert KEY not in repr(c) and KEY not in str(vars(c).get("model"))
    server.script = [("status", 403)]
    with pytest.raises(llm.LLMError) as e:
        c.chat([{"role": "user", "content": "x"}])
    assert KEY not in str(e.value) and KEY not in repr(e.value)


def test_run_parallel_overlaps_and_reports_errors():
    def work(x):
        time.sleep(0.2)
        if x == 3:
            raise ValueError("three")
        return x * x

    t0 = time.time()
    out = list(llm.run_parallel(work, range(8), workers=8))
    assert time.time() - t0 < 1.0  # 8 x 0.2 s ran concurrently
    assert sorted(item for item, _, _ in out) == list(range(8))
    for item, result, error in out:
        assert (result, type(error)) == ((None, ValueError) if item == 3 else (item * item, type(None)))


def test_retry_wait_believes_retry_after_in_seconds_and_caps_every_wait():
    assert http.retry_wait(4.0) == 4.0
    assert http.retry_wait(4.0, "0") == 0.0  # the server says come back now
    assert http.retry_wait(4.0, "Wed, 21 Oct 2026 07:28:00 GMT") == 4.0  # a date: keep our schedule
    assert http.retry_wait(1e6) == http.retry_wait(1.0, "99999") == http.MAX_WAIT
