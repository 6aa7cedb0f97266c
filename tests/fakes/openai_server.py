"""A fake OpenAI API for the tests: a real HTTP server on loopback that speaks the documented wire
protocol of the endpoints the openai-trainer uses, so the real `openai` client (3.x, over httpx2) can
be driven against it without network or a real key.

    POST /v1/files (multipart: file, purpose)        GET /v1/files, GET /v1/files/{id}
    POST /v1/fine_tuning/jobs                        GET /v1/fine_tuning/jobs (list)
    GET  /v1/fine_tuning/jobs/{id}                   POST /v1/fine_tuning/jobs/{id}/cancel
    GET  /v1/fine_tuning/jobs/{id}/events            GET /v1/fine_tuning/jobs/{id}/checkpoints
    POST /v1/chat/completions

Scriptable:
- fail_next("POST /v1/files", Fault(429, retry_after=1), Fault(500)): the next calls of a route fail so
  (Fault(502, after=True): the call is carried out but its answer is lost);
- script(suffix, JobScript(...)): how the jobs created with that suffix behave: steps, a remote failure at a
  step, a 403 "fine-tuning not available" at creation, a hold at a step until release(suffix);
- a job advances one stage per retrieve (validating_files, queued, running step 1..N, succeeded), so its
  progression follows the polls of whoever follows it.
Every request is recorded (requests), with its Authorization header checked against the one key accepted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXPENSIVE_MODEL = "gpt-dyag-test-expensive"  # priced by service_env() far above any budget
NOT_AVAILABLE = (
    "Fine-tuning is not available for your organization. New organizations can no longer create fine-tuning jobs."
)


@dataclass
class Fault:
    """One scripted failure: an HTTP status (with its error body and Retry-After), or a delay before answering."""

    status: int = 500
    retry_after: float | None = None
    message: str = ""
    code: str = ""
    delay_s: float = 0.0  # sleep first (longer than the client's timeout: a timeout)
    after: bool = False  # the request is carried out, then its answer is lost (the client sees the error)

    def body(self) -> dict[str, Any]:
        message = self.message or {
            429: "Rate limit reached for requests",
            500: "The server had an error while processing your request.",
            503: "The engine is currently overloaded, please try again later",
        }.get(self.status, "error")
        kind = "requests" if self.status == 429 else ("server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": self.code or None}}


@dataclass
class JobScript:
    steps: int = 4
    fail_at_step: int | None = None  # the remote job fails when it reaches this step
    error_code: str = "invalid_training_file"
    error_message: str = "The job failed due to an invalid training file. Line 3: invalid JSON."
    refuse_create: int | None = None  # e.g. 403: fine-tuning not available for this organisation
    refuse_message: str = NOT_AVAILABLE
    hold_at_step: int | None = None  # stays running at this step until release()
    checkpoint_every: int = 2


@dataclass
class FakeJob:
    body: dict[str, Any]
    script: JobScript
    stage: int = 0  # 0 validating_files, 1 queued, 2 running (step = stage - 1), ...
    step: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    retrieves: int = 0


class FakeOpenAI:
    def __init__(self, api_key: str, host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.models: set[str] = {"gpt-4o-mini-2024-07-18", "gpt-3.5-turbo", "gpt-4.1-mini"}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.scripts: dict[str, JobScript] = {}
        self.released: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.chats: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def service_env(self) -> dict[str, str]:
        """openai-trainer's settings for a test stack: this server, and polls and retries of a fraction of a
        second. Not the key: it goes through the environment, as a real key would."""
        from dyag_core.validation.cost import DEFAULT_PRICES

        return {
            "DYAG_OPENAI_BASE_URL": self.base_url,
            "DYAG_OPENAI_POLL_INTERVAL_S": "0.15",
            "DYAG_OPENAI_POLL_MAX_INTERVAL_S": "0.4",
            "DYAG_OPENAI_RETRY_BASE_S": "0.1",
            "DYAG_OPENAI_RETRY_CAP_S": "0.5",
            "DYAG_OPENAI_CHECKPOINTS_EVERY_POLLS": "3",
            # The default price table, plus a model too expensive for any budget (the cost gate's test).
            "DYAG_OPENAI_PRICES": json.dumps({**DEFAULT_PRICES, EXPENSIVE_MODEL: 1_000_000.0}),
        }

    def fail_next(self, route: str, *faults: Fault) -> None:
        """route: "POST /v1/files", "POST /v1/fine_tuning/jobs", "GET /v1/fine_tuning/jobs/{id}", ..."""
        with self.lock:
            self.faults[route].extend(faults)

    def script(self, suffix: str, script: JobScript) -> None:
        with self.lock:
            self.scripts[suffix] = script

    def release(self, suffix: str) -> None:
        with self.lock:
            self.released.add(suffix)

    def calls(self, route: str, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["route"] == route and (status is None or r["status"] == status)]

    def jobs_with_suffix(self, suffix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [j.body for j in self.jobs.values() if j.body.get("_suffix") == suffix]

    def job_step(self, job_id: str) -> int:
        with self.lock:
            return self.jobs[job_id].step

    # --- the API ---------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict, dict]:
        route, ids = _route(method, path)
        record = {"method": method, "path": path, "route": route, "time": time.time(), "status": 0, "info": {}}
        with self.lock:
            self.requests.append(record)
        if headers.get("authorization") != f"Bearer {self.api_key}":
            given = headers.get("authorization", "").removeprefix("Bearer ")
            shown = (given[:3] + "*" * 4 + given[-4:]) if len(given) > 8 else "(none)"
            record["status"] = 401
            return (
                401,
                {},
                {
                    "error": {
                        "message": f"Incorrect API key provided: {shown}. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        with self.lock:
            fault = self.faults[route].popleft() if self.faults.get(route) else None
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status and not fault.after:
                record["status"] = fault.status
                extra = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return fault.status, extra, fault.body()
        handler = getattr(
            self,
            "_" + route.replace("/v1/", "").replace("{id}", "id").replace("/", "_").replace(" ", "_").lower(),
            None,
        )
        if handler is None:
            record["status"] = 404
            return 404, {}, _error(f"Invalid URL ({method} {path})", "invalid_request_error")
        with self.lock:
            status, payload = handler(ids, query, headers, body, record["info"])
        if fault is not None and fault.after and fault.status:
            record["status"] = fault.status
            record["info"]["lost_answer"] = status
            return fault.status, {}, fault.body()
        record["status"] = status
        return status, {}, payload

    def _post_files(self, ids, query, headers, body, info):
        fields, files = _multipart(headers.get("content-type", ""), body)
        if "file" not in files:
            return 400, _error("Missing file", "invalid_request_error", param="file")
        purpose = fields.get("purpose", "")
        if purpose not in ("fine-tune", "assistants", "batch", "vision", "user_data", "evals"):
            return 400, _error(
                f"'{purpose}' is not one of the supported purposes", "invalid_request_error", param="purpose"
            )
        filename, data = files["file"]
        if purpose == "fine-tune":
            for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if line.strip():
                    try:
                        json.loads(line)
                    except ValueError:
                        return 400, _error(
                            f"Invalid file format for Fine-Tuning API. Line {n} is not valid JSON.",
                            "invalid_request_error",
                        )
        file_id = "file-" + uuid.uuid4().hex[:24]
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[file_id] = obj
        self.file_contents[file_id] = data
        info.update(filename=filename, file_id=file_id)
        return 200, obj

    def _get_files(self, ids, query, headers, body, info):
        purpose = _q(query, "purpose")
        data = [f for f in self.files.values() if not purpose or f["purpose"] == purpose]
        data.sort(key=lambda f: (f["created_at"], f["id"]), reverse=_q(query, "order", "desc") == "desc")
        return 200, _page(data[: int(_q(query, "limit", "10000"))])

    def _get_files_id(self, ids, query, headers, body, info):
        obj = self.files.get(ids[0])
        return (
            (200, obj) if obj else (404, _error(f"No such File object: {ids[0]}", "invalid_request_error", param="id"))
        )

    def _post_fine_tuning_jobs(self, ids, query, headers, body, info):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, _error("We could not parse the JSON body of your request.", "invalid_request_error")
        suffix = request.get("suffix") or ""
        script = self.scripts.get(suffix, JobScript())
        info.update(suffix=suffix, training_file=request.get("training_file"))
        if script.refuse_create:
            return script.refuse_create, _error(
                script.refuse_message, "invalid_request_error", code="fine_tuning_not_available"
            )
        model = request.get("model", "")
        if model not in self.models:
            return 400, _error(
                f"Model {model} is not available for fine-tuning or does not exist.",
                "invalid_request_error",
                param="model",
            )
        for name in ("training_file", "validation_file"):
            file_id = request.get(name)
            if name == "training_file" and not file_id:
                return 400, _error("Missing required parameter: 'training_file'.", "invalid_request_error", param=name)
            if file_id and file_id not in self.files:
                return 400, _error(f"invalid {name}: {file_id}", "invalid_request_error", param=name)
        hp = dict(
            (((request.get("method") or {}).get("supervised") or {}).get("hyperparameters"))
            or request.get("hyperparameters")
            or {}
        )
        job_id = "ftjob-" + uuid.uuid4().hex[:24]
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "model": model,
            "organization_id": "org-fake",
            "result_files": [],
            "seed": request.get("seed") or 42,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": request["training_file"],
            "validation_file": request.get("validation_file"),
            "estimated_finish": None,
            "integrations": [],
            "metadata": request.get("metadata"),
            "user_provided_suffix": suffix or None,
            "hyperparameters": {
                "n_epochs": hp.get("n_epochs", "auto"),
                "batch_size": hp.get("batch_size", "auto"),
                "learning_rate_multiplier": hp.get("learning_rate_multiplier", "auto"),
            },
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            "_suffix": suffix,
        }
        fake = FakeJob(job, script)
        self.jobs[job_id] = fake
        _event(fake, f"Validating training file: {request['training_file']}")
        info.update(job_id=job_id)
        return 200, _public(job)

    def _get_fine_tuning_jobs(self, ids, query, headers, body, info):
        data = sorted(
            (_public(j.body) for j in self.jobs.values()), key=lambda j: (j["created_at"], j["id"]), reverse=True
        )
        return 200, _page(data[: int(_q(query, "limit", "20"))])

    def _get_fine_tuning_jobs_id(self, ids, query, headers, body, info):
        fake = self.jobs.get(ids[0])
        if fake is None:
            return 404, _error(f"Could not find fine tune job: {ids[0]}", "invalid_request_error", param="fine_tune_id")
        fake.retrieves += 1
        self._advance(fake)
        return 200, _public(fake.body)

    def _advance(self, fake: FakeJob) -> None:
        job, script = fake.body, fake.script
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        if job["status"] == "validating_files":
            job["status"] = "queued"
            _event(fake, "Files validated, moving job to queued state")
            return
        if job["status"] == "queued":
            job["status"] = "running"
            job["estimated_finish"] = int(time.time()) + 60
            _event(fake, "Fine-tuning job started")
            return
        if script.hold_at_step is not None and fake.step >= script.hold_at_step and job["_suffix"] not in self.released:
            return
        fake.step += 1
        step, total = fake.step, script.steps
        if script.fail_at_step is not None and step >= script.fail_at_step:
            job.update(
                status="failed",
                finished_at=int(time.time()),
                estimated_finish=None,
                error={"code": script.error_code, "message": script.error_message, "param": "training_file"},
            )
            _event(fake, f"Fine-tuning job failed: {script.error_message}", level="error")
            return
        loss = round(2.0 / (1 + step), 4)
        metrics = {
            "step": step,
            "train_loss": loss,
            "valid_loss": round(loss * 1.1, 4),
            "total_steps": total,
            "train_mean_token_accuracy": round(min(0.5 + 0.1 * step, 0.99), 3),
            "valid_mean_token_accuracy": round(min(0.45 + 0.1 * step, 0.99), 3),
        }
        _event(fake, f"Step {step}/{total}: training loss={loss}", kind="metrics", data=metrics)
        if step % script.checkpoint_every == 0 or step == total:
            fake.checkpoints.append(
                {
                    "id": "ftckpt-" + uuid.uuid4().hex[:20],
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": int(time.time()),
                    "fine_tuned_model_checkpoint": f"ft:{job['model']}:fake-org:"
                    f"{job['_suffix']}:ckpt{step}:step-{step}",
                    "fine_tuning_job_id": job["id"],
                    "step_number": step,
                    "metrics": {
                        "step": step,
                        "train_loss": loss,
                        "valid_loss": round(loss * 1.1, 4),
                        "full_valid_loss": round(loss * 1.2, 4),
                        "train_mean_token_accuracy": metrics["train_mean_token_accuracy"],
                        "valid_mean_token_accuracy": metrics["valid_mean_token_accuracy"],
                        "full_valid_mean_token_accuracy": metrics["valid_mean_token_accuracy"],
                    },
                }
            )
        if step >= total:
            model_id = f"ft:{job['model']}:fake-org:{job['_suffix'] or 'dyag'}:{uuid.uuid4().hex[:8]}"
            tokens = len(self.file_contents.get(job["training_file"], b"")) // 4
            epochs = job["hyperparameters"]["n_epochs"]
            job.update(
                status="succeeded",
                fine_tuned_model=model_id,
                finished_at=int(time.time()),
                estimated_finish=None,
                trained_tokens=tokens * (epochs if isinstance(epochs, int) else 3),
                result_files=["file-results-" + uuid.uuid4().hex[:8]],
            )
            self.models.add(model_id)
            _event(fake, f"New fine-tuned model created: {model_id}")
            _event(fake, "The job has successfully completed")

    def _get_fine_tuning_jobs_id_events(self, ids, query, headers, body, info):
        fake = self.jobs.get(ids[0])
        if fake is None:
            return 404, _error(f"Could not find fine tune job: {ids[0]}", "invalid_request_error")
        events = list(reversed(fake.events))  # newest first, as the API pages them
        after = _q(query, "after")
        if after:
            index = next((i for i, e in enumerate(events) if e["id"] == after), -1)
            events = events[index + 1 :]
        limit = int(_q(query, "limit", "20"))
        return 200, _page(events[:limit], has_more=len(events) > limit)

    def _get_fine_tuning_jobs_id_checkpoints(self, ids, query, headers, body, info):
        fake = self.jobs.get(ids[0])
        if fake is None:
            return 404, _error(f"Could not find fine tune job: {ids[0]}", "invalid_request_error")
        return 200, _page(list(reversed(fake.checkpoints))[: int(_q(query, "limit", "10"))])

    def _post_fine_tuning_jobs_id_cancel(self, ids, query, headers, body, info):
        fake = self.jobs.get(ids[0])
        if fake is None:
            return 404, _error(f"Could not find fine tune job: {ids[0]}", "invalid_request_error")
        if fake.body["status"] in ("succeeded", "failed", "cancelled"):
            return 400, _error(f"Job has already {fake.body['status']}.", "invalid_request_error")
        fake.body.update(status="cancelled", finished_at=int(time.time()), estimated_finish=None)
        _event(fake, "Fine-tuning job cancelled")
        return 200, _public(fake.body)

    def _post_chat_completions(self, ids, query, headers, body, info):
        request = json.loads(body or b"{}")
        model = request.get("model", "")
        if model not in self.models:
            return 404, _error(
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                code="model_not_found",
            )
        question = next((m["content"] for m in reversed(request.get("messages", [])) if m.get("role") == "user"), "")
        answer = f"[{model}] Réponse à « {question} » : voir la fiche de l'application dans le catalogue."
        self.chats.append({"model": model, "question": question, "answer": answer})
        return 200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:20],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": 30 + len(question) // 4,
                "completion_tokens": len(answer) // 4,
                "total_tokens": 30 + (len(question) + len(answer)) // 4,
            },
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeOpenAI

    def log_message(self, format, *args):  # quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, payload = self.server_fake.handle(self.command, parts.path, parse_qs(parts.query), headers, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:16])
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve


def _route(method: str, path: str) -> tuple[str, list[str]]:
    parts = [p for p in path.split("/") if p]
    ids, shape = [], []
    for i, part in enumerate(parts):
        if i >= 2 and (
            part.startswith(("file-", "ftjob-"))
            or (shape and shape[-1] in ("files", "jobs") and part not in ("cancel",))
        ):
            ids.append(part)
            shape.append("{id}")
        else:
            shape.append(part)
    return f"{method} /{'/'.join(shape)}", ids


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), payload)
        else:
            fields[name] = payload.decode()
    return fields, files


def _event(
    fake: FakeJob, message: str, *, level: str = "info", kind: str = "message", data: dict | None = None
) -> None:
    fake.events.append(
        {
            "id": "ftevent-" + uuid.uuid4().hex[:20],
            "object": "fine_tuning.job.event",
            "created_at": int(time.time()),
            "level": level,
            "message": message,
            "data": data or {},
            "type": kind,
        }
    )


def _page(data: list[dict[str, Any]], has_more: bool = False) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _error(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _q(query: dict[str, list[str]], name: str, default: str = "") -> str:
    return (query.get(name) or [default])[0]
