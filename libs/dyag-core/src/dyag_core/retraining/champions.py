"""Which model answers for a catalog: aliases (`champion`, `challenger`, `previous`) over any kind of target, and an
append-only log of every decision (when, why, the evidence, who asked), from which any earlier champion is restored
in one call.

Pure: the gateway keeps one `ChampionBook` per catalog in one key of its KV store and writes it whole with
compare-and-set, so that a promotion, a rejection or a rollback is one atomic change: there is never a moment, nor a
crash, with two champions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dyag_core.errors import DyagError

ALIASES = ("champion", "challenger", "previous")
# A target: a LoRA model (lora-…), an export (export-…), a hosted model, a RAG configuration (a collection, its mode
# and model), grounded answers (the collection's records), a hybrid (RAG's retrieval + a LoRA model), a GGUF model.
TARGET_KINDS = ("lora", "export", "hosted", "rag", "grounded", "hybrid", "gguf")
ACTIONS = ("proposed", "promoted", "rejected", "rolled_back")


class ChampionError(DyagError):
    pass


@dataclass(frozen=True)
class ModelRef:
    """Something that answers questions about a catalog."""

    kind: str
    id: str  # the model, export or collection id
    catalog_version: str = ""  # the catalog version it was made from (RAG: the one it was evaluated on)
    details: dict[str, Any] = field(default_factory=dict)  # rag_mode, llm, base_model, model_id of a hybrid…

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ChampionError(
                "invalid_target", f"target kind must be one of {', '.join(TARGET_KINDS)}, not {self.kind!r}"
            )
        if not self.id.strip():
            raise ChampionError("invalid_target", f"a {self.kind} target needs an id (model, export or collection)")

    def same_system(self, other: ModelRef | None) -> bool:
        """Whether `other` answers the same way: the same model; for RAG kinds, the same collection, mode and model
        whatever the catalog version (a collection follows its catalog at once)."""
        if other is None or (self.kind, self.id) != (other.kind, other.id):
            return False
        if self.kind in ("rag", "grounded", "hybrid"):
            ignored = ("dataset_id",)
            return {k: v for k, v in self.details.items() if k not in ignored} == {
                k: v for k, v in other.details.items() if k not in ignored
            }
        return True

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "catalog_version": self.catalog_version,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRef:
        try:
            return cls(
                str(data["kind"]),
                str(data["id"]),
                str(data.get("catalog_version") or ""),
                dict(data.get("details") or {}),
            )
        except KeyError as exc:
            raise ChampionError("invalid_target", f"a target needs {exc.args[0]!r} (kind and id)") from None


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: float
    action: str  # proposed | promoted | rejected | rolled_back
    target: ModelRef
    replaced: ModelRef | None  # the champion before (promoted, rolled_back)
    reason: str
    evidence: dict[str, Any]  # pipeline id, evaluation run ids, the gate's report
    by: str  # who asked: "retraining" for the loop, else the caller

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "action": self.action,
            "target": self.target.to_dict(),
            "replaced": self.replaced.to_dict() if self.replaced else None,
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogEntry:
        replaced = data.get("replaced")
        return cls(
            int(data["seq"]),
            float(data["at"]),
            str(data["action"]),
            ModelRef.from_dict(data["target"]),
            ModelRef.from_dict(replaced) if replaced else None,
            str(data.get("reason", "")),
            dict(data.get("evidence") or {}),
            str(data.get("by", "")),
        )


@dataclass
class ChampionBook:
    """One catalog's aliases and decision log. Methods change it in memory; the caller stores it whole."""

    catalog: str
    aliases: dict[str, ModelRef] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)

    @property
    def champion(self) -> ModelRef | None:
        return self.aliases.get("champion")

    def candidates(self) -> list[LogEntry]:
        """Rejected challengers, newest first: each with the gate's reason."""
        return [e for e in reversed(self.log) if e.action == "rejected"]

    def _append(
        self,
        action: str,
        target: ModelRef,
        reason: str,
        evidence: dict[str, Any] | None,
        by: str,
        at: float,
        replaced: ModelRef | None = None,
    ) -> LogEntry:
        entry = LogEntry(len(self.log) + 1, at, action, target, replaced, reason, dict(evidence or {}), by)
        self.log.append(entry)
        return entry

    def propose(
        self, target: ModelRef, *, reason: str, evidence: dict[str, Any] | None = None, by: str, at: float
    ) -> LogEntry:
        """A challenger under evaluation."""
        self.aliases["challenger"] = target
        return self._append("proposed", target, reason, evidence, by, at)

    def promote(
        self, target: ModelRef, *, reason: str, evidence: dict[str, Any] | None = None, by: str, at: float
    ) -> LogEntry:
        """`target` answers from now on; the champion it replaces becomes `previous`."""
        current = self.champion
        if current == target:
            raise ChampionError("already_champion", f"{target.label} is already the champion of {self.catalog}")
        if current is not None:
            self.aliases["previous"] = current
        self.aliases["champion"] = target
        if self.aliases.get("challenger") == target:
            del self.aliases["challenger"]
        return self._append("promoted", target, reason, evidence, by, at, replaced=current)

    def reject(
        self, target: ModelRef, *, reason: str, evidence: dict[str, Any] | None = None, by: str, at: float
    ) -> LogEntry:
        """The challenger stays a candidate, the gate's report as the reason; the champion does not change."""
        if self.aliases.get("challenger") == target:
            del self.aliases["challenger"]
        return self._append("rejected", target, reason, evidence, by, at)

    def past_champions(self) -> list[LogEntry]:
        """The entries that made a target champion, newest first."""
        return [e for e in reversed(self.log) if e.action in ("promoted", "rolled_back")]

    def rollback(self, to: str = "", *, reason: str, by: str, at: float) -> LogEntry:
        """Restore an earlier champion: `previous` by default, or the one named by a log entry's number or a target's
        label or id (`lora:lora-3f…`, `lora-3f…`)."""
        current = self.champion
        if current is None:
            raise ChampionError("no_champion", f"{self.catalog} has no champion to roll back")
        target = self._earlier_champion(to, current)
        self.aliases["previous"] = current
        self.aliases["champion"] = target
        return self._append(
            "rolled_back", target, reason or f"rolled back from {current.label}", {}, by, at, replaced=current
        )

    def _earlier_champion(self, to: str, current: ModelRef) -> ModelRef:
        earlier = [e.target for e in self.past_champions() if e.target != current]
        if not to:
            previous = self.aliases.get("previous")
            if previous is None or previous == current:
                raise ChampionError("no_previous_champion", f"{self.catalog} has had no other champion to go back to")
            return previous
        if to.isdigit():
            entry = next((e for e in self.log if e.seq == int(to)), None)
            if entry is None or entry.action not in ("promoted", "rolled_back"):
                raise ChampionError(
                    "not_a_champion",
                    f"log entry {to} of {self.catalog} did not make a champion; these did: {self._choices()}",
                )
            if entry.target == current:
                raise ChampionError("already_champion", f"{entry.target.label} is already the champion")
            return entry.target
        match = next((t for t in earlier if to in (t.label, t.id)), None)
        if match is None:
            raise ChampionError(
                "not_a_champion",
                f"{to!r} was never a champion of {self.catalog}; earlier champions: {self._choices() or 'none'}",
            )
        return match

    def _choices(self) -> str:
        return ", ".join(f"#{e.seq} {e.target.label}" for e in self.past_champions())

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog,
            "aliases": {k: v.to_dict() for k, v in self.aliases.items()},
            "log": [e.to_dict() for e in self.log],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChampionBook:
        return cls(
            str(data["catalog"]),
            {k: ModelRef.from_dict(v) for k, v in (data.get("aliases") or {}).items()},
            [LogEntry.from_dict(e) for e in data.get("log") or ()],
        )
