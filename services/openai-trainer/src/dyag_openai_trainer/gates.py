"""The gates a "train.openai" job passes before anything leaves the platform: the dataset's files found, the
validator's format errors, personal data (blocks unless redacted or explicitly allowed), the cost estimate
against the budget; each overridable. `prepare` returns the job's plan."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import json_format

from dyag.v1 import jobs_pb2, validation_pb2
from dyag_core.errors import DyagError
from dyag_core.hosted import resolve_hyperparameters
from dyag_core.hosted.plan import TrainingPlan, content_hash
from dyag_core.validation.cost import estimate_cost
from dyag_openai_trainer.step import Step
from dyag_runtime.jobs import JobContext


class GateRefused(DyagError):
    """A gate before upload said no; nothing left the platform."""

    def __init__(self, gate: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"gate_{gate}", f"refused before upload ({gate} gate): {message}", details)


class Gates(Step):
    """The dataset and the gates (steps 1 and 2): `prepare` gives the plan the later steps follow."""

    async def prepare(self, ctx: JobContext) -> dict[str, Any]:
        p = ctx.params
        gates = p.get("gates") or {}
        base_model = p["base_model"]
        ctx.progress(0.01, "fetching the dataset")
        source = await self.dataset_files(p)
        ctx.progress(0.03, "gates: validating the dataset")

        train = await self.gate_file(ctx, "train", source, source["train"], base_model, gates)
        validation = None
        if source.get("validation"):
            validation = await self.gate_file(ctx, "validation", source, source["validation"], base_model, gates)

        n_train = int(train["report"].get("examples") or 0)
        given = p.get("hyperparameters") or {}
        hp = resolve_hyperparameters(
            n_train,
            n_epochs=int(given.get("n_epochs") or 0) or None,
            batch_size=int(given.get("batch_size") or 0) or None,
            learning_rate_multiplier=float(given.get("learning_rate_multiplier") or 0) or None,
        )
        self.log(ctx, f"hyperparameters: {hp.values()} ({', '.join(f'{k}: {v}' for k, v in hp.sources)})")
        cost = self.gate_cost(ctx, train["report"], base_model, n_train, hp.n_epochs, gates)

        train_bytes = self.rt.artifacts.get_bytes(train["digest"])
        validation_bytes = self.rt.artifacts.get_bytes(validation["digest"]) if validation else b""
        seed = p.get("seed")
        seed = int(seed) if seed is not None else None
        plan = TrainingPlan(
            provider=self.provider.identity,
            base_model=base_model,
            train_hash=content_hash(train_bytes),
            validation_hash=content_hash(validation_bytes) if validation else "",
            hyperparameters=hp.values(),
            suffix=p.get("suffix", ""),
            seed=seed,
        )
        body = {
            "key": plan.key,
            "provider": plan.provider,
            "base_model": base_model,
            "train_digest": train["digest"],
            "validation_digest": validation["digest"] if validation else "",
            "train_hash": plan.train_hash,
            "validation_hash": plan.validation_hash,
            "hyperparameters": hp.values(),
            "hyperparameter_sources": dict(hp.sources),
            "suffix": plan.suffix,
            "seed": seed,
            "dataset_id": source.get("dataset_id", ""),
            "dataset_name": source.get("name", ""),
            "catalog": source.get("catalog", ""),
            "catalog_version": source.get("catalog_version", ""),
            "n_train": n_train,
            "n_validation": int(validation["report"].get("examples") or 0) if validation else 0,
            "cost": cost,
            "gates": {"train": train["gates"], **({"validation": validation["gates"]} if validation else {})},
        }
        self.log(ctx, f"gates passed; plan {plan.key}")
        ctx.progress(
            0.1, "gates passed", estimated_cost_usd=round(cost.get("cost_usd", 0.0), 4), train_examples=n_train
        )
        return body

    async def dataset_files(self, p: dict[str, Any]) -> dict[str, Any]:
        """The train (and validation) files as artifact refs, with where they come from."""
        if p.get("dataset_id"):
            dataset, files = await self.peers.dataset_files(p["dataset_id"])
            if ("train", "openai") not in files:
                raise DyagError("split_not_found", f"dataset {dataset.id} has no train split in the OpenAI format")
            return {
                "dataset_id": dataset.id,
                "name": dataset.id,
                "catalog": dataset.catalog,
                "catalog_version": dataset.catalog_version,
                "train": {"artifact": files[("train", "openai")], "manifest": files.get(("train", "manifest"))},
                "validation": {
                    "artifact": files[("validation", "openai")],
                    "manifest": files.get(("validation", "manifest")),
                }
                if ("validation", "openai") in files and dataset.split_counts.get("validation", 0) > 0
                else None,
            }
        uploaded = p["uploaded"]

        def ref(digest: str, name: str) -> jobs_pb2.ArtifactRef:
            return jobs_pb2.ArtifactRef(name=name, digest=digest, size=0, media_type="application/jsonl")

        return {
            "name": uploaded.get("name", ""),
            "catalog": uploaded.get("catalog", ""),
            "catalog_version": uploaded.get("catalog_version", ""),
            "train": {"artifact": ref(uploaded["train_digest"], "train.jsonl"), "manifest": None},
            "validation": {"artifact": ref(uploaded["validation_digest"], "validation.jsonl"), "manifest": None}
            if uploaded.get("validation_digest")
            else None,
        }

    async def validate(
        self,
        artifact,
        manifest,
        filename: str,
        source: dict,
        base_model: str,
        allow_pii: bool,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        dataset = validation_pb2.DatasetSource(filename=filename)
        if content is not None:
            dataset.content = content
        else:
            dataset.artifact.CopyFrom(artifact)
            if manifest is not None:
                dataset.manifest_artifact.CopyFrom(manifest)
        request = validation_pb2.ValidateRequest(
            dataset=dataset,
            catalog=source.get("catalog", ""),
            catalog_version=source.get("catalog_version", ""),
            model=base_model,
            bound_for_hosted_api=True,
            allow_pii=allow_pii,
        )
        try:
            result = await self.peers.validator().Validate(request, timeout=600)
        except grpc.aio.AioRpcError as exc:
            raise DyagError("unavailable", f"the validator could not check {filename}: {exc.details()}") from None
        return json_format.MessageToDict(result.report)

    async def gate_file(
        self, ctx: JobContext, split: str, source: dict, files: dict, base_model: str, gates: dict
    ) -> dict[str, Any]:
        """Format and personal-data gates for one file; returns its (possibly redacted) digest and report."""
        artifact, manifest = files["artifact"], files["manifest"]
        filename = f"{split}.jsonl"
        allow_pii, redact_pii = bool(gates.get("allow_pii")), bool(gates.get("redact_pii"))
        report = await self.validate(artifact, manifest, filename, source, base_model, allow_pii and not redact_pii)
        digest = artifact.digest
        outcome: dict[str, Any] = {}

        # Format: the provider would refuse the file (or worse, train on broken lines).
        invalid, examples = int(report.get("invalid_lines") or 0), int(report.get("examples") or 0)
        if examples == 0:
            raise GateRefused(
                "format", f"{filename} has no valid example (the validator found {invalid} invalid line(s))"
            )
        if invalid:
            issues = "; ".join(
                f"line {int(i.get('line', 0))}: {i.get('code', '')}" for i in (report.get("issues") or [])[:5]
            )
            if not gates.get("ignore_format_errors"):
                raise GateRefused(
                    "format",
                    f"{filename} has {invalid} invalid line(s) ({issues}). Fix them (dyag dataset validate, "
                    "dyag dataset clean) or pass ignore_format_errors to upload it as it is",
                )
            self.log(ctx, f"format gate overridden: {filename} has {invalid} invalid line(s) ({issues})", "warning")
            outcome["format"] = f"overridden ({invalid} invalid lines)"
        else:
            outcome["format"] = "passed"

        # Personal data: never sent to a hosted API unless redacted or explicitly allowed.
        pii = report.get("pii") or {}
        counts = {k: int(v) for k, v in (pii.get("counts") or {}).items()}
        if counts and redact_pii:
            content = await self.redact(artifact, source, filename)
            digest = self.rt.artifacts.put_bytes(content, f"{split}.redacted.jsonl", "application/jsonl").digest
            again = await self.validate(None, None, filename, source, base_model, False, content=content)
            left = (again.get("pii") or {}).get("counts") or {}
            if (again.get("pii") or {}).get("blocking"):
                raise GateRefused(
                    "pii",
                    f"{filename} still has personal data after redaction ({_counts(left)}); "
                    "allow it explicitly (allow_pii) or fix the data",
                )
            report = again
            self.log(ctx, f"personal data redacted in {filename} ({_counts(counts)})")
            outcome["pii"] = f"redacted ({_counts(counts)})"
        elif pii.get("blocking"):
            lines = [int(n) for n in (pii.get("lines") or [])[:10]]
            raise GateRefused(
                "pii",
                f"{filename} has personal data ({_counts(counts)}) on lines {lines}"
                f"{'…' if len(pii.get('lines') or []) > 10 else ''}: "
                "it must not reach a hosted API as it is. Redact it (redact_pii) or allow it explicitly (allow_pii)",
                {"counts": counts},
            )
        elif counts:
            self.log(ctx, f"personal data in {filename} explicitly allowed ({_counts(counts)})", "warning")
            outcome["pii"] = f"allowed ({_counts(counts)})"
        else:
            outcome["pii"] = "none found"

        body = json.dumps(
            {"split": split, "gates": outcome, "report": report}, ensure_ascii=False, default=str
        ).encode()
        scrubbed = self.scrubber.text(body.decode()).encode()
        ctx.add_artifact(self.rt.artifacts.put_bytes(scrubbed, f"validation-{split}.json", "application/json"))
        return {"digest": digest, "report": report, "gates": outcome}

    async def redact(self, artifact, source: dict, filename: str) -> bytes:
        request = validation_pb2.CleanRequest(
            dataset=validation_pb2.DatasetSource(artifact=artifact, filename=filename),
            redact_pii=True,
            catalog=source.get("catalog", ""),
        )
        try:
            return (await self.peers.validator().Clean(request, timeout=600)).content
        except grpc.aio.AioRpcError as exc:
            raise DyagError("unavailable", f"the validator could not redact {filename}: {exc.details()}") from None

    def gate_cost(
        self, ctx: JobContext, report: dict, base_model: str, n_train: int, epochs: int, gates: dict
    ) -> dict[str, Any]:
        """The cost estimate, shown; above the budget (or unknown), the job is refused unless ignore_budget."""
        budget = self.settings.openai_budget_usd
        if float(gates.get("budget_usd") or 0) > 0:
            budget = min(budget, float(gates["budget_usd"]))
        ignore = bool(gates.get("ignore_budget"))
        billed = int((report.get("tokens") or {}).get("billed_tokens") or 0)
        if not billed:
            reason = "the validator could not count the dataset's tokens"
        else:
            try:
                estimate = estimate_cost(
                    billed, base_model, n_examples=n_train, epochs=epochs, prices=self.settings.openai_prices
                )
            except DyagError:
                estimate, reason = (
                    None,
                    (f"no training price is known for {base_model} (add it to DYAG_OPENAI_PRICES, USD per 1M tokens)"),
                )
            else:
                cost = estimate.to_dict() | {"budget_usd": budget}
                line = (
                    f"estimated cost: {billed} tokens x {epochs} epochs x {estimate.price_per_million:.2f} $/M = "
                    f"{_usd(estimate.cost_usd)} $ (budget {_usd(budget)} $)"
                )
                self.log(ctx, line)
                if estimate.cost_usd > budget:
                    if not ignore:
                        raise GateRefused(
                            "budget",
                            f"the {line}. Raise DYAG_OPENAI_BUDGET_USD, train on fewer examples or epochs, "
                            "or pass ignore_budget to accept this cost",
                            {"cost_usd": estimate.cost_usd, "budget_usd": budget},
                        )
                    self.log(ctx, f"budget gate overridden: {_usd(estimate.cost_usd)} $ > {_usd(budget)} $", "warning")
                    cost["budget_overridden"] = True
                return cost
        if not ignore:
            raise GateRefused(
                "budget", f"the cost cannot be estimated: {reason}. Pass ignore_budget to train without an estimate"
            )
        self.log(ctx, f"budget gate overridden: {reason}", "warning")
        return {
            "model": base_model,
            "cost_usd": 0.0,
            "budget_usd": budget,
            "budget_overridden": True,
            "unknown": reason,
        }


def _usd(amount: float) -> str:
    return f"{amount:.2f}" if amount >= 0.01 or amount == 0 else f"{amount:.6f}".rstrip("0")


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{int(n)} {kind}" for kind, n in counts.items()) or "none"
