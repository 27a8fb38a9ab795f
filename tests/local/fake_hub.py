"""A loopback fake Hugging Face hub: a real HTTP/1.1 server on 127.0.0.1 in a thread, speaking
what huggingface_hub 2.4 sends for model downloads (read from its hf_api.py, file_download.py and
utils/_http.py):

``GET  /api/models/{repo}/revision/{rev}``          model info: ``id``, ``sha``, ``gated``, ``siblings``
``GET  /api/models/{repo}/tree/{rev}?recursive=...`` the file list (``type``, ``oid``, ``size``, ``path``,
                                                    ``lfs: {oid, size, pointerSize}``), paged with a
                                                    ``Link: <...>; rel="next"`` header
``HEAD|GET /{repo}/resolve/{rev}/{path}``           a small file: 200 with ``X-Repo-Commit``, ``ETag``
                                                    (git blob id), ``Content-Length``; an LFS file: 302 to
                                                    the CDN with ``X-Linked-Etag``/``X-Linked-Size``
``HEAD|GET <cdn>/cdn/{sha256}``                      the bytes, ``Range: bytes=N-`` → 206 + ``Content-Range``

The CDN is a second server (another port, so another origin, as on the real hub): clients take the
metadata from the 302 itself and must not forward the ``Authorization`` header there.

Errors carry the hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``,
``GatedRepo``: 401 without a token, 403 with a token that was not granted). No xet headers are ever
sent, so clients use plain HTTP.

Test controls: ``hub.cut_once(path, after)`` closes the connection after ``after`` body bytes the
next time that file is served; ``hub.hold(path, after) -> Event`` pauses there until the event is
set; ``hub.log`` lists every request (method, path, range, status, bytes sent, had auth).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".msgpack", ".model", ".pth", ".h5", ".png")


@dataclass
class HubFile:
    data: bytes
    lfs: bool
    listed_size: int | None = None  # a tree listing that lies about the size (disk-full drills)

    @property
    def oid(self) -> str:  # git blob id
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid


@dataclass
class HubRepo:
    files: dict[str, HubFile]
    sha: str
    gated: bool = False
    tokens: set[str] = field(default_factory=set)  # tokens granted access to a gated repo


@dataclass
class Hit:
    method: str
    path: str
    range: str | None
    status: int
    sent: int
    auth: bool


class FakeHub:
    def __init__(self, page_size: int = 1000):
        self.repos: dict[str, HubRepo] = {}
        self.log: list[Hit] = []
        self.page_size = page_size
        self._cuts: dict[str, int] = {}
        self._holds: dict[str, tuple[int, threading.Event]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._cdn: ThreadingHTTPServer | None = None

    # --- repositories -------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes], *, gated: bool = False,
                 tokens: set[str] | None = None) -> HubRepo:
        sha = hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        repo = HubRepo({p: HubFile(d, p.endswith(LFS_SUFFIXES)) for p, d in files.items()}, sha, gated,
                       set(tokens or ()))
        self.repos[repo_id] = repo
        return repo

    def add_folder(self, repo_id: str, folder: Path, extra: dict[str, bytes] | None = None, **kw) -> HubRepo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.add_repo(repo_id, {**files, **(extra or {})}, **kw)

    # --- faults -------------------------------------------------------------------------
    def cut_once(self, path: str, after: int) -> None:
        self._cuts[path] = after

    def hold(self, path: str, after: int) -> threading.Event:
        event = threading.Event()
        self._holds[path] = (after, event)
        return event

    # --- what happened ------------------------------------------------------------------
    def hits(self, part: str = "", method: str | None = None) -> list[Hit]:
        """Requests whose path contains ``part``."""
        with self._lock:
            return [h for h in self.log if part in h.path and (method is None or h.method == method)]

    def file_hits(self, repo_id: str, path: str) -> list[Hit]:
        """The GETs that carried the bytes of one file (its CDN URL for LFS files)."""
        f = self.repos[repo_id].files[path]
        where = f"/cdn/{f.sha256}" if f.lfs else f"/{repo_id}/resolve/{self.repos[repo_id].sha}/{path}"
        return [h for h in self.hits(method="GET") if h.path == where or (not f.lfs and h.path.endswith("/" + path))]

    # --- server -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def start(self) -> Self:
        servers = []
        for cdn in (False, True):
            handler = type("Handler", (_Handler,), {"hub": self, "cdn": cdn})
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True, name="fake-hub").start()
            servers.append(server)
        self._server, self._cdn = servers
        return self

    def stop(self) -> None:
        for _, event in self._holds.values():
            event.set()
        for server in (self._server, self._cdn):
            if server is not None:
                server.shutdown()
                server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    cdn: bool
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # --- routing ------------------------------------------------------------------------
    def _dispatch(self, head: bool) -> None:
        split = urlsplit(self.path)
        path, query = unquote(split.path), parse_qs(split.query)
        self._sent, self._status = 0, 0
        try:
            if self.cdn:
                if m := re.fullmatch(r"/cdn/([0-9a-f]{64})", path):
                    self._cdn_object(m[1], head)
                else:
                    self._error(404, "EntryNotFound", "no such object")
            elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
                self._info(m[1], m[2])
            elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
                self._tree(m[1], m[2], query)
            elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                self._resolve(m[1], m[2], m[3], head)
            else:
                self._error(404, "RepoNotFound", "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with self.hub._lock:
                self.hub.log.append(Hit("HEAD" if head else "GET", path, self.headers.get("Range"), self._status,
                                        self._sent, "authorization" in {k.lower() for k in self.headers}))

    def _repo(self, repo_id: str, rev: str) -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        if rev not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo

    def _info(self, repo_id: str, rev: str) -> None:
        if repo := self._repo(repo_id, rev):
            self._json({"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": False,
                        "gated": "manual" if repo.gated else False, "downloads": 0, "likes": 0, "tags": [],
                        "siblings": [{"rfilename": p} for p in sorted(repo.files)]})

    def _tree(self, repo_id: str, rev: str, query: dict) -> None:
        repo = self._repo(repo_id, rev)
        if repo is None:
            return
        entries, folders = [], set()
        for p in sorted(repo.files):
            parts = p.split("/")
            for i in range(1, len(parts)):
                folders.add("/".join(parts[:i]))
        for d in sorted(folders):
            entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
        for p, f in sorted(repo.files.items()):
            size = f.listed_size or len(f.data)
            entry = {"type": "file", "oid": f.oid, "size": size, "path": p}
            if f.lfs:
                entry = {**entry, "oid": hashlib.sha1(p.encode()).hexdigest(),
                         "lfs": {"oid": f.sha256, "size": size, "pointerSize": 134}}
            entries.append(entry)
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(entries):
            nxt = f"{self.hub.url}/api/models/{repo_id}/tree/{rev}?recursive=true&cursor={start + self.hub.page_size}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        self._json(page, headers)

    def _authorised(self, repo: HubRepo) -> bool:
        if not repo.gated:
            return True
        auth = self.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") in repo.tokens:
            return True
        status = 403 if auth else 401
        self._error(status, "GatedRepo", "Access to this model is restricted. You must have access to it "
                                         "and be authenticated to access it. Please log in.")
        return False

    def _resolve(self, repo_id: str, rev: str, path: str, head: bool) -> None:
        repo = self._repo(repo_id, rev)
        if repo is None or not self._authorised(repo):
            return
        f = repo.files.get(path)
        common = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if f is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on \"{rev}\"", common)
        elif f.lfs:
            self._reply(302, b"", {**common, "Location": f"{self.hub.cdn_url}/cdn/{f.sha256}?name={quote(path)}",
                                   "ETag": f'"{hashlib.sha1(path.encode()).hexdigest()}"',
                                   "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(len(f.data))}, head)
        else:
            self._body(path, f, head, {**common, "ETag": f'"{f.oid}"'})

    def _cdn_object(self, sha256: str, head: bool) -> None:
        for repo in self.hub.repos.values():
            for path, f in repo.files.items():
                if f.lfs and f.sha256 == sha256:
                    return self._body(path, f, head, {"ETag": f'"{f.sha256}"', "Accept-Ranges": "bytes"})
        self._error(404, "EntryNotFound", "no such object")

    # --- bodies -------------------------------------------------------------------------
    def _body(self, path: str, f: HubFile, head: bool, headers: dict) -> None:
        data, status, start = f.data, 200, 0
        if rng := self.headers.get("Range"):
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            start = int(m[1])
            end = int(m[2]) if m[2] else len(data) - 1
            if start >= len(data):
                return self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head)
            data, status = data[start:end + 1], 206
            headers = {**headers, "Content-Range": f"bytes {start}-{start + len(data) - 1}/{len(f.data)}"}
        self._status = status
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(data)), "Content-Type": "application/octet-stream"}.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        cut = self.hub._cuts.pop(path, None)
        hold = self.hub._holds.pop(path, None)
        step = 8192
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            if cut is not None and self._sent + len(piece) > cut:
                self.wfile.write(piece[:max(cut - self._sent, 0)])
                self._sent = max(cut, self._sent)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if hold is not None and self._sent + len(piece) > hold[0]:
                self.wfile.flush()
                hold[1].wait(30)
                hold = None
            self.wfile.write(piece)
            self._sent += len(piece)
        self.wfile.flush()

    def _json(self, payload, headers: dict | None = None) -> None:
        self._reply(200, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._reply(status, body, {"Content-Type": "application/json", "X-Error-Code": code,
                                   "X-Error-Message": message, **(headers or {})})

    def _reply(self, status: int, body: bytes, headers: dict, head: bool = False) -> None:
        self._status = status
        self.send_response(status)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
            self._sent = len(body)
