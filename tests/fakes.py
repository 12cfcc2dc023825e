"""Local stand-ins for OpenAI's chat-completions API and Meta's Send API, served on 127.0.0.1.

Each answers over HTTP like the real one (status codes, error bodies, streams), for the unit tests, the
end-to-end tests (the app in another process) and the benchmarks alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """What the fake server answers to one request."""

    status: int = HTTPStatus.OK
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    hold: bool = False  # answer only once `released` is set (or the fake is closed)
    delay: float = 0.0  # seconds the real service would take to answer (a model thinking)
    # Server-sent events instead of one JSON body: each a chunk, sent `chunk_delay` seconds apart.
    chunks: list[dict] | None = None
    chunk_delay: float = 0.0
    cut_after: int | None = None  # the connection drops after this many chunks (a broken stream)
    gate: Gate | None = None  # the stream stops before a chunk until the gate opens
    done: bool = True  # the stream ends with "data: [DONE]" (llama.cpp's server leaves it out when it fails)
    comments: int = 0  # ": keep-alive" comments sent, `chunk_delay` apart, before the first chunk
    plain: bool = False  # answered as one JSON body even to a streamed request (a server that cannot stream)
    raw: bytes | None = None  # a file's bytes instead of JSON (a media download), of type `content_type`
    content_type: str = "application/json"


@dataclass
class Gate:
    """Holds a stream before chunk number `at` until `opened` is set (or 10 s pass: `in_time` says which)."""

    at: int
    opened: threading.Event = field(default_factory=threading.Event)
    in_time: bool | None = None


def streamed(
    reply: Reply,
    include_usage: bool = True,
    cut_after: int | None = None,
    tokens_per_second: float = 0.0,
    calls_like_llama_cpp: bool = False,
) -> Reply:
    """A chat completion as OpenAI streams it: a role chunk, the content a token (about four characters) at a
    time, a chunk with the finish reason, a usage chunk when asked for, then [DONE]. Without `include_usage`
    it streams as llama-cpp-python's server does (0.3.36, checked by hand): no usage chunk even when asked,
    and no `usage` key in the chunks. Tool calls stream as OpenAI's do: the id and name once, then the arguments
    in pieces; `calls_like_llama_cpp` repeats the id and name with every piece, as llama-cpp-python 0.3.36 does."""
    body = reply.body
    choice = body["choices"][0]
    text = choice["message"]["content"] or ""
    base = {"id": body["id"], "object": "chat.completion.chunk", "created": body["created"], "model": body["model"]}

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        return {**base, "choices": choices, **({"usage": None} if include_usage else {})}

    # A refusal streams in `refusal` deltas instead of `content`.
    key, text = (
        ("content", text) if text or not choice["message"].get("refusal") else ("refusal", choice["message"]["refusal"])
    )
    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({key: piece}) for piece in re.findall(r"\s*\S{1,4}|\s+", text)]
    for index, call in enumerate(choice["message"].get("tool_calls") or []):
        # As OpenAI streams a call: its id and name first, then its arguments a few characters at a time.
        opening = {"index": index, "id": call["id"], "type": "function"}
        chunks.append(
            chunk({"tool_calls": [{**opening, "function": {"name": call["function"]["name"], "arguments": ""}}]})
        )
        arguments = call["function"]["arguments"]
        for start in range(0, len(arguments), 7):
            function = {"arguments": arguments[start : start + 7]}
            piece: dict = {"index": index, "function": function}
            if calls_like_llama_cpp:
                piece = {**opening, "function": {"name": call["function"]["name"], **function}}
            chunks.append(chunk({"tool_calls": [piece]}))
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": body["usage"]})
    delay = 1 / tokens_per_second if tokens_per_second else 0.0
    return Reply(delay=reply.delay, hold=reply.hold, chunks=chunks, chunk_delay=delay, cut_after=cut_after)


def completion(
    text: str | None,
    finish_reason: str = "stop",
    prompt_tokens: int = 50,
    completion_tokens: int = 10,
    delay: float = 0.0,
) -> Reply:
    """A chat completion shaped like OpenAI's, answered after `delay` seconds."""
    return Reply(
        delay=delay,
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "gpt-4.1-mini-2025-04-14",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )


def openai_error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Reply:
    """An error body shaped like OpenAI's."""
    return Reply(status=status, body={"error": {"message": message, "type": type_, "param": param, "code": code}})


def tool_calls(*calls: tuple[str, dict | str], text: str | None = None) -> Reply:
    """A chat completion asking for tools, as OpenAI answers one: each call's id, name and arguments (JSON text; a
    text given as such is sent as it is, malformed or not), finish_reason "tool_calls", content null."""
    reply = completion(text, finish_reason="tool_calls")
    message = reply.body["choices"][0]["message"]
    message["tool_calls"] = [
        {
            "id": f"call_{number}{name[:8]}",
            "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
        }
        for number, (name, arguments) in enumerate(calls)
    ]
    return reply


def echo_answer(request: dict) -> Reply:
    """By default the fake model answers with the last thing the person said (the text of it)."""
    content = request["messages"][-1]["content"]
    if isinstance(content, list):
        content = " ".join(part["text"] for part in content if part.get("type") == "text")
    return completion(f"You said: {content}")


WINDOW_REFUSAL = (
    "This model's maximum context length is {window} tokens. However, you requested {total} tokens "
    "({prompt} in the messages, {cap} in the completion). Please reduce the length of the messages or completion."
)
# What servers that do not name their window say (an older llama.cpp server).
UNNAMED_REFUSAL = "the request exceeds the available context size, try increasing it"


def server_tokens(message: dict) -> int:
    """Tokens a real server counts for a message: about four bytes a token, plus its chat template's framing."""
    content = message["content"]
    if isinstance(content, list):
        content = " ".join(part.get("text", "") for part in content)
    return -(-len(content.encode()) // 4) + 5


class SmallWindow:
    """A model with a small context window, refusing like llama.cpp's OpenAI-compatible server.

    Prompt tokens plus the asked reply cap must fit `window`; otherwise an HTTP 400 with the
    window in the message (or, with `named=False`, without any number). Answers are `answer_chars`
    long, cut to the cap. Counts what it refused and answered.

    With `streams_like_llama_cpp`, it answers as llama-cpp-python's server 0.3.36 does (captured by
    hand; its source agrees for requests not streamed). Streamed, a request it would refuse gets a
    prompt over the window, `200 text/event-stream` with an empty body; a prompt that fits but whose
    answer would overflow, a stream of its first few words that ends without `[DONE]`. `cut_streams`
    counts those. Not streamed, only a prompt over the window is refused (naming it); one that fits is
    answered, its cap cut to what the window leaves, so that the usage of an answer cut short adds up
    to the window.

    `says_window` names the server it is where servers say their window (see `about`).
    """

    def __init__(
        self,
        window: int,
        answer_chars: int = 600,
        named: bool = True,
        streams_like_llama_cpp: bool = False,
        says_window: str | None = None,
    ):
        self.window = window
        self.answer_chars = answer_chars
        self.named = named
        self.streams_like_llama_cpp = streams_like_llama_cpp
        self.says_window = says_window
        self.refused = 0
        self.cut_streams = 0
        self.answered = 0

    def about(self, path: str, models: set[str]) -> Reply | None:
        """What the server answers where servers say their window (None: as any server does), shaped as each
        server's answer is: "llama.cpp" (llama-server's GET /props, a slot's n_ctx), "vllm" (GET /v1/models,
        max_model_len), "ollama" (POST /api/show, the Modelfile setting num_ctx); None (llama-cpp-python
        0.3.36, checked by hand): no /props nor /api/show (FastAPI's 404), models listed without a window."""
        if path == "/props" and self.says_window == "llama.cpp":
            slot = {"id": 0, "id_task": -1, "n_ctx": self.window, "is_processing": False, "params": {"n_predict": -1}}
            return Reply(
                body={
                    "default_generation_settings": slot,
                    "total_slots": 1,
                    "model_path": "/models/SmolLM2-135M-Instruct-Q8_0.gguf",
                    "chat_template": "{% for message in messages %}...{% endfor %}",
                    "build_info": "b5400-8e6d2a1",
                }
            )
        if path == "/v1/models" and self.says_window == "vllm":
            listed = [
                {**_model(name), "owned_by": "vllm", "root": name, "max_model_len": self.window} for name in models
            ]
            return Reply(body={"object": "list", "data": listed})
        if path == "/v1/models" and self.says_window is None:
            listed = [{"id": name, "object": "model", "owned_by": "me", "permissions": []} for name in models]
            return Reply(body={"object": "list", "data": listed})
        if path == "/api/show" and self.says_window == "ollama":
            parameters = f'num_ctx                        {self.window}\nstop                           "<|im_end|>"'
            info = {"general.architecture": "llama", "llama.context_length": 8192, "llama.embedding_length": 576}
            details = {"format": "gguf", "family": "llama", "parameter_size": "134.52M", "quantization_level": "F16"}
            return Reply(
                body={
                    "modelfile": "FROM smollm2:135m\n",
                    "parameters": parameters,
                    "details": details,
                    "model_info": info,
                }
            )
        if path in ("/props", "/api/show"):
            return Reply(status=HTTPStatus.NOT_FOUND, body={"detail": "Not Found"})
        return None

    def __call__(self, request: dict) -> Reply:
        prompt = sum(server_tokens(message) for message in request["messages"])
        cap = request.get("max_tokens") or request.get("max_completion_tokens") or 0
        if prompt + cap > self.window and self.streams_like_llama_cpp and request.get("stream"):
            self.cut_streams += 1
            if prompt >= self.window:
                return Reply(chunks=[], done=False)
            first_words = streamed(completion("The answer begins with a few words"))
            assert first_words.chunks is not None
            return Reply(chunks=first_words.chunks[:6], done=False)
        if self.streams_like_llama_cpp and prompt < self.window:
            cap = min(cap, self.window - prompt)
        elif prompt + cap > self.window:
            self.refused += 1
            if not self.named:
                return openai_error(400, UNNAMED_REFUSAL, "exceed_context_size_error")
            message = WINDOW_REFUSAL.format(window=self.window, total=prompt + cap, prompt=prompt, cap=cap)
            return openai_error(400, message, "invalid_request_error", "context_length_exceeded", param="messages")
        self.answered += 1
        text = ("A long answer. " * self.answer_chars)[: min(self.answer_chars, cap * 4)].strip()
        tokens = min(cap, -(-len(text) // 4))
        return completion(text, "length" if tokens == cap else "stop", prompt_tokens=prompt, completion_tokens=tokens)


class _HTTPServer(ThreadingHTTPServer):
    # Real APIs accept many connections at once; the default backlog of 5 would queue them.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a timeout test, a pooled connection closed) is no error of the server's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Server:
    """A threaded HTTP server that records JSON requests and answers from a script or a function."""

    def __init__(self, default: Callable[[dict], Reply], port: int = 0):
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.headers: list[dict] = []
        self.arrived: list[float] = []  # time.monotonic() of each request
        self.script: deque[Reply] = deque()
        self.default = default
        self.released = threading.Event()
        self._lock = threading.Condition()
        self._httpd = _HTTPServer(("127.0.0.1", port), self._handler_class())
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        """Release held requests and stop serving."""
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> bool:
        """Block until `condition()` holds, re-checked at every request; False on timeout."""
        with self._lock:
            return self._lock.wait_for(condition, timeout)

    def reset(self) -> None:
        """Forget what was received and scripted."""
        with self._lock:
            for records in (self.requests, self.paths, self.headers, self.arrived):
                records.clear()
            self.script.clear()

    def _answer(self, path: str, headers: dict, request: dict) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.paths.append(path)
            self.headers.append(headers)
            self.arrived.append(time.monotonic())
            scripted = self.script.popleft() if self.script else None
            self._lock.notify_all()
        return scripted or self.route(path, request)

    def route(self, path: str, request: dict) -> Reply:
        """The answer when nothing is scripted."""
        return self.default(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle's algorithm on, the body waits
            # for the client's delayed ACK (40 ms), a stall no real API has.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self._reply(server._answer(self.path, {k.lower(): v for k, v in self.headers.items()}, {}))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {"_body": raw}  # a multipart upload, kept as bytes
                self._reply(server._answer(self.path, {k.lower(): v for k, v in self.headers.items()}, request))

            do_DELETE = do_POST  # the Messenger profile's fields are deleted with a JSON body

            def _reply(self, reply: Reply) -> None:
                if reply.hold:
                    server.released.wait()
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.chunks is not None:
                    self._stream(reply)
                    return
                payload = json.dumps(reply.body).encode() if reply.raw is None else reply.raw
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def _stream(self, reply: Reply) -> None:
                """Server-sent events in HTTP chunks, as OpenAI sends them; a cut stream drops the connection."""
                assert reply.chunks is not None
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    events = [": keep-alive\n\n"] * reply.comments
                    events += [f"data: {json.dumps(chunk)}\n\n" for chunk in reply.chunks]
                    events += ["data: [DONE]\n\n"] if reply.done else []
                    for number, event in enumerate(events):
                        if reply.cut_after is not None and number >= reply.cut_after:
                            self.close_connection = True
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        if reply.chunk_delay and number:
                            time.sleep(reply.chunk_delay)
                        if reply.gate is not None and number == reply.gate.at:
                            reply.gate.in_time = reply.gate.opened.wait(timeout=10)
                        data = event.encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args: object) -> None:
                pass

        return Handler


# Where servers say their context window: llama.cpp's llama-server, vLLM, Ollama (see SmallWindow.about).
WINDOW_PATHS = {"/props", "/v1/models", "/api/show"}


class FakeOpenAI(_Server):
    """OpenAI's `POST /v1/chat/completions`, `/v1/audio/transcriptions` and `/v1/embeddings`, answering like the
    real ones."""

    def __init__(self, default: Callable[[dict], Reply] = echo_answer):
        super().__init__(default)
        self.transcript = "what time is it in Tokyo"
        self.tokens_per_second = 0.0  # how fast streamed answers are written (0: at once)
        self.models = {"gpt-4.1-mini", "gpt-4o-mini-transcribe"}
        # Words the moderation endpoint flags (as harassment), wherever they are in a message.
        self.flagged_words = {"scumbag"}
        self.moderates = True
        self.asked_window: list[str] = []  # the paths asked where servers say their window (WINDOW_PATHS)

    def _answer(self, path: str, headers: dict, request: dict) -> Reply:
        where = urlsplit(path).path
        if where in WINDOW_PATHS:
            # Asked once before the first prompt: kept apart from `requests`, and never answered from the script.
            self.asked_window.append(where)
            about = getattr(self.default, "about", None)
            answer = about(where, self.models) if about else None
            return answer or self.route(where, request)
        reply = super()._answer(path, headers, request)
        ok = reply.status == HTTPStatus.OK and not reply.plain
        if request.get("stream") and reply.chunks is None and ok and "choices" in reply.body:
            # A completion scripted for a streamed request is streamed, as the real server would.
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            return streamed(reply, include_usage, tokens_per_second=self.tokens_per_second)
        return reply

    def route(self, path: str, request: dict) -> Reply:
        if path.endswith("/embeddings"):
            return embeddings(request)
        if path.endswith("/moderations"):
            if not self.moderates:  # a compatible server without the endpoint (llama.cpp's, Ollama)
                return openai_error(404, "Not Found", "invalid_request_error")
            return moderation(request, self.flagged_words)
        if path.endswith("/audio/transcriptions"):
            return Reply(body={"text": self.transcript, "usage": {"type": "duration", "seconds": 3}})
        if path in ("/props", "/api/show"):  # llama.cpp's and Ollama's: OpenAI has neither
            return openai_error(404, f"Invalid URL ({path})", "invalid_request_error")
        if path == "/v1/models":
            return Reply(body={"object": "list", "data": [_model(name) for name in sorted(self.models)]})
        if path.startswith("/v1/models/"):
            name = path.removeprefix("/v1/models/")
            if name in self.models:
                return Reply(body=_model(name))
            message = f"The model `{name}` does not exist or you do not have access to it."
            return openai_error(404, message, "invalid_request_error", "model_not_found")
        return self.default(request)

    @property
    def base_url(self) -> str:
        """The value for OPENAI_BASE_URL."""
        return self.url + "/v1"


MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def moderation(request: dict, flagged_words: set[str]) -> Reply:
    """`POST /v1/moderations` as OpenAI answers it (omni-moderation-latest, text and image parts): one result,
    flagged as harassment when a text part has one of `flagged_words`."""
    parts = request.get("input")
    texts = [parts] if isinstance(parts, str) else [p.get("text", "") for p in parts or [] if p.get("type") == "text"]
    flagged = any(word in text.lower() for text in texts for word in flagged_words)
    categories = {name: flagged and name == "harassment" for name in MODERATION_CATEGORIES}
    result = {
        "flagged": flagged,
        "categories": categories,
        "category_scores": {name: 0.97 if on else 0.0001 for name, on in categories.items()},
        "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
    }
    return Reply(body={"id": "modr-0123", "model": "omni-moderation-latest", "results": [result]})


EMBEDDING_DIMENSIONS = 64


def embedding_of(text: str) -> list[float]:
    """A deterministic embedding: a hashed bag of the text's words of four letters or more, each by its first
    five letters, so that words of one root ("deliver", "delivery") point the same way, as in a real model."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in re.findall(r"\w{4,}", text.lower()):
        digest = hashlib.sha256(word[:5].encode()).digest()
        vector[digest[0] % EMBEDDING_DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
    return vector


def embeddings(request: dict) -> Reply:
    """`POST /v1/embeddings` as OpenAI answers it: one embedding per input, as floats or base64 float32."""
    inputs = request.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs or not all(isinstance(text, str) and text for text in inputs):
        return openai_error(400, "'input' must be a non-empty string or array of strings", "invalid_request_error")
    data = []
    for index, text in enumerate(inputs):
        vector = embedding_of(text)
        encoded: list[float] | str = vector
        if request.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(text) // 4 + 1 for text in inputs)
    return Reply(
        body={
            "object": "list",
            "data": data,
            "model": request.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": 1700000000, "owned_by": "system"}


@dataclass
class Media:
    """A file a person sent on WhatsApp, as Meta keeps it: found by its id, downloaded with the token."""

    content: bytes
    mime_type: str
    # The Content-Type its download is served with, when not its own type.
    served_as: str | None = None
    # The checksum Meta gives (hex), when not the file's own.
    sha256: str | None = None
    # Its link is given, but the media server no longer has the file (404).
    gone: bool = False


# Where the fake serves WhatsApp's media (Meta's is lookaside.fbsbx.com/whatsapp_business/attachments/).
MEDIA_PATH = "/whatsapp_business/attachments/"


class FakeGraph(_Server):
    """Meta's Graph API for a page (`POST /vXX.0/me/...`: the Send API, thread control, the Messenger profile) and a
    WhatsApp number (`/vXX.0/{number id}/messages`, media by id): records every call, answers like Meta, fails on
    demand."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(self._accept, port)
        # Each failure, with the calls it applies to: True for text messages only, an endpoint's name
        # (pass_thread_control, messenger_profile) for calls to it only, False for any call.
        self.failures: deque[tuple[Reply, bool | str]] = deque()
        self.on_call: Callable[[dict], object] | None = None  # called with each call before it is answered
        self.message_ids: list[str] = []  # the id Meta gave each message it accepted
        # What GET /me/subscribed_apps answers: this app's webhook fields for the page.
        self.subscribed_fields = ["messages", "messaging_postbacks", "message_echoes", "messaging_handovers", "standby"]
        # Posts' and Instagram media's texts by id (GET /{id}?fields=message or caption), and each comment's author
        # as a private reply's answer names them (their page-scoped id).
        self.posts: dict[str, str] = {}
        self.commenters: dict[str, str] = {}
        # People's profiles by their scoped id (GET /{PSID or IGSID}?fields=...: answered with the fields asked that
        # the profile has, as Meta leaves out what it does not give).
        self.profiles: dict[str, dict[str, str]] = {}
        # The WhatsApp Business Account's message templates (GET /{WABA id}/message_templates), served this many a
        # page with Meta's cursors.
        self.templates: list[dict] = []
        self.templates_page_size = 2
        # What GET /{app id}/subscriptions answers: the app's webhook objects and fields.
        self.app_subscriptions = [
            {"object": "page", "callback_url": "https://bot.example/", "active": True, "fields": [{"name": "feed"}]},
            {
                "object": "instagram",
                "callback_url": "https://bot.example/",
                "active": True,
                "fields": [{"name": "messages"}],
            },
        ]
        # WhatsApp media by id, and ids Meta no longer has (over 7 days old).
        self.media: dict[str, Media] = {}
        self.expired_media: set[str] = set()
        # Each download of a media file: its path and headers (the media server is not the Graph API).
        self.downloads: list[tuple[str, dict]] = []
        # WhatsApp's pair rate, when enforced: messages one person may get at once, and seconds to earn one more.
        self.pair_burst: int | None = None
        self.pair_refill_seconds = 6.0
        self._pair_allowance: dict[str, tuple[float, float]] = {}  # person: (messages allowed, when counted)

    def _accept(self, request: dict) -> Reply:
        if not request:  # GET /me: the page the token belongs to
            return Reply(body={"name": "Test Page", "id": "1234567890"})
        if request.get("messaging_product") == "whatsapp":
            return self._accept_whatsapp(request)
        if "message" not in request and "sender_action" not in request:
            return Reply(body={"success": True})  # thread control, the Messenger profile
        recipient = request.get("recipient", {}).get("id")
        comment_id = request.get("recipient", {}).get("comment_id")
        if comment_id is not None:  # a private reply: Meta names the person it opens a conversation with
            recipient = self.commenters.get(comment_id, "7777777777777777")
        message_id = f"m_reply_{len(self.requests)}"
        if "message" in request:
            self.message_ids.append(message_id)
        return Reply(body={"recipient_id": recipient, "message_id": message_id})

    def _accept_whatsapp(self, request: dict) -> Reply:
        """The WhatsApp Cloud API's answers: a message's id, or success for a read receipt."""
        if "status" in request:
            return Reply(body={"success": True})
        message_id = f"wamid.reply_{len(self.requests)}"
        self.message_ids.append(message_id)
        to = request.get("to")
        return Reply(
            body={
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message_id}],
            }
        )

    def reset(self) -> None:
        """Forget what was received and scripted."""
        super().reset()
        self.message_ids.clear()
        self.downloads.clear()

    def _answer(self, path: str, headers: dict, request: dict) -> Reply:
        if urlsplit(path).path == MEDIA_PATH:
            return self._download(path, headers)
        return super()._answer(path, headers, request)

    def _download(self, path: str, headers: dict) -> Reply:
        """A media file, to the WhatsApp token only (the fake takes any Bearer token: the tests check which)."""
        with self._lock:
            self.downloads.append((path, headers))
        media = self.media.get(parse_qs(urlsplit(path).query).get("mid", [""])[0])
        if not headers.get("authorization", "").startswith("Bearer "):
            return Reply(status=HTTPStatus.UNAUTHORIZED, raw=b"", content_type="text/html")
        if media is None or media.gone:
            return Reply(status=HTTPStatus.NOT_FOUND, raw=b"", content_type="text/html")
        return Reply(raw=media.content, content_type=media.served_as or media.mime_type)

    def _media_link(self, media_id: str) -> Reply:
        """GET /{media id}: where the file is for the next 5 minutes, as the Cloud API answers."""
        if media_id in self.expired_media:
            error = {
                "message": f"Unsupported get request. Object with ID '{media_id}' does not exist",
                "type": "GraphMethodException",
                "code": 100,
                "error_subcode": 33,
                "fbtrace_id": "AbCdEf",
            }
            return Reply(status=HTTPStatus.BAD_REQUEST, body={"error": error})
        media = self.media[media_id]
        return Reply(
            body={
                "messaging_product": "whatsapp",
                "url": f"{self.url}{MEDIA_PATH}?mid={media_id}&ext=1764540000&hash=ATuFakeHash",
                "mime_type": media.mime_type,
                "sha256": media.sha256 or hashlib.sha256(media.content).hexdigest(),
                "file_size": len(media.content),
                "id": media_id,
            }
        )

    def _templates_page(self, path: str) -> Reply:
        """A page of templates as the Graph API pages an edge: cursors, and `next` while more follow."""
        after = parse_qs(urlsplit(path).query).get("after", [""])[0]
        start = int(base64.b64decode(after)) if after else 0
        end = start + self.templates_page_size
        cursor = base64.b64encode(str(end).encode()).decode()
        paging: dict = {"cursors": {"before": base64.b64encode(str(start).encode()).decode(), "after": cursor}}
        if end < len(self.templates):
            paging["next"] = f"{self.url}{urlsplit(path).path}?limit=100&after={cursor}"
        return Reply(body={"data": self.templates[start:end], "paging": paging})

    def _pair_rate_refuses(self, to: str) -> bool:
        """Whether WhatsApp's pair rate refuses one more message to `to` now: an allowance of `pair_burst`
        messages, earned back one every `pair_refill_seconds`."""
        if self.pair_burst is None:
            return False
        with self._lock:
            now = time.monotonic()
            allowed, counted = self._pair_allowance.get(to, (float(self.pair_burst), now))
            allowed = min(float(self.pair_burst), allowed + (now - counted) / self.pair_refill_seconds)
            refused = allowed < 1
            self._pair_allowance[to] = (allowed if refused else allowed - 1, now)
        return refused

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        subcode: int | None = None,
        *,
        times: int = 1,
        transient: bool | None = None,
        messages_only: bool = False,
        endpoint: str | None = None,
    ) -> None:
        """Make the next `times` calls (or text messages only, or calls to `endpoint` only) fail with a Graph
        error body (none without a code)."""
        body: dict = {}
        if code is not None:
            error = {"message": f"(#{code}) test error", "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
            if subcode is not None:
                error["error_subcode"] = subcode
            if transient is not None:
                error["is_transient"] = transient
            body = {"error": error}
        for _ in range(times):
            self.failures.append((Reply(status=status, body=body), endpoint or messages_only))

    def route(self, path: str, request: dict) -> Reply:
        if self.on_call:
            self.on_call(request)
        with self._lock:
            called = urlsplit(path).path.rsplit("/", 1)[-1]
            failure = next((f for f in self.failures if _applies(f[1], called, request)), None)
            if failure:
                self.failures.remove(failure)
        if failure:
            return failure[0]
        if not request and called in self.posts:
            field = parse_qs(urlsplit(path).query).get("fields", ["message"])[0]
            return Reply(body={field: self.posts[called], "id": called})
        if called == "subscriptions":  # GET /{app id}/subscriptions, with the app's own token
            return Reply(body={"data": self.app_subscriptions})
        if called in ("comments", "replies"):  # a public reply under a comment
            return Reply(body={"id": f"{urlsplit(path).path.split('/')[-2]}_reply"})
        if not request and (called in self.media or called in self.expired_media):
            return self._media_link(called)
        if request.get("type") == "text" and self._pair_rate_refuses(str(request.get("to"))):
            return Reply(status=HTTPStatus.BAD_REQUEST, body={"error": PAIR_RATE_ERROR})
        if not request and called == "message_templates":
            return self._templates_page(path)
        if not request and called in self.profiles:
            asked = parse_qs(urlsplit(path).query).get("fields", [""])[0].split(",")
            profile = self.profiles[called]
            return Reply(body={"id": called, **{field: profile[field] for field in asked if field in profile}})
        if not request and called.isdigit():  # GET /{phone number id}: the WhatsApp business number
            return Reply(body={"verified_name": "Test Shop", "display_phone_number": "+1 555-078-3881", "id": called})
        if called == "subscribed_apps":
            apps = [{"id": "1517776481860111", "name": "Page bot", "subscribed_fields": self.subscribed_fields}]
            return Reply(body={"data": apps if self.subscribed_fields else []})
        return self.default(request)

    @property
    def calls(self) -> list[dict]:
        """Every Send API call so far: its JSON body, with the query string's parameters under "params"."""
        return [
            {k: v for k, v in call.items() if k != "endpoint"}
            for call in self.all_calls
            if call["endpoint"] == "messages"
        ]

    @property
    def all_calls(self) -> list[dict]:
        """Every call so far, to any endpoint: its body, with "endpoint" (messages, pass_thread_control...) and
        "params" (the query string's parameters)."""
        with self._lock:
            return [
                {
                    "endpoint": urlsplit(path).path.rsplit("/", 1)[-1],
                    "params": {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()},
                    **request,
                }
                for path, request in zip(self.paths, self.requests, strict=True)
            ]

    def thread_calls(self) -> list[tuple[str, dict]]:
        """(endpoint, body) of each thread-control call so far."""
        return [
            (call["endpoint"], {k: v for k, v in call.items() if k not in ("endpoint", "params")})
            for call in self.all_calls
            if call["endpoint"].endswith("_thread_control")
        ]

    def texts(self, psid: str | None = None) -> list[str]:
        """The text of every message received so far, in order, to one person or to all."""
        return [entry[len("text:") :] for entry in self.sequence(psid) if entry.startswith("text:")]

    def actions(self, psid: str | None = None) -> list[str]:
        """Sender actions received so far, in order."""
        return [entry for entry in self.sequence(psid) if not entry.startswith("text:")]

    def sequence(self, psid: str | None = None) -> list[str]:
        """Everything sent through the Send API, in order: sender actions by name, messages as 'text:...'. On
        WhatsApp, a read receipt with the typing indicator is 'read+typing:<the message's id>' (it names no person,
        so only the sequence of all shows it)."""
        return [_sent(r) for r in self.calls if psid in (None, r.get("recipient", {}).get("id"), r.get("to"))]


# What the Cloud API answers a message over the pair rate.
PAIR_RATE_ERROR = {
    "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    "type": "OAuthException",
    "code": 131056,
    "error_data": {
        "messaging_product": "whatsapp",
        "details": "Message failed to send because there were too many messages sent from this phone number to the "
        "same phone number in a short period of time.",
    },
    "fbtrace_id": "AbCdEf",
}


def _sent(request: dict) -> str:
    if request.get("messaging_product") == "whatsapp":
        if "status" in request:
            return f"read+typing:{request.get('message_id')}"
        return "text:" + request.get("text", {}).get("body", "")
    return "text:" + request["message"].get("text", "") if "message" in request else request.get("sender_action", "")


def _applies(calls: bool | str, endpoint: str, request: dict) -> bool:
    """Whether a failure scripted for `calls` (see FakeGraph.failures) applies to this call."""
    if calls is True:
        return "message" in request or request.get("type") == "text"  # Messenger's and WhatsApp's
    return calls is False or calls == endpoint


class CountingStore:
    """A real store that counts the calls made to it, by method."""

    def __init__(self, store: Any):
        self.calls: Counter[str] = Counter()
        self._store = store
        self.shared = store.shared

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted


class FakeToolApi(_Server):
    """An owner's API a tool calls (an order system, say): records each request's path, headers and body, and
    answers with `default` (an order's JSON by default)."""

    def __init__(self) -> None:
        super().__init__(lambda request: Reply(body={"order": {"number": "1042", "status": "out for delivery"}}))


class FakeHook(_Server):
    """An owner's incoming webhook (a chat tool's, say): records each JSON POST and answers as told."""

    def __init__(self) -> None:
        super().__init__(lambda request: Reply(body={"ok": True}))


class Trickle:
    """A server that answers one request slowly: the first `fast` bytes of `answer` at once, then the rest a byte at
    a time, `delay` seconds apart (its status line, headers or body, as the test chooses). `outcome` says whether the
    client took it all ("finished") or hung up before the end ("cut"); `done` is set once it is known."""

    def __init__(self, answer: bytes, fast: int, delay: float = 0.05):
        self._answer = answer
        self._fast = fast
        self._delay = delay
        self.outcome: str | None = None
        self.done = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return  # closed unused
        with connection:
            head = b""
            while b"\r\n\r\n" not in head and (received := connection.recv(4096)):
                head += received
            try:
                connection.sendall(self._answer[: self._fast])
                for byte in self._answer[self._fast :]:
                    time.sleep(self._delay)  # the slowness under test, not a wait for something
                    connection.sendall(bytes([byte]))
                self.outcome = "finished"
            except OSError:
                self.outcome = "cut"
        self.done.set()
