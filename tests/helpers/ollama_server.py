"""A local HTTP server that speaks the part of Ollama's API the planner uses (POST /api/chat, GET /api/tags),
as a test double beside the real `ollama` client. It answers with whatever plan the test sets and records the
requests it got, so a test can check what the client sent (model, messages, the JSON-schema `format`).
A chat whose messages carry `images` (base64, as the client sends them to a vision model) is answered with
`vision_answer` after `vision_delay_s`, and the decoded images are kept in `images`."""
from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOllama:
    def __init__(self, model: str = "llama3.2:3b"):
        self.model = model
        self.answer = {"actions": [], "reply": ""}
        self.requests: list[dict] = []
        self.vision_answer = "I see a person."
        self.vision_delay_s = 0.0
        self.images: list[bytes] = []          # every image received, decoded from base64, in arrival order
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):
                pass

            def _send(self, code: int, body: dict):
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass            # the client gave up first (its timeout, a slow vision answer): expected

            def do_GET(self):
                if self.path == "/api/tags":
                    self._send(200, {"models": [{"name": outer.model, "model": outer.model}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests.append({"path": self.path, **body})
                if self.path != "/api/chat":
                    return self._send(404, {"error": f"unsupported path {self.path}"})
                if body.get("model") != outer.model:
                    return self._send(404, {"error": f"model '{body.get('model')}' not found, try pulling it first"})
                images = [image for message in body.get("messages", []) for image in message.get("images") or []]
                if images:
                    outer.images.extend(base64.b64decode(image, validate=True) for image in images)
                    time.sleep(outer.vision_delay_s)      # a slow vision model (the server thread only)
                    content = outer.vision_answer
                else:
                    content = outer.answer if isinstance(outer.answer, str) else json.dumps(outer.answer)
                self._send(200, {"model": outer.model, "created_at": "2026-11-24T00:00:00Z",
                                 "message": {"role": "assistant", "content": content},
                                 "done": True, "done_reason": "stop", "total_duration": 1000,
                                 "eval_count": 10, "prompt_eval_count": 20})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
