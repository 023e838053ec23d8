"""An OpenAI chat upstream that holds every answer until the test lets it go.

Each ``POST /v1/chat/completions`` is counted when it arrives and then waits for
:meth:`GatedUpstream.release`; every answer has the same usage (10 prompt and 5
completion tokens), so with a known price every call costs the same. Tests use it
to know exactly which calls are in flight when a budget is crossed.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

PROMPT_TOKENS = 10
COMPLETION_TOKENS = 5


class GatedUpstream:
    def __init__(self) -> None:
        self._gate = threading.Semaphore(0)
        self._changed = threading.Condition()
        self.arrived = 0
        self.answered = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with upstream._changed:
                    upstream.arrived += 1
                    upstream._changed.notify_all()
                upstream._gate.acquire()
                answer = json.dumps(
                    {
                        "id": "chatcmpl-gated",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "gpt-4o"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "ok"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": PROMPT_TOKENS,
                            "completion_tokens": COMPLETION_TOKENS,
                            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                with upstream._changed:
                    upstream.answered += 1
                    upstream._changed.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self._gate.release()

    def wait_arrived(self, n: int, timeout: float = 60.0) -> None:
        """Block until ``n`` calls have arrived in all (a deadline only against hangs)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.arrived >= n, timeout):
                raise TimeoutError(f"only {self.arrived} of {n} calls reached the upstream")

    def __enter__(self) -> GatedUpstream:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release(10_000)  # nobody stays stuck
        self._server.shutdown()
        self._server.server_close()
