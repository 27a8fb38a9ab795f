"""Loopback fake vendor servers: a real HTTP/1.1 server on 127.0.0.1 in a thread.

Stable API (vendor fakes for every cloud adapter build on it):

``FakeServer``            subclass it and implement ``route(req) -> str`` (a name such as
                          ``"create"``, ``"poll"``) and ``handle(req, route) -> Reply``.
    ``start()/stop()``, or ``with FakeServer() as s:``; ``s.url`` is ``http://127.0.0.1:<port>``.
    ``s.requests``        every ``Req`` received, in order (thread-safe list).
    ``s.count(route)``    how many requests hit a route.
    ``s.latency``         seconds to sleep before every answer (a slow vendor).
    ``s.gates[route] = threading.Barrier(n)``  requests of that route wait until n of them are in
                          (proof that a client sends them concurrently); ``s.max_in_flight[route]``.
    ``s.inject(route, Fault(...), ...)``  scripted faults, consumed in order by that route.
    ``s.publish(data, name, ttl=600) -> url``  a signed, expiring URL served by this server
                          (route ``"download"``); an expired or bad signature → 403 with an
                          OSS-style XML body. ``s.expire_all()`` makes every link expire now.
``Req``                   method, path, query (dict of first values), headers (lower-case keys),
                          body (bytes), ``json()`` (None when not JSON).
``Reply``                 status, body (dict/list → JSON, str, bytes), headers; ``drop=True``
                          closes the connection unanswered (the work was done, the answer lost).
``Fault``                 status+body (answer that instead), delay (wait, then work and answer),
                          late (work at once, answer late: the client may give up first), bad_json
                          (200 with HTML), truncate (cut the real body in half, close), drop
                          (close without answering), status_after (do the work, then answer
                          this status instead: a gateway that lost the answer); ``times`` how
                          many requests it covers.
``Chaos(...)``             random faults at set rates, for a whole run: ``s.chaos = Chaos(p429=0.3,
                          p5xx=0.2, slow=0.1, cut=0.05, truncate_download=0.2, seed=1)``. A 429 comes
                          before any work; a 5xx comes after the work (the task exists) with
                          probability ``p5xx_after_work``; a slow answer does the work and answers
                          after ``slow_s`` (longer than the client waits); a cut answer does the work
                          and sends half its body. Scripted faults (``inject``) go first. Fakes
                          override ``chaos_reply(kind)`` to answer in their vendor's shape.
``tiny_mp4(path) -> Path``  a real 8-frame 64x48 H.264 MP4 made with core.media.write_video.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except ValueError:
            return None


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # the work was done but the answer is lost: close without answering

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode("utf-8")
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body, headers


@dataclass
class Fault:
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    late: float = 0.0
    bad_json: bool = False
    truncate: bool = False
    drop: bool = False
    status_after: int | None = None
    times: int = 1


@dataclass
class Chaos:
    """Random faults at these rates (each request draws once, seeded; see the module doc)."""

    p429: float = 0.0
    p5xx: float = 0.0
    slow: float = 0.0
    cut: float = 0.0
    truncate_download: float = 0.0
    p5xx_after_work: float = 0.5
    slow_s: float = 1.0
    seed: int = 0
    routes: tuple[str, ...] | None = None  # API routes it covers (None: all but "download")

    def __post_init__(self):
        import random

        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def draw(self, route: str) -> str | None:
        with self.lock:
            roll, after = self.rng.random(), self.rng.random()
        if route == "download":
            kind = "truncate" if roll < self.truncate_download else None
        elif self.routes is not None and route not in self.routes:
            kind = None
        else:
            kind = None
            for name, p in (("429", self.p429), ("5xx", self.p5xx), ("slow", self.slow), ("cut", self.cut)):
                if roll < p:
                    kind = name
                    break
                roll -= p
            if kind == "5xx" and after < self.p5xx_after_work:
                kind = "5xx_after"
        if kind:
            with self.lock:
                self.counts[kind] = self.counts.get(kind, 0) + 1
        return kind


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Http"

    def log_message(self, format, *args):  # keep test output quiet
        return None

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        req = Req(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        self.server.fake._serve(req, self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def send_reply(self, reply: Reply, *, truncate: bool = False) -> None:
        body, headers = reply.encoded()
        self.send_response(reply.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Http(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: "FakeServer"

    def handle_error(self, request, client_address):  # a client that gave up is not news
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class FakeServer:
    secret = b"fake-storage-signing-key"

    def __init__(self):
        self.requests: list[Req] = []
        self.latency = 0.0
        self.faults: dict[str, list[Fault]] = {}
        self.files: dict[str, bytes] = {}
        self.expired_before = 0.0
        self.chaos: Chaos | None = None
        self.gates: dict[str, threading.Barrier] = {}  # route -> requests wait here until that many are in
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._http: _Http | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> "FakeServer":
        self._http = _Http(("127.0.0.1", 0), _Handler)
        self._http.fake = self
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._http is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    # --- scripting --------------------------------------------------------------------
    def inject(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(route, []).extend(faults)

    def _take_fault(self, route: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(route) or []
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _chaos_fault(self, route: str) -> Fault | None:
        kind = self.chaos.draw(route)
        if kind is None:
            return None
        if kind == "truncate":
            return Fault(truncate=True)
        if kind in ("429", "5xx"):
            reply = self.chaos_reply(kind)
            return Fault(status=reply.status, body=reply.body, headers=reply.headers)
        if kind == "5xx_after":
            return Fault(status_after=502)
        if kind == "slow":
            return Fault(late=self.chaos.slow_s)
        return Fault(truncate=True)  # "cut": the work is done, half the answer arrives

    def count(self, route: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if self.route(r) == route)

    # --- signed storage ---------------------------------------------------------------
    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self.secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def publish(self, data: bytes, name: str, ttl: float = 600.0) -> str:
        self.files[name] = data
        expires = int(time.time() + ttl)
        return f"{self.url}/files/{name}?Expires={expires}&Signature={self._sign(name, expires)}"

    def expire_all(self) -> None:
        self.expired_before = time.time() + 10**6

    def _download(self, req: Req) -> Reply:
        name = req.path.removeprefix("/files/")
        try:
            expires = int(req.query.get("Expires", "0"))
        except ValueError:
            expires = 0
        good = hmac.compare_digest(req.query.get("Signature", ""), self._sign(name, expires))
        if not good or expires < time.time() or expires < self.expired_before:
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                   "<Message>Request has expired.</Message></Error>")
            return Reply(403, xml, {"Content-Type": "application/xml"})
        if name not in self.files:
            return Reply(404, "<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
        return Reply(200, self.files[name], {"Content-Type": "video/mp4"})

    # --- dispatch ---------------------------------------------------------------------
    def route(self, req: Req) -> str:
        if req.path.startswith("/files/"):
            return "download"
        return "other"

    def handle(self, req: Req, route: str) -> Reply:
        return Reply(404, {"error": "not found"})

    def chaos_reply(self, kind: str) -> Reply:
        """The answer for a chaos "429" or "5xx" (override for the vendor's error shape)."""
        if kind == "429":
            return Reply(429, {"error": {"code": "RateLimit", "message": "too many requests"}})
        return Reply(502, "<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})

    def _serve(self, req: Req, handler: _Handler) -> None:
        route = self.route(req)
        with self._lock:
            self.requests.append(req)
            self.in_flight[route] = self.in_flight.get(route, 0) + 1
            self.max_in_flight[route] = max(self.max_in_flight.get(route, 0), self.in_flight[route])
        try:
            gate = self.gates.get(route)
            if gate is not None:
                try:
                    gate.wait(timeout=15)
                except threading.BrokenBarrierError:
                    pass
            self._serve_route(req, route, handler)
        finally:
            with self._lock:
                self.in_flight[route] -= 1

    def _serve_route(self, req: Req, route: str, handler: _Handler) -> None:
        fault = self._take_fault(route)
        if fault is None and self.chaos is not None:
            fault = self._chaos_fault(route)
        if self.latency:
            time.sleep(self.latency)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.drop:
            handler.drop()
            return
        if fault and fault.status is not None:
            handler.send_reply(Reply(fault.status, fault.body if fault.body is not None else b"", fault.headers))
            return
        if fault and fault.bad_json:
            handler.send_reply(Reply(200, "<html><body>502 Bad Gateway</body></html>",
                                     {"Content-Type": "text/html"}))
            return
        reply = self._download(req) if route == "download" else self.handle(req, route)
        if fault and fault.status_after is not None:
            default = self.chaos_reply("5xx")
            handler.send_reply(Reply(fault.status_after, default.body if fault.body is None else fault.body,
                                     fault.headers or default.headers))
            return
        if fault and fault.late:
            time.sleep(fault.late)
        if reply.drop:
            handler.drop()
            return
        handler.send_reply(reply, truncate=bool(fault and fault.truncate))


def tiny_mp4(path: Path, frames: int = 8, width: int = 64, height: int = 48, fps: float = 8.0) -> Path:
    import numpy as np

    from core.media import write_video

    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, size=(frames, height, width, 3), dtype=np.uint8)
    return write_video(video, path, fps)


def tiny_mp4_with_audio(path: Path, frames: int = 8, width: int = 64, height: int = 48, fps: int = 8) -> Path:
    """Like ``tiny_mp4`` but with an AAC sound track (a 440 Hz tone) muxed beside the video: what a
    vendor returns when it generated sound."""
    import av
    import numpy as np

    rng = np.random.default_rng(1)
    rate, seconds = 16000, frames / fps
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for _ in range(frames):
            image = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        t = np.arange(int(rate * seconds)) / rate
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        step, pts = 1024, 0
        for start in range(0, len(tone), step):
            chunk = tone[start:start + step]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, pts
            pts += len(chunk)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def tiny_png(color=(30, 120, 200), size=(64, 48)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()
