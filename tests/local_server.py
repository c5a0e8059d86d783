"""A throwaway HTTP server on 127.0.0.1 for tests that need a fake OpenAI-compatible API: each POST's
JSON body goes to `handle(path, headers, body)`, which returns (status, payload, headers) with the
payload a dict to send as JSON or raw bytes (for garbage replies). Used by test_llm's FakeServer (and
so test_grade) and test_generate's StoryServer."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """Serves on a free port from a daemon thread until close(); `base` is its /v1 URL."""

    def __init__(self, handle):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, payload, headers = handle(self.path, dict(self.headers), json.loads(raw or b"{}"))
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up or was killed
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
