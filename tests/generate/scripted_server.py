"""A local HTTP server that speaks the OpenAI Chat Completions, Anthropic Messages and Gemini
generateContent protocols and answers from a script, so the real SDKs can be tested without any
model.

    with ScriptedServer() as server:
        server.script("gpt-test", rate_limited(retry_after=1), text("```python ...```"))
        spec = ... base_url=server.openai_url ...
        ... server.requests ...             # every request received, parsed

A script is per model name: a queue of replies, each a `Reply` or a function of the request
returning one. A model without a script (or with an exhausted one) gets `server.fallback(request)`
if set, else HTTP 500 saying so. Replies can be delayed (to cause client timeouts), held until the
server stops (to kill a client mid-request), or be malformed bodies.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict (JSON), bytes (sent as is), or str: the completion's text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    hold: bool = False  # never answer until the server stops (the client is killed meanwhile)
    finish: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def text(content: str, **kwargs) -> Reply:
    """A completion whose text is `content`."""
    return Reply(body=content, **kwargs)


def code(source: str, prose: str = "Here is the kernel.") -> Reply:
    return text(f"{prose}\n\n```python\n{source.strip()}\n```\n")


def rate_limited(retry_after: float = 1) -> Reply:
    return Reply(429, {"error": {"message": "Rate limit reached for requests", "type": "rate_limit_error",
                                 "code": "rate_limit_exceeded"}}, {"retry-after": f"{retry_after:g}"})


def server_error(status: int = 503) -> Reply:
    return Reply(status, {"error": {"message": "The server is overloaded", "type": "server_error"}})


def unauthorized() -> Reply:
    return Reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                 "code": "invalid_api_key"}})


def malformed() -> Reply:
    return Reply(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess', {"content-type": "application/json"})


def slow(reply: Reply, seconds: float) -> Reply:
    reply.delay = seconds
    return reply


def held() -> Reply:
    return Reply(hold=True)


def free_port() -> int:
    """A loopback port nothing listens on (yet): an unreachable provider, until a server takes it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    protocol: str  # "openai" | "anthropic" | "google"
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def model(self) -> str:
        if self.protocol == "google":  # .../models/NAME:generateContent
            return self.path.split("/models/", 1)[1].split(":", 1)[0]
        return str(self.body.get("model"))

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation as role/content pairs, the system prompt first, whatever the protocol."""
        if self.protocol == "google":
            def text(content) -> str:
                return "".join(part.get("text", "") for part in content.get("parts", []))

            messages = [{"role": "assistant" if c.get("role") == "model" else "user", "content": text(c)}
                        for c in self.body.get("contents", [])]
            system = self.body.get("systemInstruction")
            return ([{"role": "system", "content": text(system)}] if system else []) + messages
        messages = [dict(m) for m in self.body.get("messages", [])]
        if self.protocol == "anthropic" and self.body.get("system"):
            messages.insert(0, {"role": "system", "content": self.body["system"]})
        return messages

    @property
    def last_user(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        return self.headers.get("x-api-key") or self.headers.get("x-goog-api-key")


class ScriptedServer:
    def __init__(self, port: int = 0) -> None:
        self._scripts: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was answering at one time
        self.fallback: Callable[[Received], Reply] | None = None
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-server", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def google_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, model: str, *replies: Reply | Callable[[Received], Reply]) -> None:
        with self._lock:
            self._scripts[model].extend(replies)

    def requests_for(self, model: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.model == model]

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_reply(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._scripts.get(request.model)
            step = queue.popleft() if queue else None
        if step is None:
            if self.fallback is not None:
                return self.fallback(request)
            return Reply(500, {"error": {"message": f"no scripted reply left for model {request.model!r}"}})
        return step(request) if callable(step) else step

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/").endswith("/chat/completions"):
                    protocol = "openai"
                elif self.path.rstrip("/").endswith("/messages"):
                    protocol = "anthropic"
                elif ":generateContent" in self.path:
                    protocol = "google"
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}}, {})
                    return
                request = Received(protocol, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                   time.monotonic())
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                answered = False
                try:
                    reply = server._next_reply(request)
                    if reply.hold:
                        server._stopping.wait()
                        return
                    if reply.delay and server._stopping.wait(reply.delay):
                        return
                    body = _body(protocol, request, reply)
                    with server._lock:  # counted out before the answer leaves: the client may ask again at once
                        server.in_flight -= 1
                        answered = True
                    self._send(reply.status, body, reply.headers)
                finally:
                    if not answered:
                        with server._lock:
                            server.in_flight -= 1

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", headers.get("content-type", "application/json"))
                    self.send_header("content-length", str(len(data)))
                    for name, value in headers.items():
                        if name.lower() != "content-type":
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to do

        return Handler


def _body(protocol: str, request: Received, reply: Reply) -> Any:
    if not isinstance(reply.body, str):
        return reply.body
    content = reply.body
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else max(1, len(json.dumps(request.messages)) // 4)
    completion = reply.completion_tokens if reply.completion_tokens is not None else max(1, len(content) // 4)
    if protocol == "openai":
        return {
            "id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "length" if reply.finish == "length" else reply.finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
    if protocol == "google":
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": content}]}, "index": 0,
                            "finishReason": "MAX_TOKENS" if reply.finish == "length" else "STOP"}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion,
                              "totalTokenCount": prompt + completion},
            "modelVersion": request.model,
        }
    return {
        "id": "msg_scripted", "type": "message", "role": "assistant", "model": request.model,
        "content": [{"type": "text", "text": content}],
        "stop_reason": "max_tokens" if reply.finish == "length" else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    }
