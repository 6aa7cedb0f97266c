"""When a catalog change starts a retraining: redelivered events start nothing twice, changes within the debounce
window (and those that come while a retraining runs) coalesce into the next one, one retraining per catalog at a time.

Pure: the gateway keeps a `TriggerState` per catalog beside its champion book and calls these functions on each
`catalog.updated`, on each tick, and when a retraining ends. Work is keyed by the catalog's content hash (its
version): the same version twice is the same work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dyag_core.retraining.policy import RetrainingPolicy

MAX_DEBOUNCE_WAITS = 10  # a catalog that changes without pause still retrains after 10 windows


@dataclass
class PendingChange:
    version: str  # the newest version seen
    from_version: str  # the version before the first change of this batch
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    first_seen: float = 0.0
    due_at: float | None = None  # None: waits for a manual or scheduled start
    reason: str = "catalog changed"  # or "requested by …", "schedule …"

    @property
    def entities(self) -> int:
        return len(self.added | self.changed | self.removed)

    def asked_about(self) -> list[str]:
        """The applications whose facts changed and can be asked about (not the removed ones)."""
        return sorted((self.added | self.changed) - self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from_version": self.from_version,
            "added": sorted(self.added),
            "changed": sorted(self.changed),
            "removed": sorted(self.removed),
            "first_seen": self.first_seen,
            "due_at": self.due_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingChange:
        return cls(
            data["version"],
            data.get("from_version", ""),
            set(data.get("added") or ()),
            set(data.get("changed") or ()),
            set(data.get("removed") or ()),
            float(data.get("first_seen") or 0),
            data.get("due_at"),
            str(data.get("reason") or "catalog changed"),
        )


@dataclass
class TriggerState:
    pending: PendingChange | None = None
    running: dict[str, Any] | None = None  # {"pipeline_id", "version", "started_at", "change": PendingChange dict}
    last_version: str = ""  # the catalog version the last retraining started from (its work key)
    started: int = 0  # retrainings started
    last_error: str = ""  # why the last start failed, if it did

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending.to_dict() if self.pending else None,
            "running": self.running,
            "last_version": self.last_version,
            "started": self.started,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TriggerState:
        data = data or {}
        pending = data.get("pending")
        return cls(
            PendingChange.from_dict(pending) if pending else None,
            data.get("running"),
            data.get("last_version", ""),
            int(data.get("started") or 0),
            str(data.get("last_error") or ""),
        )


def on_change(
    state: TriggerState,
    policy: RetrainingPolicy,
    *,
    version: str,
    previous_version: str,
    added: list[str],
    changed: list[str],
    removed: list[str],
    now: float,
) -> str:
    """Record one catalog.updated; says what it did: duplicate, queued or coalesced."""
    known = {
        state.last_version,
        state.pending.version if state.pending else "",
        (state.running or {}).get("version", ""),
    }
    if version in known:
        return "duplicate"  # a redelivery, or a version already on its way
    pending = state.pending
    what = "coalesced" if pending else "queued"
    if pending is None:
        pending = state.pending = PendingChange(version, previous_version, first_seen=now)
    pending.version = version
    pending.added |= set(added)
    pending.changed |= set(changed)
    pending.removed |= set(removed)
    if policy.trigger == "on_change":
        latest = pending.first_seen + MAX_DEBOUNCE_WAITS * policy.debounce_s
        pending.due_at = min(now + policy.debounce_s, max(latest, now))
    return what


def request(state: TriggerState, *, version: str, from_version: str, now: float) -> None:
    """A manual or scheduled start: whatever is pending (or the current version) starts as soon as nothing runs."""
    if state.pending is None:
        state.pending = PendingChange(version, from_version, first_seen=now)
    state.pending.due_at = now


def is_due(state: TriggerState, policy: RetrainingPolicy, now: float) -> bool:
    pending = state.pending
    if pending is None or state.running is not None or pending.due_at is None or pending.due_at > now:
        return False
    manual = pending.entities == 0  # asked for, not caused by a change
    return manual or pending.entities >= policy.min_changed_entities


def start(state: TriggerState, pipeline_id: str, now: float) -> PendingChange:
    """The pending change becomes the running retraining."""
    assert state.pending is not None and state.running is None
    change, state.pending = state.pending, None
    state.running = {
        "pipeline_id": pipeline_id,
        "version": change.version,
        "started_at": now,
        "change": change.to_dict(),
    }
    state.last_version = change.version
    state.started += 1
    state.last_error = ""
    return change


def finish(state: TriggerState, pipeline_id: str) -> bool:
    """The retraining `pipeline_id` ended; False when it is not the one running (a late or repeated notice)."""
    if not state.running or state.running.get("pipeline_id") != pipeline_id:
        return False
    state.running = None
    return True


def abandon(state: TriggerState, pipeline_id: str, *, error: str, retry_at: float) -> bool:
    """A retraining that could not start (or whose start was lost): its change is pending again, merged with any
    newer one, and tried again at `retry_at`."""
    if not state.running or state.running.get("pipeline_id") != pipeline_id:
        return False
    change = PendingChange.from_dict(state.running["change"])
    state.running, state.last_version, state.last_error = None, "", error
    newer = state.pending
    if newer is not None:
        change.version = newer.version
        change.added |= newer.added
        change.changed |= newer.changed
        change.removed |= newer.removed
    change.due_at = retry_at
    state.pending = change
    return True
