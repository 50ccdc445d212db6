"""Fake OpenAI-compatible chat model server for tests, benchmarks and local runs.

Why it exists: the router talks to several paid model backends through the real ``openai`` SDK and Agent
Framework's ``OpenAIChatCompletionClient``. Mocking those clients would test our mocks, not the wire protocol,
so this module speaks the real HTTP protocol instead (JSON and SSE streaming, OpenAI style and Azure OpenAI
deployment style) and lets a test script failures that are hard to provoke against a real service: HTTP errors,
rate limits with ``Retry-After``, slow answers, connection resets and streams that break half way.

Typical use::

    with FakeModelServer(name="local") as srv:
        client = AsyncOpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
        srv.script(Behaviour.error(503), "second answer")
        ...
        assert srv.requests[-1]["json"]["messages"][-1]["content"] == "hi"

or as a process (for benchmarks or a local run of the Functions host)::

    python -m tools.fake_model --port 11434 --name local --latency 0.2

Behaviours are queued per server and consumed in FIFO order by the next chat completion requests (one with
``when`` only by a request whose messages contain that text); when none applies the optional default behaviour
does, else a deterministic reply derived from the request.

Usage is counted as characters / 4 by default, or like a BPE tokenizer (``tokenizer="bpe"``); with a
``context_window`` a longer request is refused as a real model server refuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Self, TypeAlias

from aiohttp import web

__all__ = [
    "Behaviour",
    "BehaviourSpec",
    "FakeModelServer",
    "bpe_tokens",
    "estimate_tokens",
    "prompt_tokens",
    "unused_port",
]

DropMode = Literal["reset", "broken_stream"]

_DROP_MODES = ("reset", "broken_stream")
# OpenAI puts a coarse category in error.type; clients mostly look at the status, but keep it realistic.
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("server_error", "timeout"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}
_DEFAULT_REPLY_PREVIEW = 60
# Lets the cancellation path find the log entry of the request being handled.
_ENTRY_KEY = web.RequestKey("fake_model_entry", dict)


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one chat completion request.

    Fields combine: ``delay`` always runs first (so a slow 503 is ``Behaviour(delay=2, status=503)``), then
    ``drop="reset"`` closes the connection without answering, else ``status`` answers with an OpenAI-style
    error body, else the reply (``reply`` or the default reply) is sent, streamed when the request asked for
    it. ``drop="broken_stream"`` sends about half of the reply and then closes the connection mid-body.
    ``times`` queues the same behaviour that many times (handy over HTTP and against client retries).
    """

    reply: str | None = None
    delay: float = 0.0
    chunk_delay: float | None = None
    status: int | None = None
    message: str | None = None
    code: str | None = None
    retry_after: float | None = None
    drop: DropMode | None = None
    times: int = 1
    when: str | None = None  # only for a request whose messages contain this text (e.g. a summary prompt's)

    def __post_init__(self) -> None:
        """Reject nonsense early, so a typo in a test fails at script time rather than as a puzzling reply."""
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {self.status}")
        if self.drop is not None and self.drop not in _DROP_MODES:
            raise ValueError(f"drop must be one of {_DROP_MODES}, got {self.drop!r}")
        if self.delay < 0 or (self.chunk_delay is not None and self.chunk_delay < 0):
            raise ValueError("delays must be >= 0")
        if self.times < 1:
            raise ValueError("times must be >= 1")

    # Convenience constructors: they read better in tests than keyword soup.
    @classmethod
    def text(cls, reply: str, *, delay: float = 0.0, chunk_delay: float | None = None) -> Behaviour:
        """Answer with exactly ``reply``."""
        return cls(reply=reply, delay=delay, chunk_delay=chunk_delay)

    @classmethod
    def error(
        cls, status: int, message: str | None = None, *, code: str | None = None, retry_after: float | None = None
    ) -> Behaviour:
        """Answer with an HTTP error status and an OpenAI-style ``{"error": {...}}`` body."""
        return cls(status=status, message=message, code=code, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> Behaviour:
        """Answer 429 with a ``Retry-After`` header, like OpenAI and Azure OpenAI throttling."""
        return cls(status=429, retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float, reply: str | None = None) -> Behaviour:
        """Wait ``delay`` seconds before answering; used to trigger client timeouts."""
        return cls(reply=reply, delay=delay)

    @classmethod
    def reset(cls) -> Behaviour:
        """Close the connection (TCP reset) after reading the request, without any response."""
        return cls(drop="reset")

    @classmethod
    def broken_stream(cls, reply: str | None = None, *, chunk_delay: float | None = None) -> Behaviour:
        """Send about half of the reply, then drop the connection in the middle of the body."""
        return cls(reply=reply, drop="broken_stream", chunk_delay=chunk_delay)

    @classmethod
    def from_spec(cls, spec: BehaviourSpec) -> Behaviour:
        """Accept a Behaviour, a plain reply string or a JSON-style dict (the HTTP control API format)."""
        if isinstance(spec, Behaviour):
            return spec
        if isinstance(spec, str):
            return cls(reply=spec)
        if isinstance(spec, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(spec) - known
            if unknown:
                raise ValueError(f"unknown behaviour keys {sorted(unknown)}; known: {sorted(known)}")
            return cls(**dict(spec))
        raise TypeError(f"cannot make a Behaviour from {type(spec).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Only the non-default fields, so logs and control responses stay readable."""
        defaults = Behaviour()
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(defaults, f.name)
        }


BehaviourSpec: TypeAlias = "Behaviour | Mapping[str, Any] | str"
"""Anything ``script()`` accepts: a Behaviour, a dict in the HTTP control format, or a reply string."""


def unused_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nothing listens on right now, for "connection refused" tests.

    The port is released before returning, so in theory another process could grab it; in practice the kernel
    does not hand out a just-released ephemeral port again immediately, which is good enough for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def estimate_tokens(text: str) -> int:
    """Deterministic token estimate (about 4 characters per token) so usage assertions are exact."""
    return math.ceil(len(text) / 4)


Tokenizer = Literal["chars", "bpe"]
# Pre-tokenization in the manner of the GPT BPE vocabularies: contractions, words with their leading space,
# numbers in groups of up to three digits, runs of punctuation, whitespace.
_PIECES = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")


def bpe_tokens(text: str) -> int:
    """Tokens of ``text`` counted the way a BPE tokenizer splits it, without its vocabulary.

    A word of up to seven letters (with its leading space) is one token, a longer one one more per five further
    letters; digits go in threes; a run of ASCII punctuation is a token per two characters; every non-ASCII
    character is a token (as CJK text mostly is); a run of whitespace is one token. On English prose this runs
    at about 4.2 characters a token, close to what cl100k reports, and, unlike characters / 4, it differs from
    text to text as real tokenizers do (code, numbers and other scripts cost more).
    """
    count = 0
    for piece in _PIECES.findall(text):
        word = piece.strip()
        if not word:
            count += 1
        elif not word.isascii():
            count += len(word)
        elif word.isalpha():
            count += 1 + max(0, len(word) - 7 + 4) // 5
        elif word.isdigit():
            count += 1
        else:
            count += (len(word) + 1) // 2
    return count


def prompt_tokens(messages: Sequence[Any], tokenizer: Tokenizer) -> int:
    """Input tokens of a chat request: ``chars`` is characters / 4 of all the text (exact and easy to assert);
    ``bpe`` counts each message's text with ``bpe_tokens`` plus OpenAI's documented overhead (three tokens a
    message, one for a name, three to prime the reply)."""
    texts = [_message_text(message) for message in messages if isinstance(message, Mapping)]
    if tokenizer == "chars":
        return estimate_tokens("".join(texts))
    named = sum(1 for message in messages if isinstance(message, Mapping) and message.get("name"))
    return sum(3 + bpe_tokens(text) for text in texts) + named + 3


def _message_text(message: Mapping[str, Any]) -> str:
    """The text a message costs: its content, and its tool calls' names and arguments."""
    text = _content_text(message.get("content"))
    for call in message.get("tool_calls") or ():
        if isinstance(call, Mapping):
            function = call.get("function") or {}
            text += f"{function.get('name', '')}{function.get('arguments', '')}"
    return text


def _content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or a list of parts of which only text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _split_reply(text: str, max_chunks: int) -> list[str]:
    """Split a reply into word-aligned pieces that concatenate back to ``text`` exactly.

    Returns at least two pieces whenever the text has two characters, so a broken stream always delivers some
    content before it breaks, and at most ``max_chunks`` pieces so long replies do not become thousands of events.
    """
    words = re.findall(r"\s*\S+\s*|\s+", text)
    if len(words) < 2:
        if len(text) < 2:
            return [text] if text else []
        middle = len(text) // 2
        return [text[:middle], text[middle:]]
    if len(words) <= max_chunks:
        return words
    per_chunk = math.ceil(len(words) / max_chunks)
    return ["".join(words[i : i + per_chunk]) for i in range(0, len(words), per_chunk)]


def _error_body(status: int, message: str | None, code: str | None) -> dict[str, Any]:
    """OpenAI error envelope; the SDK copies ``error.code``/``error.type`` onto the raised exception."""
    err_type, default_code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message or f"fake model error {status}",
            "type": err_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def _abort_with_reset(request: web.BaseRequest) -> None:
    """Close the client connection with a TCP RST (SO_LINGER 0), the harshest failure a client can see."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Dropped(Exception):
    """Raised inside a handler after we killed the connection ourselves, so aiohttp stops quietly."""


class FakeModelServer:
    """One fake model backend listening on ``host:port``; see the module docstring.

    Why a background thread with its own event loop: sync tests can use it without any loop, and async tests can
    call it from their own loop without the server competing with (or being blocked by) the code under test.
    Shared state (behaviour queue, request log) is guarded by a lock because both threads touch it.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        models: Sequence[str] = ("fake-model",),
        max_stream_chunks: int = 16,
        max_logged_requests: int = 10_000,
        require_api_version: bool = True,
        tokenizer: Tokenizer = "chars",
        context_window: int | None = None,
    ) -> None:
        """Configure the server; nothing listens until ``start()``.

        ``latency`` is added before every answer (time to first byte) and ``chunk_delay`` between stream chunks,
        which is what throughput benchmarks need ("the model answers in 200 ms"). ``port=0`` picks a free port
        on the first start and keeps it for restarts. ``require_api_version`` makes the Azure deployment route
        answer 400 without ``?api-version=`` as Azure OpenAI does, catching misconfigured clients.
        ``tokenizer`` says how usage is counted (see ``prompt_tokens``). With ``context_window`` a request whose
        input tokens plus its ``max_tokens`` exceed it is refused with 400 ``context_length_exceeded``, in
        OpenAI's words, as a real model server refuses it.
        """
        self.name = name
        self.host = host
        self.port = port
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.models = list(models)
        self.max_stream_chunks = max(2, max_stream_chunks)
        self.require_api_version = require_api_version
        self.tokenizer: Tokenizer = tokenizer
        self.context_window = context_window
        self._initial_counting: tuple[Tokenizer, int | None] = (tokenizer, context_window)
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._default: Behaviour | None = None
        self._requests: deque[dict[str, Any]] = deque(maxlen=max_logged_requests)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style ``base_url`` for ``AsyncOpenAI``/``OpenAIChatCompletionClient``."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """``azure_endpoint`` for ``AsyncAzureOpenAI``/``OpenAIChatCompletionClient`` (deployment routes)."""
        return self.url

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._runner is not None

    # ------------------------------------------------------------------ scripting and log
    def script(self, *behaviours: BehaviourSpec) -> None:
        """Queue behaviours for the next chat requests, in order (a ``str`` means "reply with this text")."""
        parsed = [Behaviour.from_spec(b) for b in behaviours]
        with self._lock:
            for behaviour in parsed:
                self._queue.extend([behaviour] * behaviour.times)

    def set_default(self, behaviour: BehaviourSpec | None) -> None:
        """Behaviour used when the queue is empty (``None`` restores the deterministic default reply)."""
        parsed = None if behaviour is None else Behaviour.from_spec(behaviour)
        with self._lock:
            self._default = parsed

    @property
    def pending(self) -> int:
        """Number of scripted behaviours not consumed yet (assert 0 to prove the client made every call)."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of the chat requests received, oldest first, each with the full JSON body.

        Keys: ``path``, ``method``, ``query``, ``headers`` (lower-case names), ``json`` (the body), ``model``,
        ``stream``, ``deployment`` (Azure route or None), ``time`` (epoch seconds), ``server`` (name),
        ``behaviour`` (the scripted behaviour as a dict, ``{}`` for the default) and ``outcome`` (what was done:
        ``reply``, ``error <status>``, ``reset``, ``broken_stream``, ``client_disconnected`` when the client gave up
        first, e.g. its timeout fired during a delay, or ``pending`` while in progress).
        """
        with self._lock:
            return copy.deepcopy(list(self._requests))

    def configure(self, *, tokenizer: Tokenizer | None = None, context_window: int | None = None) -> None:
        """Change how usage is counted and the context window until the next ``clear()``."""
        if tokenizer is not None:
            self.tokenizer = tokenizer
        self.context_window = context_window

    def clear(self) -> None:
        """Forget the request log, the queued behaviours and the default behaviour, and restore the tokenizer and
        context window given at construction (a full reset between tests)."""
        self.tokenizer, self.context_window = self._initial_counting
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._default = None

    def _next_behaviour(self, text: str) -> Behaviour:
        """The first queued behaviour that applies to a request whose messages hold ``text``."""
        with self._lock:
            for index, behaviour in enumerate(self._queue):
                if behaviour.when is None or behaviour.when in text:
                    del self._queue[index]
                    return behaviour
            return self._default or Behaviour()

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def _set_outcome(self, entry: dict[str, Any], outcome: str) -> None:
        with self._lock:
            entry["outcome"] = outcome

    # ------------------------------------------------------------------ lifecycle (thread mode)
    def start(self) -> Self:
        """Start listening in a background thread; returns when the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"fake model server {self.name!r} is already running")
        sock = self._bind()  # bind here so "address in use" is raised in the caller's thread
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_on_loop(sock))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._stop_on_loop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-model-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections; the port is kept so ``start()`` reuses it."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        """``with FakeModelServer(...) as srv`` starts it."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Always stop, even when the test failed, so no thread or port leaks."""
        self.stop()

    async def __aenter__(self) -> Self:
        """Same as ``__enter__``: starting takes milliseconds, so blocking the caller's loop briefly is fine."""
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop in a worker thread so the caller's loop keeps serving its own connections meanwhile."""
        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ lifecycle (on a given loop)
    def _bind(self) -> socket.socket:
        """Bind the listening socket ourselves: learns the port for ``port=0`` and allows same-port restarts."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        return sock

    async def _start_on_loop(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", "/openai/v1", "/openai/deployments/{deployment}"):
            app.router.add_post(f"{prefix}/chat/completions", self._handle_chat)
        for path in ("/v1/models", "/openai/v1/models", "/openai/models"):
            app.router.add_get(path, self._handle_models)
        app.router.add_post("/_control/script", self._handle_control_script)
        app.router.add_get("/_control/requests", self._handle_control_requests)
        app.router.add_post("/_control/reset", self._handle_control_reset)
        # handler_cancellation: a client that gives up (timeout) cancels its handler instead of leaving a
        # sleeping task behind, which keeps long benchmark runs tidy.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def _stop_on_loop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ HTTP handlers
    async def _handle_models(self, request: web.Request) -> web.Response:
        """Model list, mainly a cheap health check that consumes no scripted behaviour."""
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": self.name} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        """Chat completions on every route; a deliberate hang-up ends the handler quietly instead of as an error."""
        try:
            return await self._chat(request)
        except asyncio.CancelledError:
            # handler_cancellation: the client hung up first (typically its timeout fired during our delay).
            entry = request.get(_ENTRY_KEY)
            if entry is not None and entry["outcome"] == "pending":
                self._set_outcome(entry, "client_disconnected")
            raise
        except _Dropped:
            # The transport is already closed; aiohttp only needs some response object to finish the handler.
            return web.Response(status=499)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        deployment = request.match_info.get("deployment")
        if deployment is not None and self.require_api_version and "api-version" not in request.query:
            return web.json_response(
                _error_body(400, "Missing required query parameter 'api-version' (Azure OpenAI route)", "BadRequest"),
                status=400,
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error_body(400, "request body is not valid JSON", None), status=400)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return web.json_response(_error_body(400, "'messages' must be a non-empty array", None), status=400)

        model = str(body.get("model") or deployment or self.models[0])
        stream = bool(body.get("stream"))
        behaviour = self._next_behaviour(
            "\n".join(_message_text(m) for m in body["messages"] if isinstance(m, Mapping))
        )
        entry: dict[str, Any] = {
            "server": self.name,
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "json": body,
            "model": model,
            "stream": stream,
            "deployment": deployment,
            "time": time.time(),
            "behaviour": behaviour.to_dict(),
            "outcome": "pending",
        }
        self._log(entry)
        request[_ENTRY_KEY] = entry

        delay = self.latency + behaviour.delay
        if delay > 0:
            await asyncio.sleep(delay)
        if behaviour.drop == "reset":
            self._set_outcome(entry, "reset")
            _abort_with_reset(request)
            raise _Dropped
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        if behaviour.status is not None:
            self._set_outcome(entry, f"error {behaviour.status}")
            headers = {"x-request-id": request_id}
            if behaviour.retry_after is not None:
                headers["retry-after"] = f"{behaviour.retry_after:g}"
                headers["retry-after-ms"] = str(int(behaviour.retry_after * 1000))
            return web.json_response(
                _error_body(behaviour.status, behaviour.message, behaviour.code),
                status=behaviour.status,
                headers=headers,
            )

        reply = behaviour.reply if behaviour.reply is not None else self.default_reply(model, body)
        input_tokens = prompt_tokens(body["messages"], self.tokenizer)
        entry["prompt_tokens"] = input_tokens
        refused = self._too_long(input_tokens, body)
        if refused is not None:
            self._set_outcome(entry, "error 400")
            return web.json_response(refused, status=400, headers={"x-request-id": request_id})
        completion_tokens = bpe_tokens(reply) if self.tokenizer == "bpe" else estimate_tokens(reply)
        usage = {
            "prompt_tokens": input_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": input_tokens + completion_tokens,
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        broken = behaviour.drop == "broken_stream"
        self._set_outcome(entry, "broken_stream" if broken else "reply")
        if stream:
            chunk_delay = behaviour.chunk_delay if behaviour.chunk_delay is not None else self.chunk_delay
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream_reply(
                request, completion_id, request_id, model, reply, usage, include_usage, chunk_delay, broken
            )
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": f"fp_fake_{self.name}",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        if not broken:
            return web.json_response(completion, headers={"x-request-id": request_id})
        # Broken non-streaming answer: promise the full length, send half, hang up.
        payload = json.dumps(completion).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json", "x-request-id": request_id})
        response.content_length = len(payload)
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
        self._close_mid_body(request)
        raise _Dropped

    async def _stream_reply(
        self,
        request: web.Request,
        completion_id: str,
        request_id: str,
        model: str,
        reply: str,
        usage: dict[str, int],
        include_usage: bool,
        chunk_delay: float,
        broken: bool,
    ) -> web.StreamResponse:
        """Send the reply as ``chat.completion.chunk`` SSE events, the way OpenAI does.

        Order: a role chunk with empty content, one chunk per piece of text, a chunk with ``finish_reason``,
        then (only if ``stream_options.include_usage``) a chunk with no choices and the usage, then ``[DONE]``.
        With include_usage every other chunk carries ``"usage": null``, as the real API does.
        """
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], chunk_usage: dict[str, int] | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": f"fp_fake_{self.name}",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = chunk_usage
            return f"data: {json.dumps(data)}\n\n".encode()

        def delta(content: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}]

        pieces = _split_reply(reply, self.max_stream_chunks)
        if broken:
            pieces = pieces[: max(1, len(pieces) // 2)]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": request_id,
            }
        )
        await response.prepare(request)
        try:
            await response.write(chunk(delta({"role": "assistant", "content": "", "refusal": None})))
            for index, piece in enumerate(pieces):
                if index and chunk_delay > 0:
                    await asyncio.sleep(chunk_delay)
                await response.write(chunk(delta({"content": piece})))
            if broken:
                self._close_mid_body(request)
                raise _Dropped
            await response.write(chunk(delta({}, "stop")))
            if include_usage:
                await response.write(chunk([], usage))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away (timeout, cancelled run): nothing to tell it
        return response

    def _too_long(self, input_tokens: int, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """OpenAI's error body for a request longer than ``context_window``, else None."""
        if self.context_window is None:
            return None
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        requested = input_tokens + (wanted if isinstance(wanted, int) else 0)
        if requested <= self.context_window:
            return None
        message = (
            f"This model's maximum context length is {self.context_window} tokens. However, you requested "
            f"{requested} tokens ({input_tokens} in the messages, {requested - input_tokens} in the completion). "
            "Please reduce the length of the messages or completion."
        )
        body_error = _error_body(400, message, "context_length_exceeded")
        body_error["error"]["param"] = "messages"
        return body_error

    @staticmethod
    def _close_mid_body(request: web.Request) -> None:
        """Hang up gracefully (FIN, buffered data flushed) so the client reads the partial body, then fails."""
        if request.transport is not None:
            request.transport.close()

    # ------------------------------------------------------------------ control API
    async def _handle_control_script(self, request: web.Request) -> web.Response:
        """``POST /_control/script``: body ``{"behaviours": [...], "default": {...}|null}`` (both optional).

        A bare list or a single behaviour dict is also accepted. ``default`` is only changed when the key is present.
        """
        try:
            body = json.loads(await request.read() or b"{}")
            if isinstance(body, list):
                body = {"behaviours": body}
            elif isinstance(body, dict) and "behaviours" not in body and "default" not in body:
                body = {"behaviours": [body]}
            if not isinstance(body, dict) or not isinstance(body.get("behaviours", []), list):
                raise ValueError("expected {'behaviours': [...], 'default': {...}}")
            self.script(*body.get("behaviours", []))
            if "default" in body:
                self.set_default(body["default"])
        except (ValueError, TypeError) as exc:
            return web.json_response(_error_body(400, str(exc), "bad_script"), status=400)
        with self._lock:
            default = self._default.to_dict() if self._default else None
        return web.json_response({"pending": self.pending, "default": default})

    async def _handle_control_requests(self, request: web.Request) -> web.Response:
        """``GET /_control/requests``: ``{"requests": [...]}`` in the same shape as ``server.requests``."""
        return web.json_response({"server": self.name, "requests": self.requests})

    async def _handle_control_reset(self, request: web.Request) -> web.Response:
        """``POST /_control/reset``: same as ``server.clear()``."""
        self.clear()
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ replies
    def default_reply(self, model: str, body: Mapping[str, Any]) -> str:
        """``[<server>/<model>] reply to: <first 60 chars of the last user message>``.

        Deterministic and derived from the request, so a test can tell which backend and model answered
        and which turn the answer belongs to without scripting anything.
        """
        last_user = ""
        for message in reversed(body.get("messages") or []):
            if isinstance(message, Mapping) and message.get("role") == "user":
                last_user = _content_text(message.get("content"))
                break
        return f"[{self.name}/{model}] reply to: {last_user[:_DEFAULT_REPLY_PREVIEW]}"


# ---------------------------------------------------------------------- CLI
def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.fake_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the ready line)")
    parser.add_argument("--name", default="fake", help="backend name shown in replies, e.g. local or cloud")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--model", action="append", dest="models", help="model id listed by /v1/models (repeatable)")
    parser.add_argument("--reply", help="fixed reply text instead of the derived default")
    parser.add_argument("--max-chunks", type=int, default=16, help="upper bound on content chunks per streamed reply")
    parser.add_argument("--tokenizer", choices=("chars", "bpe"), default="chars", help="how usage is counted")
    parser.add_argument("--context-window", type=int, help="refuse requests longer than this many tokens")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = FakeModelServer(
        args.name,
        host=args.host,
        port=args.port,
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        models=args.models or ("fake-model",),
        max_stream_chunks=args.max_chunks,
        tokenizer=args.tokenizer,
        context_window=args.context_window,
    )
    if args.reply is not None:
        server.set_default(args.reply)
    await server._start_on_loop(server._bind())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no loop signal handlers
            loop.add_signal_handler(sig, stop.set)
    ready = {
        "name": server.name,
        "port": server.port,
        "base_url": server.base_url,
        "azure_endpoint": server.azure_endpoint,
        "latency": server.latency,
    }
    # One machine-readable line so a parent process (test, benchmark, Makefile) can wait for it and parse it.
    print(f"FAKE_MODEL_READY {json.dumps(ready)}", flush=True)
    try:
        await stop.wait()
    finally:
        await server._stop_on_loop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m tools.fake_model``."""
    args = _parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
