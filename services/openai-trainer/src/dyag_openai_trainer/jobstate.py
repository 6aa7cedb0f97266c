"""A "train.openai" job's state in its work folder (the plan, the uploaded files, the remote job, the events
already seen): a job resumed after a restart skips the gates and follows the same remote job."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "hosted-state.json"
MAX_SEEN_EVENTS = 5000


@dataclass
class JobState:
    """What a resumed job needs, in its work folder (it survives restarts)."""

    path: Path
    plan: dict[str, Any] | None = None
    files: dict[str, Any] = field(default_factory=dict)
    remote_job_id: str = ""
    reused_remote_job: bool = False
    seen_events: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, workdir: Path) -> JobState:
        path = workdir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        return cls(path, **{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "path"})

    def save(self) -> None:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "path"}
        data["seen_events"] = data["seen_events"][-MAX_SEEN_EVENTS:]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False))
        tmp.replace(self.path)
