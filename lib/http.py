"""
http.py: how long every HTTP call in the project waits before it tries again (the chat client in
llm.py and the downloader in download.py alike), so that a busy server meets one policy.
"""
MAX_WAIT = 60.0  # cap on a single backoff sleep, seconds (Retry-After included)


def retry_wait(seconds, retry_after=None):
    """Seconds to wait before retrying a request: our exponential schedule, unless the server sent a
    Retry-After in seconds (it knows when its rate window reopens); capped at MAX_WAIT."""
    if retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:  # an HTTP date rather than seconds: keep our own schedule
            pass
    return min(max(seconds, 0.0), MAX_WAIT)
