"""Dataset commands: the guide's `dyag create_rag` and the plainer `dyag dataset build|split|plan|list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, follow_job, run_or_fail

dataset_app = typer.Typer(
    help="Build, split and inspect fine-tuning datasets (the guide's step 2).", no_args_is_help=True
)

FORMAT_CHOICES = ("openai", "alpaca", "sharegpt", "prompt-completion")
SPLITS = ("train", "validation", "test")


def upload_catalog(client: GatewayClient, catalog: str, name: str) -> str:
    """A catalog file is uploaded (a new version only if it changed); a name is used as it is."""
    path = Path(catalog)
    if path.is_file():
        version = run_or_fail(lambda: client.upload_catalog(path, name))
        return version["name"]
    if "/" in catalog or catalog.endswith((".json", ".jsonl", ".csv")):
        fail(f"no such catalog file: {catalog}")
    return catalog


def build(
    client: GatewayClient,
    catalog: str,
    *,
    name: str = "",
    num_questions: int = 0,
    question_types: str = "all",
    variations: int = 0,
    add_negatives: bool = True,
    seed: int = 42,
    split_strategy: str = "paraphrase",
    formats: tuple[str, ...] = ("openai",),
    base_dataset: str = "",
) -> dict:
    """Start a dataset.build job, follow it, and return the dataset."""
    catalog_name = upload_catalog(client, catalog, name)
    body = {
        "catalog": catalog_name,
        "num_questions": num_questions,
        "question_types": [t.strip() for t in question_types.split(",") if t.strip()],
        "variations": variations,
        "add_negatives": add_negatives,
        "seed": seed,
        "split_strategy": split_strategy,
        "formats": list(formats),
        "base_dataset_id": base_dataset,
    }
    job = run_or_fail(lambda: client.post("/datasets", json=body))
    job = follow_job(client, job["id"], "building the dataset")
    if job["status"] != "succeeded":
        fail(f"the dataset build {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")
    return run_or_fail(lambda: client.get(f"/datasets/{job['result']['dataset_id']}"))


def download_files(client: GatewayClient, dataset: dict, output: Path, formats: tuple[str, ...]) -> list[Path]:
    """The whole dataset at `output`, and its splits beside it (train.jsonl, validation.jsonl, test.jsonl…)."""
    folder = output.parent
    wanted = {
        ("all", "openai"): output,
        ("all", "manifest"): output.with_name(output.name + ".manifest.jsonl"),
        ("test", "eval"): folder / "test.eval.jsonl",
    }
    for split in SPLITS:
        wanted[(split, "openai")] = folder / f"{split}.jsonl"
        wanted[(split, "manifest")] = folder / f"{split}.jsonl.manifest.jsonl"
    for fmt in (f for f in formats if f != "openai"):
        suffix = ".json" if fmt == "alpaca" else ".jsonl"
        wanted[("all", fmt)] = output.with_name(f"{output.stem}_{fmt.replace('-', '_')}{suffix}")
        for split in SPLITS:
            wanted[(split, fmt)] = folder / f"{split}_{fmt.replace('-', '_')}{suffix}"
    written = []
    for (split, fmt), dest in wanted.items():
        if any(f["split"] == split and f["format"] == fmt for f in dataset["files"]):
            written.append(
                run_or_fail(
                    lambda split=split, fmt=fmt, dest=dest: client.download(
                        f"/datasets/{dataset['id']}/files/{split}/{fmt}", dest
                    )
                )
            )
    return written


def print_dataset(dataset: dict, written: list[Path], verbose: bool) -> None:
    counts = dataset["split_counts"]
    console.print(
        f"\n[green]✅[/] Dataset {dataset['id']} ({counts.get('all', 0)} exemples, "
        f"catalogue {dataset['catalog']} version {dataset['catalog_version']})"
    )
    console.print(
        f"  Taille : {dataset['plan']['formula']} possibles ; ce catalogue en permet {dataset['plan']['max_examples']}"
    )
    console.print("\n✅ Dataset séparé:")
    for split in SPLITS:
        console.print(f"  {split.capitalize()}: {counts.get(split, 0)} exemples")
    for warning in dataset.get("warnings") or []:
        console.print(f"  [yellow]⚠️  {escape(warning)}[/]")
    if verbose:
        table = Table("type de question", "exemples", "part")
        total = max(counts.get("all", 0), 1)
        for qtype, n in sorted(dataset["type_counts"].items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(qtype, str(n), f"{n / total:.1%}")
        console.print(table)
    console.print("\nFichiers :")
    for path in written:
        console.print(f"  {path}")


def create_rag(
    catalog: Annotated[str, typer.Argument(help="catalog file (or the name of a stored catalog)")],
    output: Annotated[Path, typer.Option(help="where the whole dataset goes; the splits are written beside it")] = Path(
        "training/finetuning_dataset.jsonl"
    ),
    num_questions: Annotated[
        int, typer.Option(help="how many question/answer pairs (0: all the catalog allows)")
    ] = 1000,
    question_types: Annotated[
        str, typer.Option(help="'all' or a comma-separated list: definition,status,domain…")
    ] = "all",
    fmt: Annotated[
        str, typer.Option("--format", help="openai, alpaca, sharegpt or prompt-completion (openai is always written)")
    ] = "openai",
    add_negatives: Annotated[
        bool, typer.Option("--add-negatives/--no-negatives", help="add honest 'je ne sais pas' examples")
    ] = True,
    variations: Annotated[int, typer.Option(help="phrasings per entity and type (0: 3)")] = 0,
    seed: Annotated[int, typer.Option(help="same seed, same dataset")] = 42,
    split: Annotated[
        str, typer.Option(help="paraphrase (test facts are taught in train) or entity (unseen entities)")
    ] = "paraphrase",
    name: Annotated[str, typer.Option(help="catalog name when uploading a file")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show the distribution per question type")] = False,
) -> None:
    """Generate a grounded question/answer dataset from a catalog, split 80/10/10 (the guide's step 2)."""
    if fmt not in FORMAT_CHOICES:
        fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMAT_CHOICES)}")
    formats = tuple(dict.fromkeys(("openai", fmt)))
    client = GatewayClient()
    dataset = build(
        client,
        catalog,
        name=name,
        num_questions=num_questions,
        question_types=question_types,
        variations=variations,
        add_negatives=add_negatives,
        seed=seed,
        split_strategy=split,
        formats=formats,
    )
    print_dataset(dataset, download_files(client, dataset, output, formats), verbose)


dataset_app.command("build")(create_rag)


BUILD_FIELDS = (
    "catalog",
    "catalog_version",
    "num_questions",
    "question_types",
    "variations",
    "add_negatives",
    "seed",
    "split_strategy",
    "split_ratios",
    "formats",
    "system_prompt",
    "base_dataset_id",
    "focus_entity_ids",
    "replay_fraction",
)


@dataset_app.command("split")
def split_dataset(
    dataset_id: str,
    strategy: Annotated[str, typer.Option(help="paraphrase or entity")] = "entity",
    output: Annotated[Path, typer.Option(help="where the whole dataset goes; the splits beside it")] = Path(
        "training/finetuning_dataset.jsonl"
    ),
) -> None:
    """Re-split a built dataset with another strategy (a new build of the same catalog version and parameters)."""
    client = GatewayClient()
    base = run_or_fail(lambda: client.get(f"/datasets/{dataset_id}"))
    job = run_or_fail(lambda: client.get("/jobs", service="dataset-builder", kind="dataset.build", limit=1000))
    params = next((j["params"] for j in job["jobs"] if j.get("result", {}).get("dataset_id") == dataset_id), None)
    if params is None:
        fail(f"the build parameters of {dataset_id} are no longer known; build it again with --split {strategy}")
    params.update(split_strategy=strategy, catalog_version=base["catalog_version"])
    # The job's record also keeps what the service worked out (sizing, max_entities…): POST /datasets takes its own
    # fields only, and refuses others.
    params = {k: v for k, v in params.items() if k in BUILD_FIELDS}
    new = run_or_fail(lambda: client.post("/datasets", json=params))
    finished = follow_job(client, new["id"], f"splitting by {strategy}")
    if finished["status"] != "succeeded":
        fail(f"the split {finished['status']}: {finished.get('error')}")
    dataset = run_or_fail(lambda: client.get(f"/datasets/{finished['result']['dataset_id']}"))
    print_dataset(dataset, download_files(client, dataset, output, tuple(params.get("formats") or ("openai",))), False)


@dataset_app.command("plan")
def plan(
    catalog: Annotated[str, typer.Argument(help="catalog file or name")],
    question_types: str = "all",
    variations: int = 0,
    name: str = "",
) -> None:
    """The guide's size arithmetic: entities x types x variations, and what each type can give."""
    client = GatewayClient()
    catalog_name = upload_catalog(client, catalog, name)
    body = {"catalog": catalog_name, "question_types": question_types.split(","), "variations": variations}
    result = run_or_fail(lambda: client.post("/datasets/plan", json=body))
    console.print(f"{result['formula']} ; ce catalogue en permet {result['max_examples']}")
    for qtype, n in result["per_type"].items():
        console.print(f"  {qtype}: {n}")


@dataset_app.command("list")
def list_datasets(catalog: str = "") -> None:
    """Built datasets, newest first."""
    datasets = run_or_fail(lambda: GatewayClient().get("/datasets", catalog=catalog))["datasets"]
    table = Table("id", "catalog", "version", "train", "validation", "test", "built at")
    for d in datasets:
        c = d["split_counts"]
        table.add_row(
            d["id"],
            d["catalog"],
            d["catalog_version"],
            str(c.get("train", 0)),
            str(c.get("validation", 0)),
            str(c.get("test", 0)),
            d["created_at"],
        )
    console.print(table)
