"""
llm.py: the one OpenAI-compatible chat client in the project (grade.py and prepare.py share it).

Speaks POST {base}/chat/completions, OpenAI's wire format, with plain `requests`, so any
compatible server works: OpenAI itself, or a local vLLM, llama.cpp or Ollama. Transient failures
(connection errors, timeouts, 429, 5xx, a reply that is not a completion) are retried with
exponential backoff; a client error (401, 404, ...) stops at once with a line naming the fix.
The API key lives only in this process's memory: it is sent as a header and never printed,
logged, stored or shown in an exception or repr.

    client = Client("gpt-4o", max_requests=100)
    reply = client.chat([{"role": "user", "content": "Hi"}])   # {"text", "prompt_tokens", ...}
    print(client.requests_sent, client.cost())
"""
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import requests

DEFAULT_BASE = "https://api.openai.com/v1"
MAX_WAIT = 60.0  # cap on a single backoff sleep, seconds (Retry-After included)

# Dollars per million (prompt, completion) tokens. A rough guide for --dry_run and the final
# report; check the provider's price page before a large run. Longest name prefix wins.
PRICES = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


class LLMError(Exception):
    """A failure the caller cannot retry its way out of; str() is one line naming the fix."""


class BudgetExceeded(LLMError):
    pass


def price(model):
    """(prompt, completion) dollars per million tokens for a model name, or None if unknown."""
    matches = [name for name in PRICES if model.startswith(name)]
    return PRICES[max(matches, key=len)] if matches else None


def estimate_tokens(text) -> int:
    """Rough token count (about 4 characters a token for English): good enough for a cost estimate."""
    return max(1, len(text) // 4)


class Client:
    def __init__(self, model, api_base=None, api_key=None, max_requests=0, timeout=60.0, max_retries=6, backoff=1.0):
        self.model = model
        self.base = (api_base or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        if not key and "api.openai.com" in self.base:
            raise LLMError(f"{self.base} needs an API key: set OPENAI_API_KEY, "
                           "or point OPENAI_BASE_URL / --api_base at a local OpenAI-compatible server")
        # Kept in a closure-like private attribute and left out of __repr__; never formatted into messages.
        self._headers = {"Content-Type": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.url = f"{self.base}/chat/completions"
        self.max_requests, self.timeout = max_requests, timeout
        self.max_retries, self.backoff = max_retries, backoff
        self.requests_sent = self.prompt_tokens = self.completion_tokens = 0
        self._lock = threading.Lock()
        self._session = threading.local()  # requests.Session is not documented as thread-safe

    def __repr__(self):
        return f"Client(model={self.model!r}, base={self.base!r}, requests_sent={self.requests_sent})"

    def _post(self, body):
        with self._lock:  # count before sending, so concurrent workers cannot overshoot the cap
            if self.max_requests and self.requests_sent >= self.max_requests:
                raise BudgetExceeded(f"request cap reached ({self.max_requests} sent); "
                                     "raise --max_requests to send more (done work is cached)")
            self.requests_sent += 1
        session = getattr(self._session, "s", None)
        if session is None:
            session = self._session.s = requests.Session()
        return session.post(self.url, json=body, headers=self._headers, timeout=self.timeout)

    def _sleep(self, attempt, retry_after=None):
        time.sleep(retry_wait(self.backoff * 2 ** attempt, retry_after))

    def chat(self, messages, temperature=0.0, max_tokens=None) -> dict:
        """One chat completion -> {"text", "prompt_tokens", "completion_tokens"}, retrying what is transient."""
        body = {"model": self.model, "messages": messages, "temperature": temperature}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        last, retry_after = "no attempt made", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(attempt - 1, retry_after)
            retry_after = None
            try:
                r = self._post(body)
            except requests.Timeout:
                last = f"timed out after {self.timeout:g}s"
                continue
            except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL):
                raise LLMError(f"{self.url} is not a valid URL; set OPENAI_BASE_URL or --api_base "
                               "to something like http://localhost:8000/v1") from None
            except requests.RequestException as e:  # connection refused or reset, a broken reply: transient
                last = f"{type(e).__name__}"  # the name only: an exception's text could quote the request
                continue
            if r.status_code == 429 or r.status_code >= 500:
                retry_after = r.headers.get("Retry-After")
                last = f"HTTP {r.status_code}"
                continue
            if r.status_code in (401, 403):
                raise LLMError(f"HTTP {r.status_code} from {self.url}: the server refused the key; check OPENAI_API_KEY")
            if r.status_code >= 400:
                raise LLMError(f"HTTP {r.status_code} from {self.url}: {_one_line(r.text)}; "
                               f"check the model ({self.model!r}: --judge_model or --generate_model) and the base URL")
            try:
                data = r.json()
                text = data["choices"][0]["message"]["content"]
                if not isinstance(text, str):
                    raise TypeError("content is not a string")
            except (ValueError, KeyError, IndexError, TypeError):
                last = "reply was not a chat completion"
                continue
            usage = data.get("usage") or {}
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            with self._lock:
                self.prompt_tokens += pt
                self.completion_tokens += ct
            return {"text": text, "prompt_tokens": pt, "completion_tokens": ct}
        raise LLMError(f"{self.url} failed {self.max_retries + 1} times ({last}); "
                       "check the server is up and the URL (OPENAI_BASE_URL / --api_base) is right")

    def cost(self):
        """Dollars spent so far by this client, or None if the model's price is unknown."""
        p = price(self.model)
        return None if p is None else (self.prompt_tokens * p[0] + self.completion_tokens * p[1]) / 1e6


def retry_wait(seconds, retry_after=None):
    """Seconds to wait before retrying a request: our exponential schedule, unless the server sent a
    Retry-After in seconds (it knows when its rate window reopens); capped at MAX_WAIT. Shared by the
    chat client here and download.py, so every HTTP retry in the project waits the same way."""
    if retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:  # an HTTP date rather than seconds: keep our own schedule
            pass
    return min(max(seconds, 0.0), MAX_WAIT)


def _one_line(text, limit=200):
    text = " ".join(str(text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def run_parallel(fn, items, workers):
    """Run fn(item) on a pool of `workers` threads; yield (item, result, error) as each one finishes,
    error being None or the exception fn raised. Submits lazily, so a caller that stops early
    (e.g. on BudgetExceeded) leaves at most `workers` calls in flight."""
    items = iter(items)
    workers = max(1, int(workers))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {}

        def submit():
            for item in items:
                pending[pool.submit(fn, item)] = item
                return True
            return False

        for _ in range(workers):
            if not submit():
                break
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item = pending.pop(fut)
                    err = fut.exception()
                    yield item, (None if err else fut.result()), err
                    submit()
        finally:
            for fut in pending:
                fut.cancel()
