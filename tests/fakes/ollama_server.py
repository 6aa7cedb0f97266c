"""A fake Ollama server for the tests: a real HTTP server on loopback implementing the documented model
creation endpoints, as `ollama create` against a remote server uses them.

    HEAD /api/blobs/sha256:<hex>   200 if the blob exists, 404 if not (400: not a sha256 digest)
    POST /api/blobs/sha256:<hex>   the file's bytes; 201 when their sha256 is the digest, 400 otherwise
    POST /api/create               {"model", "from" | "files", "adapters", "template", "system", "parameters",
                                   "stream"}:
                                   400 for a bad request (no model name, neither from nor files, a file whose blob was
                                   never pushed); else streamed JSON status lines (application/x-ndjson) ending with
                                   {"status": "success"}, or an {"error": …} line (a blob that is not GGUF)
    GET  /api/tags                 the models created
    POST /api/show                 {"model"}: its template, system prompt, parameters and files (404 if unknown)

Blobs are kept in memory with their digest checked on upload, as Ollama checks them; every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*(/[a-zA-Z0-9][a-zA-Z0-9._-]*)?(:[a-zA-Z0-9][a-zA-Z0-9._-]{0,127})?$")
GGUF_MAGIC = b"GGUF"


class FakeOllamaServer:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(_Handler):
            fake = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeOllamaServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOllamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOllamaServer

    def log_message(self, *args) -> None:  # quiet
        pass

    # --- helpers ---
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, status: int, payload: dict[str, Any] | None = None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, lines: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            data = (json.dumps(line) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _digest(self) -> str | None:
        match = DIGEST.match(self.path.rsplit("/", 1)[-1])
        return f"sha256:{match.group(1)}" if match else None

    # --- routes ---
    def do_HEAD(self) -> None:
        self.fake.requests.append(("HEAD", self.path))
        if not self.path.startswith("/api/blobs/"):
            return self._json(404)
        digest = self._digest()
        if digest is None:
            return self._json(400)
        with self.fake.lock:
            return self._json(200 if digest in self.fake.blobs else 404)

    def do_GET(self) -> None:
        self.fake.requests.append(("GET", self.path))
        if self.path == "/api/tags":
            with self.fake.lock:
                models = [
                    {
                        "name": f"{n}:latest" if ":" not in n else n,
                        "model": n,
                        "size": m["size"],
                        "digest": m["digest"],
                        "details": {"format": "gguf"},
                    }
                    for n, m in self.fake.models.items()
                ]
            return self._json(200, {"models": models})
        return self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.fake.requests.append(("POST", self.path))
        body = self._read_body()
        if self.path.startswith("/api/blobs/"):
            digest = self._digest()
            if digest is None:
                return self._json(400, {"error": "invalid digest format"})
            actual = "sha256:" + hashlib.sha256(body).hexdigest()
            if actual != digest:
                return self._json(400, {"error": f"digest mismatch, expected {digest!r}, got {actual!r}"})
            with self.fake.lock:
                self.fake.blobs[digest] = body
            return self._json(201)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self._json(400, {"error": "invalid JSON"})
        if self.path == "/api/create":
            return self._create(request)
        if self.path == "/api/show":
            with self.fake.lock:
                model = self.fake.models.get(str(request.get("model") or request.get("name") or ""))
            if model is None:
                return self._json(404, {"error": f"model '{request.get('model')}' not found"})
            return self._json(
                200, {k: model[k] for k in ("template", "system", "parameters", "files", "adapters", "details")}
            )
        return self._json(404, {"error": "not found"})

    def _create(self, request: dict[str, Any]) -> None:
        name = str(request.get("model") or "")
        if not name or not NAME.match(name):
            return self._json(400, {"error": "invalid model name"})
        files: dict[str, str] = request.get("files") or {}
        adapters: dict[str, str] = request.get("adapters") or {}
        if not files and not request.get("from"):
            return self._json(400, {"error": "neither 'from' or 'files' was specified"})
        with self.fake.lock:
            missing = [f"{n} ({d})" for n, d in {**files, **adapters}.items() if d not in self.fake.blobs]
            blobs = {n: self.fake.blobs.get(d, b"") for n, d in {**files, **adapters}.items()}
        if missing:
            return self._json(
                400, {"error": f"blob not found for {', '.join(missing)}: push it with POST /api/blobs/<digest> first"}
            )
        lines: list[dict[str, Any]] = []
        for file_name, data in blobs.items():
            if not data.startswith(GGUF_MAGIC):
                lines.append({"error": f"{file_name} is not a GGUF file (invalid file magic)"})
                return self._stream(lines) if request.get("stream", True) else self._json(400, lines[-1])
            lines.append({"status": "parsing GGUF"})
            lines.append({"status": f"using existing layer {files.get(file_name) or adapters.get(file_name)}"})
        for part in ("template", "system", "parameters"):
            if request.get(part):
                text = json.dumps(request[part], sort_keys=True)
                lines.append({"status": f"creating new layer sha256:{hashlib.sha256(text.encode()).hexdigest()}"})
        lines += [{"status": "writing manifest"}, {"status": "success"}]
        size = sum(len(b) for b in blobs.values())
        with self.fake.lock:
            self.fake.models[name] = {
                "template": request.get("template", ""),
                "system": request.get("system", ""),
                "parameters": request.get("parameters", {}),
                "files": files,
                "adapters": adapters,
                "details": {"format": "gguf", "parent_model": request.get("from", "")},
                "size": size,
                "digest": hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest(),
            }
        if request.get("stream", True) is False:
            return self._json(200, {"status": "success"})
        self._stream(lines)
