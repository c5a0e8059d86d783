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

The same requests also go as files, in the OpenAI Batch API's format (half the price, nothing has to
stay connected): write_batch puts them in a JSONL input file, and read_batch takes the results file
back, handing each answer to the caller's own checks exactly as a live reply would be handed.
"""
import json
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import requests

from lib.configurator import atomic_write, die
from lib.http import retry_wait

DEFAULT_BASE = "https://api.openai.com/v1"
MAX_REPLY = 100_000  # characters of a reply that are kept: a story or a grade is a few thousand

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


def estimated_cost(model, prompt_tokens, completion_tokens):
    """'$1.23', or why there is no figure: what --dry_run prints."""
    p = price(model)
    return f"${(prompt_tokens * p[0] + completion_tokens * p[1]) / 1e6:.2f}" if p else f"unknown ({model} is not in llm.PRICES)"


def connect(model, api_base, max_requests, timeout, max_retries, backoff):
    """A Client for the scripts' settings, or one line naming the fix (e.g. a missing key)."""
    try:
        return Client(model, api_base=api_base or None, max_requests=max_requests, timeout=timeout,
                      max_retries=max_retries, backoff=backoff)
    except LLMError as e:
        die(str(e))


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
            return {"text": text[:MAX_REPLY], "prompt_tokens": pt, "completion_tokens": ct}
        raise LLMError(f"{self.url} failed {self.max_retries + 1} times ({last}); "
                       "check the server is up and the URL (OPENAI_BASE_URL / --api_base) is right")

    def cost(self):
        """Dollars spent so far by this client, or None if the model's price is unknown."""
        p = price(self.model)
        return None if p is None else (self.prompt_tokens * p[0] + self.completion_tokens * p[1]) / 1e6


def _one_line(text, limit=200):
    text = " ".join(str(text).split())
    return text[:limit] + ("..." if len(text) > limit else "")


BATCH_LIMIT = 50_000  # requests in one Batch API input file (the API's own cap)


def read_jsonl(path):
    """The rows of a JSONL file; a line that does not parse (the half line a kill mid-write leaves) is skipped."""
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def open_append(path):
    """`path` opened to append JSONL rows. A half line left by a kill mid-write is ended first, so it
    stays one unreadable line and the next row is not glued to it."""
    f = open(path, "a", encoding="utf-8")
    if f.tell():
        with open(path, "rb") as g:
            g.seek(-1, os.SEEK_END)
            if g.read(1) != b"\n":
                f.write("\n")
    return f


def append_jsonl(f, row):
    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()  # each result is durable the moment it arrives


def write_batch(path, requests):
    """[(custom_id, body)] -> a Batch API input file (POST /v1/chat/completions per line), written atomically."""
    atomic_write(path, lambda f: f.writelines(json.dumps({"custom_id": custom_id, "method": "POST",
                                                           "url": "/v1/chat/completions", "body": body},
                                                          ensure_ascii=False) + "\n" for custom_id, body in requests))


def submit_howto(path, n, read_command):
    """What to do with a written batch file: OpenAI's three steps, then the read step."""
    if not n:
        return f"batch: nothing left to ask; every request is answered ({path} not written)"
    auth = '-H "Authorization: Bearer $OPENAI_API_KEY"'
    return f"""batch: {n:,} requests written to {path}. With OpenAI's Batch API:
  curl https://api.openai.com/v1/files {auth} -F purpose=batch -F file=@{path}      # -> file id
  curl https://api.openai.com/v1/batches {auth} -H "Content-Type: application/json" \\
    -d '{{"input_file_id": "FILE_ID", "endpoint": "/v1/chat/completions", "completion_window": "24h"}}'   # -> batch id
  curl https://api.openai.com/v1/batches/BATCH_ID {auth}          # until "status": "completed"; -> output_file_id
  curl https://api.openai.com/v1/files/OUTPUT_FILE_ID/content {auth} > FILE
then: {read_command}"""


def batch_answer(line):
    """(custom_id, reply or None, error or None) from one line of a Batch API results file;
    raises ValueError for a line that is not a results record at all."""
    record = json.loads(line)
    if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
        raise ValueError("no custom_id")
    response = record.get("response") or {}
    if record.get("error") or response.get("status_code") != 200:
        error = record.get("error") or {}
        return record["custom_id"], None, _one_line(error.get("message") if isinstance(error, dict) else error
                                                    or f"HTTP {response.get('status_code')}")
    try:
        body = response["body"]
        text = body["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        return record["custom_id"], None, "a 200 response that holds no chat completion"
    usage = body.get("usage") or {}
    return record["custom_id"], {"text": text[:MAX_REPLY], "model": body.get("model"),
                                 "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                                 "completion_tokens": int(usage.get("completion_tokens") or 0)}, None


def read_batch(path, lookup, answered, apply, what):
    """Hand every answer in a Batch API results file to apply(request, reply) -> accepted (bool).
    lookup(custom_id) gives the open request an answer belongs to, or None; `answered` holds the ids
    answered before (a second answer is a duplicate, never applied). Nothing makes it stop halfway:
    each line is counted as accepted, refused, an error record, malformed, unknown or a duplicate, and
    the counts are printed in one line and returned. A file that answers none of our requests is
    someone else's (another seed, prompt or judge): that stops with one line."""
    counts, ours = {k: 0 for k in ("accepted", "refused", "error", "malformed", "unknown", "duplicate")}, 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        die(f"cannot read --batch_results={path}; pass the results file the batch API returned")
    answered = set(answered)
    for line in filter(str.strip, lines):
        try:
            custom_id, reply, error = batch_answer(line)
        except (ValueError, TypeError):
            counts["malformed"] += 1
            continue
        request = lookup(custom_id) if custom_id not in answered else None
        if request is None:
            duplicate = custom_id in answered
            counts["duplicate" if duplicate else "unknown"] += 1
            ours += duplicate
            continue
        ours += 1
        if error is not None:
            counts["error"] += 1  # not an answer: the request stays open for the next write
            continue
        answered.add(custom_id)
        counts["accepted" if apply(request, reply) else "refused"] += 1
    if lines and not ours:
        die(f"{path} answers none of this run's {what} requests (other custom_ids: another seed, "
            "prompt, recipe or judge?); read it with the settings that wrote its requests")
    print(f"batch: {path}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" ({what})")
    return counts


def ask_all(fn, items, workers, take):
    """fn(item) for every item on `workers` threads, take(item, result) as each one arrives. Sending
    stops at the request cap or at the first failure that retrying cannot fix, but what is already
    in flight is still taken in (it is paid for). Returns (items not sent for the cap, the failure)."""
    capped, failed = 0, None
    pending = (item for item in items if failed is None)
    for item, result, error in run_parallel(fn, pending, workers):
        if isinstance(error, BudgetExceeded):
            capped += 1  # nothing was sent for it
        elif isinstance(error, LLMError):
            failed = failed or error
        elif error is not None:
            raise error
        else:
            take(item, result)
    return capped, failed


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
