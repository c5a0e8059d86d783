"""
download.py: fetch one large file over HTTP(S) to disk, streamed, resumable, retried and verified.

prepare.py uses it for the real TinyStories on Hugging Face; it knows nothing about stories.

    path = download("https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-valid.txt",
                    "data/downloads/TinyStoriesV2-GPT4-valid.txt")

Bytes go to `<path>.part` as they arrive, never into memory, and the file is renamed to `<path>`
only once it is whole: as long as the server said and, where the server sends one, with the same
sha256 (Hugging Face sends the LFS object's sha256 as X-Linked-Etag). A `.part` left by a dropped
connection, a short body or a killed run resumes with a Range request. Connection errors, timeouts,
429 and 5xx are retried with exponential backoff (a Retry-After header wins); other HTTP errors stop
at once. A file already whole is not fetched again.
"""
import hashlib
import os
import re
import time

import requests

from lib.http import retry_wait

CHUNK = 1 << 18  # bytes per read and write; at most this much is lost (and fetched again) when a connection drops
NOT_A_FILE = {"text/html", "application/xhtml+xml", "application/json"}  # what a data file is never served as


class DownloadError(Exception):
    """A failure that retrying will not fix; str() is one line. status: the HTTP status, if any;
    unreachable: True when the last tries got no answer at all (no network, wrong host)."""

    def __init__(self, message, status=None, unreachable=False):
        super().__init__(message)
        self.status, self.unreachable = status, unreachable


def download(url, path, *, token=None, until=None, progress=None, max_retries=6, backoff=1.0, timeout=60.0):
    """Bring `path` up to the whole file at `url` and return `path`.

    until(chunk) -> bool, if given, is fed the file's bytes in order (those already on disk first)
    and stops the download as soon as it returns True: the bytes so far stay in `<path>.part`, which
    is returned, for a later call to resume (a .part may end mid-record and is not verified yet).
    progress(total_bytes, bytes_on_disk) makes an object whose update(n) is called per chunk.
    token goes as a bearer token and appears in no message."""
    part = path + ".part"
    if until is not None:  # what is on disk may already be enough
        on_disk = path if os.path.exists(path) else part
        if os.path.exists(on_disk) and _feed(on_disk, until):
            return on_disk
    if os.path.exists(path):
        return path
    headers = {"Accept-Encoding": "identity"}  # lengths and ranges must count the file's own bytes
    if token:
        headers["Authorization"] = f"Bearer {token}"
    session = requests.Session()
    total, sha256, shown, last, failures, retry_after, answered = None, None, None, "", 0, None, False
    while True:
        have = os.path.getsize(part) if os.path.exists(part) else 0
        if total is not None and have >= total:
            break
        if failures > max_retries:
            kept = f": the {have / 1e6:,.1f} MB already in {part} are kept and resume" if have else ""
            raise DownloadError(f"{url} failed {failures} times in a row ({last}); run again later{kept}",
                                unreachable=not answered)
        if failures:
            _sleep(backoff * 2 ** (failures - 1), retry_after, f"{last}, retry {failures}/{max_retries}")
        retry_after = None
        try:
            r = session.get(url, headers={**headers, "Range": f"bytes={have}-"} if have else headers,
                            stream=True, timeout=timeout)
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL):
            raise DownloadError(f"{url} is not a valid URL") from None
        except requests.RequestException as e:  # refused, reset, timed out: transient
            last, failures, answered = type(e).__name__, failures + 1, False  # the class only: no headers quoted
            continue
        answered = True
        with r:
            status, sha256 = r.status_code, _sha256_header(r) or sha256
            if status == 416:  # asked for bytes past the end: the .part is already whole, or too long
                size = _content_range_total(r)
                if size is not None and size == have:
                    total = size
                    continue
                if os.path.exists(part):
                    os.remove(part)
                raise DownloadError(f"{part} is longer than {url} ({have:,} bytes, not {size}); deleted it, run again")
            if status == 429 or status >= 500:
                last, failures, retry_after = f"HTTP {status}", failures + 1, r.headers.get("Retry-After")
                continue
            if status not in (200, 206):
                raise DownloadError(f"HTTP {status} for {url}", status)
            kind = r.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind in NOT_A_FILE:  # a captive portal, a login page, a mirror's error page: never the data
                raise DownloadError(f"{url} answered with a web page ({kind}), not the file: a captive portal or a "
                                    "wrong mirror? Nothing was kept", status)
            size = _content_range_total(r) if status == 206 else _int(r.headers.get("Content-Length"))
            size = size if size is not None else _int(_linked(r, "X-Linked-Size"))
            if total is not None and size is not None and size != total:
                os.remove(part)
                raise DownloadError(f"{url} changed size on the server mid-download ({total:,} -> {size:,} bytes); "
                                    "deleted the partial file, run again")
            total = size if size is not None else total
            if shown is None and progress is not None:
                shown = progress(total or 0, have)
            skip = have if status == 200 else 0  # a server that ignores Range sends it all again: skip what we have
            got = 0
            try:
                with open(part, "ab") as f:
                    for chunk in r.iter_content(CHUNK):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                        if not chunk:
                            continue
                        f.write(chunk)
                        got += len(chunk)
                        if shown is not None:
                            shown.update(len(chunk))
                        if until is not None and until(chunk):
                            return part
                ended = True
            except requests.RequestException as e:  # dropped mid-body, a short body, a stalled read
                last, ended = type(e).__name__, False
            if total is None and ended:
                total = have + got  # no length given: the body's clean end is the file's end
            elif total is not None and have + got < total:
                last = last if not ended else f"body ended {total - have - got:,} bytes short"
                if got:
                    print(f"download: {last} at {(have + got) / 1e6:,.1f} MB; resuming from there", flush=True)
            failures = 0 if got else failures + 1  # progress resets the count: a long download may drop often
    if have > total:
        os.remove(part)
        raise DownloadError(f"{url} sent {have:,} bytes, more than the {total:,} it announced; deleted them, run again")
    if sha256 is not None:
        digest = _sha256_file(part)
        if digest != sha256:
            os.remove(part)
            raise DownloadError(f"{url} arrived with sha256 {digest[:16]}..., not the server's {sha256[:16]}...; "
                                "deleted it, run again")
    os.replace(part, path)
    return path


def _feed(path, until):
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            if until(chunk):
                return True
    return False


def _sleep(seconds, retry_after, why):
    seconds = retry_wait(seconds, retry_after)
    print(f"download: {why} in {seconds:.1f}s", flush=True)
    time.sleep(seconds)


def _int(text):
    return int(text) if text is not None and text.strip().isdigit() else None


def _content_range_total(r):
    m = re.search(r"/(\d+)\s*$", r.headers.get("Content-Range", ""))  # "bytes 100-199/5000" or "bytes */5000"
    return int(m.group(1)) if m else None


def _linked(r, name):
    """A header of the response or of a redirect before it: Hugging Face's resolve URL answers with a
    redirect to its CDN, and the redirect carries X-Linked-Size and X-Linked-Etag."""
    for resp in (r, *r.history):
        if name in resp.headers:
            return resp.headers[name]
    return None


def _sha256_header(r):
    etag = (_linked(r, "X-Linked-Etag") or "").strip().removeprefix("W/").strip('"').lower()
    return etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
