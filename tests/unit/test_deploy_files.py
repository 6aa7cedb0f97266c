"""Offline checks of the container and deployment files: the Dockerfiles, docker-compose.yml and deploy/k8s.

They hold the files to each other, to the packages' pyproject.toml and to the service registry
(dyag_runtime.settings.SERVICES), so that a service added, renamed or moved fails here rather than at
`docker compose up` or `kubectl apply`. No Docker engine or cluster is needed; the tests that run
`docker compose config` or `kubectl kustomize` skip where those tools are missing.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from concurrent import futures
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from dyag_gateway.settings import GatewaySettings
from dyag_runtime import healthcheck
from dyag_runtime.settings import SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_GPU_FILE = ROOT / "docker-compose.gpu.yml"  # the override that puts gpu-lora-trainer on an NVIDIA GPU
COMPOSE_POSTGRES_FILE = ROOT / "docker-compose.postgres.yml"  # the override that keeps the registries in PostgreSQL
COMPOSE_CLUSTER_FILE = ROOT / "docker-compose.cluster.yml"  # the override with 3 NATS servers, MinIO and replicas
K8S = ROOT / "deploy" / "k8s"
GPU_COMPONENT = K8S / "gpu"
K8S_HA = ROOT / "deploy" / "k8s-ha"  # the overlay with high availability (NATS cluster, replicas, PDBs, HPAs)
GATEWAY = "gateway"
GATEWAY_PORT = GatewaySettings.model_fields["port"].default
NATS_PORT = 4222
PORTS = {**{name: port for name, (_, port) in SERVICES.items()}, GATEWAY: GATEWAY_PORT}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
GPU_TRAINER = "gpu-lora-trainer"
# The registry's services that have landed (a Dockerfile and a pyproject): each must be deployed everywhere.
DEPLOYABLE = sorted(
    name
    for name in SERVICES
    if (ROOT / "services" / name / "Dockerfile").is_file() and (ROOT / "services" / name / "pyproject.toml").is_file()
)
# Services whose /data must survive a restart (SQLite registries, job state, outputs): a PVC on Kubernetes.
# The others keep nothing there that cannot be rebuilt (emptyDir), so they may run several replicas.
PERSISTENT_DATA = {"dataset-builder", "openai-trainer", "gpu-lora-trainer", "model-exporter", "evaluator"}
# Services that open a database (settings.database(…) in their entry point): they get DYAG_DATABASE_URL everywhere.
WITH_DATABASE = sorted(
    main.parents[2].name
    for main in ROOT.glob("services/*/src/*/__main__.py")
    if "settings.database(" in main.read_text()
)
# Environment variables that carry secrets: never a literal in a deployment file.
SECRET_NAME = re.compile(r"(^|_)(API_KEYS?|TOKEN|SECRET|SECRET_ACCESS_KEY|PASSWORD)$")


# --- helpers ------------------------------------------------------------------------------------------------


class Reset:
    """A value tagged !reset in a Compose override: it removes what the files before it set."""

    def __repr__(self) -> str:
        return "!reset"


class ComposeLoader(yaml.SafeLoader):
    """YAML, with the merge tags of Compose's override files: !reset (a Reset) and !override (the value itself)."""


def _compose_tag(loader: ComposeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    assert suffix in ("reset", "override"), f"unknown YAML tag !{suffix}"
    return Reset() if suffix == "reset" else value


ComposeLoader.add_multi_constructor("!", _compose_tag)


def load_yaml(text: str):
    return yaml.load(text, Loader=ComposeLoader)


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=ComposeLoader) if doc is not None]


def compose_files() -> list[Path]:
    return sorted(ROOT.glob("docker-compose*.yml"))


def yaml_files() -> list[Path]:
    return sorted([*compose_files(), *(ROOT / "deploy").rglob("*.yaml"), *(ROOT / "deploy").rglob("*.yml")])


class Dockerfile:
    """The instructions of a Dockerfile, continuation lines joined, per stage."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: list[list[tuple[str, str]]] = []
        logical = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.endswith("\\"):
                logical += line[:-1] + " "
                continue
            logical += line
            keyword, _, rest = logical.partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                self.stages.append([])
            if self.stages:
                self.stages[-1].append((keyword, rest.strip()))
            logical = ""

    @property
    def final(self) -> list[tuple[str, str]]:
        return self.stages[-1]

    def all(self, keyword: str) -> list[str]:
        return [rest for stage in self.stages for kw, rest in stage if kw == keyword]

    def final_one(self, keyword: str) -> str:
        found = [rest for kw, rest in self.final if kw == keyword]
        assert len(found) == 1, f"{self.path}: the final stage needs exactly one {keyword}, has {len(found)}"
        return found[0]

    def copy_sources(self) -> list[str]:
        """Sources of COPY/ADD from the build context (not --from another stage)."""
        sources = []
        for rest in self.all("COPY") + self.all("ADD"):
            args = shlex.split(rest)
            if any(a.startswith("--from") for a in args):
                continue
            args = [a for a in args if not a.startswith("--")]
            sources += json.loads(rest)[:-1] if rest.startswith("[") else args[:-1]
        return sources

    def cmd_module(self) -> str:
        cmd = json.loads(self.final_one("CMD"))  # exec form: signals reach python as PID 1
        assert cmd[:2] == ["python", "-m"], f"{self.path}: CMD should be python -m <module>, is {cmd}"
        return cmd[2]

    def healthcheck_cmd(self) -> list[str]:
        rest = self.final_one("HEALTHCHECK")
        return json.loads(rest[rest.index("CMD") + 3 :].strip())

    def env(self) -> dict[str, str]:
        values = {}
        for rest in [r for kw, r in self.final if kw == "ENV"]:
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                values[key] = value
        return values

    def exposed(self) -> list[int]:
        return [int(p.split("/")[0]) for rest in [r for kw, r in self.final if kw == "EXPOSE"] for p in rest.split()]


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves out path (or a folder above it); enough of Docker's rules for these files."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern):
                return True
            if pattern.startswith("**/"):
                tail = prefix.split("/")
                if any(fnmatch.fnmatchcase("/".join(tail[i:]), pattern[3:]) for i in range(len(tail))):
                    return True
    return False


def local_projects() -> dict[str, Path]:
    """Project name -> folder, for every package of the repo."""
    projects = {}
    for pyproject in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]:
        projects[tomllib.loads(pyproject.read_text())["project"]["name"]] = pyproject.parent
    return projects


def local_closure(project_dir: Path, projects: dict[str, Path]) -> set[Path]:
    """project_dir and every repo package it depends on, transitively."""
    seen: set[Path] = set()
    todo = [project_dir]
    while todo:
        folder = todo.pop()
        if folder in seen:
            continue
        seen.add(folder)
        for requirement in tomllib.loads((folder / "pyproject.toml").read_text())["project"].get("dependencies", []):
            name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
            if name in projects:
                todo.append(projects[name])
    return seen


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def built_services() -> dict[str, tuple[dict, Dockerfile]]:
    services = {}
    for name, svc in compose()["services"].items():
        if "build" in svc:
            build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
            path = (COMPOSE_FILE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
            assert path.is_file(), f"compose service {name}: no Dockerfile at {path}"
            services[name] = (svc, Dockerfile(path))
    return services


def depends_on(svc: dict) -> dict[str, str]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (spec or {}).get("condition", "service_started") for d, spec in deps.items()}


def mounts(svc: dict) -> dict[str, str]:
    """Container path -> volume name (or host path) of a compose service."""
    result = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        result[target] = source
    return result


def service_calls(name: str) -> set[str]:
    """The registry services a service's code names as the first argument of a call (address_of("..."), or a
    channel("...") / _call("...", ...) helper over it): the ones it calls."""
    calls = set()
    for py in (ROOT / "services" / name / "src").rglob("*.py"):
        calls |= set(re.findall(r"\w\(\s*[\"']([a-z0-9-]+)[\"']", py.read_text()))
    return calls & set(SERVICES) - {name}


def address_map(raw: str) -> dict[str, tuple[str, int]]:
    addrs = json.loads(raw)
    return {name: (addr.rsplit(":", 1)[0], int(addr.rsplit(":", 1)[1])) for name, addr in addrs.items()}


def check_gateway_services(services_value: str, addrs_value: str, hosts: dict[str, int], where: str) -> None:
    """DYAG_SERVICES and DYAG_SERVICE_ADDRS agree with each other, the registry and the hosts that exist."""
    names = [s.strip() for s in services_value.split(",") if s.strip()]
    unknown = set(names) - set(SERVICES)
    assert not unknown, f"{where}: DYAG_SERVICES names {unknown}, not in dyag_runtime.settings.SERVICES"
    addrs = address_map(addrs_value)
    assert set(addrs) == set(names), f"{where}: DYAG_SERVICE_ADDRS {sorted(addrs)} != DYAG_SERVICES {names}"
    for name, (host, port) in addrs.items():
        assert port == SERVICES[name][1], f"{where}: {name} at port {port}, the registry says {SERVICES[name][1]}"
        assert host in hosts, f"{where}: {name} at host {host!r}, which is not defined here"
        assert hosts[host] in (None, port), f"{where}: {host} serves port {hosts[host]}, not {port}"


# --- YAML and Dockerfiles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path):
    assert load_all(path), f"{path} is empty"


def test_every_service_folder_with_a_main_has_a_dockerfile():
    for main in ROOT.glob("services/*/src/*/__main__.py"):
        folder = main.parents[2]
        assert (folder / "Dockerfile").is_file(), f"{folder.name} has no Dockerfile"


@pytest.mark.parametrize("path", sorted(ROOT.glob("services/*/Dockerfile")), ids=lambda p: p.parent.name)
def test_dockerfile_copies_what_the_service_needs_and_only_that(path):
    dockerfile = Dockerfile(path)
    patterns = dockerignore_patterns()
    sources = dockerfile.copy_sources()
    for source in sources:
        assert (ROOT / source).exists(), f"{path}: COPY {source}, which does not exist (context: the repo root)"
        assert not dockerignored(source, patterns), f"{path}: COPY {source}, which .dockerignore leaves out"
        for py in (ROOT / source).rglob("src/**/*.py"):
            rel = py.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel and ".egg-info" not in rel:
                assert not dockerignored(rel, patterns), f".dockerignore leaves out {rel}, which {path} needs"
    needed = {p.relative_to(ROOT).as_posix() for p in local_closure(path.parent, local_projects())}
    assert {s.rstrip("/") for s in sources} == needed, (
        f"{path}: COPY {sorted(sources)}, the service needs {sorted(needed)}"
    )
    wheel_step = next(r for r in dockerfile.all("RUN") if "pip wheel" in r)
    for folder in needed:
        assert f"./{folder}" in wheel_step, f"{path}: pip wheel does not build {folder}"


@pytest.mark.parametrize("path", sorted(ROOT.glob("services/*/Dockerfile")), ids=lambda p: p.parent.name)
def test_dockerfile_runtime_stage(path):
    dockerfile = Dockerfile(path)
    assert len(dockerfile.stages) >= 2, f"{path}: a builder stage and a runtime stage"
    assert all(rest.startswith("python:3.11-slim") or "${PYTHON_IMAGE}" in rest for rest in dockerfile.all("FROM"))
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in path.read_text()
    final = dockerfile.final
    assert not [r for kw, r in final if kw in ("COPY", "ADD")], f"{path}: the runtime stage copies no source"
    assert any("pip install" in r and "--no-index" in r for kw, r in final if kw == "RUN"), (
        f"{path}: installs the wheels only"
    )
    # A builder stage may compile (model-exporter's llama-cpp-python); the image that runs has no build tools.
    runtime = "\n".join(rest for _, rest in final)
    assert not re.search(r"apt-get install|build-essential|gcc", runtime), (
        f"{path}: no build tools in the runtime stage"
    )
    user = dockerfile.final_one("USER")
    assert user.split(":")[0] not in ("root", "0"), f"{path}: runs as root"
    assert importlib.util.find_spec(dockerfile.cmd_module()), (
        f"{path}: CMD module {dockerfile.cmd_module()} is not importable"
    )
    check = dockerfile.healthcheck_cmd()
    assert check[0] == "python"
    if check[1] == "-m":
        assert importlib.util.find_spec(check[2]), f"{path}: HEALTHCHECK module {check[2]} is not importable"


# --- docker-compose.yml ----------------------------------------------------------------------------------------


def test_compose_built_services_match_the_registry():
    built = built_services()
    assert {"dataset-builder", GATEWAY} <= set(built)
    for name, (svc, dockerfile) in built.items():
        module = dockerfile.cmd_module()
        assert importlib.util.find_spec(module), f"{name}: CMD module {module} is not importable in this venv"
        assert dockerfile.exposed() == [PORTS[name]], (
            f"{name}: EXPOSE {dockerfile.exposed()}, the registry says {PORTS[name]}"
        )
        assert svc.get("restart") == "unless-stopped", f"{name}: restart: unless-stopped"
        assert "healthcheck" in svc, f"{name}: no healthcheck"
        if name == GATEWAY:
            assert module == "dyag_gateway"
            assert dockerfile.env().get("DYAG_HOST") == "0.0.0.0"
            continue
        assert name in SERVICES, f"compose service {name} is not in dyag_runtime.settings.SERVICES"
        assert module == SERVICES[name][0], f"{name}: CMD runs {module}, the registry says {SERVICES[name][0]}"
        assert dockerfile.env().get("DYAG_GRPC_HOST") == "0.0.0.0", f"{name}: the image must listen on 0.0.0.0"
        assert dockerfile.env().get("DYAG_SERVICE_NAME") == name
        env = svc["environment"]
        assert env.get("DYAG_SERVICE_NAME") == name
        assert env.get("DYAG_DATA_DIR") == "/data" and env.get("DYAG_ARTIFACT_STORE") == "/artifacts"
        assert env.get("NATS_URL") == f"nats://nats:{NATS_PORT}"
        volumes = mounts(svc)
        assert volumes.get("/artifacts") == "artifacts", f"{name}: mount the shared artifacts volume at /artifacts"
        assert volumes.get("/data") == f"{name}-data", f"{name}: mount its own {name}-data volume at /data"
        assert depends_on(svc).get("nats") == "service_healthy"


def test_compose_depends_on_and_volumes_exist():
    spec = compose()
    services = spec["services"]
    declared = set(spec.get("volumes") or {})
    built = built_services()
    for name, svc in services.items():
        for target, condition in depends_on(svc).items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            if condition == "service_healthy":
                has_check = "healthcheck" in services[target] or (
                    target in built and built[target][1].all("HEALTHCHECK")
                )
                assert has_check, f"{name} waits for {target} to be healthy, which has no healthcheck"
        for source in mounts(svc).values():
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts volume {source}, not declared under volumes:"


def test_compose_gateway():
    services = compose()["services"]
    gateway = services[GATEWAY]
    env = gateway["environment"]
    assert env["DYAG_API_KEYS"] == "${DYAG_API_KEYS:?set DYAG_API_KEYS}"
    assert any(str(p).endswith(f":{GATEWAY_PORT}") for p in gateway["ports"]), "publish the gateway's port"
    hosts = {name: PORTS.get(name) for name in services}
    check_gateway_services(env["DYAG_SERVICES"], env["DYAG_SERVICE_ADDRS"], hosts, "docker-compose.yml gateway")
    for name in address_map(env["DYAG_SERVICE_ADDRS"]):
        assert depends_on(gateway).get(name) == "service_healthy", f"the gateway should wait for {name}"
    assert depends_on(gateway).get("nats") == "service_healthy"


def test_compose_infrastructure():
    services = compose()["services"]
    nats = services["nats"]
    assert nats["image"].startswith("nats:2.10")
    assert " ".join(nats["command"]).startswith("-js -sd /data")
    assert mounts(nats).get("/data") == "nats-data"
    chroma = services["chroma"]
    assert chroma["image"].startswith("chromadb/chroma")
    assert chroma["environment"]["ANONYMIZED_TELEMETRY"] == "False"
    assert mounts(chroma).get("/data") == "chroma-data"
    assert "/api/v2/heartbeat" in " ".join(chroma["healthcheck"]["test"]), "chroma's healthcheck asks its heartbeat"


def test_compose_runs_the_whole_workflow_by_default():
    """A plain `docker compose up` starts every landed service: none of them, nor what they need, hides behind a
    profile."""
    services = compose()["services"]
    for name in [*DEPLOYABLE, GATEWAY, "nats"]:
        assert name in services, f"docker-compose.yml has no {name}"
        assert not services[name].get("profiles"), f"{name} is under a profile: a default `docker compose up` misses it"
        for target in depends_on(services[name]):
            assert not services[target].get("profiles"), f"{name} depends on {target}, which is under a profile"


def test_compose_rag_service_reaches_chroma():
    services = compose()["services"]
    if "rag-service" not in services:
        pytest.skip("no rag-service")
    rag = services["rag-service"]
    url = rag["environment"].get("CHROMA_URL")
    if not url:  # embedded Chroma: the store is in its own /data volume
        assert mounts(rag).get("/data") == "rag-service-data"
        return
    host, port = re.match(r"https?://([^:/]+):(\d+)", url).groups()
    assert host in services and int(port) == 8000, f"rag-service: CHROMA_URL {url} is not the chroma service"
    assert depends_on(rag).get(host) == "service_healthy", "rag-service opens its Chroma client at start: wait for it"


def test_compose_gpu_lora_trainer():
    services = compose()["services"]
    if GPU_TRAINER not in services:
        pytest.skip("no gpu-lora-trainer")
    trainer = services[GPU_TRAINER]
    declared = set(compose().get("volumes") or {})
    assert trainer.get("shm_size"), "torch needs more than Docker's 64 MB of /dev/shm"
    cache = trainer["environment"].get("DYAG_MODEL_CACHE", "/models")
    assert mounts(trainer).get(cache) in declared, f"{GPU_TRAINER}: mount a volume at its model cache {cache}"
    assert "deploy" not in trainer, (
        "the default trainer runs on CPU, on any host: the GPU goes in docker-compose.gpu.yml"
    )
    gpu = yaml.safe_load(COMPOSE_GPU_FILE.read_text())["services"][GPU_TRAINER]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["build"]["args"]["TRAINER_EXTRAS"] == "[gpu]"
    assert gpu["image"] != trainer["image"], "the CUDA image must not overwrite the CPU one"


def test_compose_services_wait_for_what_they_call():
    """Each service starts after the services its code calls (healthy, or only started for a peer it calls
    lazily and can do without); the gateway after every service."""
    services = compose()["services"]
    for name in DEPLOYABLE:
        for target in service_calls(name):
            if target in DEPLOYABLE:
                assert target in depends_on(services[name]), f"{name} calls {target}: depends_on it"


def test_compose_service_addrs_agree():
    spec = compose()
    addrs = json.loads(spec["x-service-addrs"])
    assert {name: port for name, (_, port) in address_map(spec["x-service-addrs"]).items()} == {
        n: PORTS[n] for n in DEPLOYABLE
    }
    for name in [*DEPLOYABLE, GATEWAY]:
        env = spec["services"][name]["environment"]
        assert json.loads(env["DYAG_SERVICE_ADDRS"]) == addrs, f"{name}: DYAG_SERVICE_ADDRS is not x-service-addrs"
    gateway_services = spec["services"][GATEWAY]["environment"]["DYAG_SERVICES"].split(",")
    assert sorted(gateway_services) == DEPLOYABLE, (
        f"the gateway's DYAG_SERVICES {gateway_services} != the landed services"
    )


def test_compose_gives_every_service_with_a_database_its_url():
    """docker-compose.yml passes DYAG_DATABASE_URL through (empty: SQLite in /data); docker-compose.postgres.yml sets
    it to its PostgreSQL for each service that keeps metadata, which then waits for the database."""
    assert WITH_DATABASE == sorted(PERSISTENT_DATA)
    spec = compose()
    for name in WITH_DATABASE:
        assert spec["services"][name]["environment"]["DYAG_DATABASE_URL"] == "${DYAG_DATABASE_URL:-}"
    override = yaml.safe_load(COMPOSE_POSTGRES_FILE.read_text())["services"]
    assert sorted(set(override) - {"postgres"}) == WITH_DATABASE
    for name in WITH_DATABASE:
        assert override[name]["environment"]["DYAG_DATABASE_URL"].endswith("@postgres:5432/dyag"), name
        assert override[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert "pg_isready" in override["postgres"]["healthcheck"]["test"]


def test_compose_secrets_are_never_inline():
    """A secret's variable is passed through (a name with no value) or interpolated from the shell / .env."""
    for path in compose_files():
        for name, svc in (load_yaml(path.read_text()).get("services") or {}).items():
            if isinstance(svc, Reset):
                continue
            env = svc.get("environment") or {}
            items = (
                env.items()
                if isinstance(env, dict)
                else [(e.partition("=")[0], e.partition("=")[2] or None) for e in env]
            )
            for key, value in items:
                if SECRET_NAME.search(key):
                    ok = value is None or re.fullmatch(r"\$\{[A-Z0-9_]+(:?\?[^}]*|:-)?\}", str(value))
                    assert ok, (
                        f"{path.name} {name}: {key} must come from the environment, not be written here ({value!r})"
                    )


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin), else a standalone docker-compose v2+ on PATH or beside this Python."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    for exe in (shutil.which("docker-compose"), str(Path(sys.executable).parent / "docker-compose")):
        if exe and Path(exe).is_file():
            candidates.append([exe])
    for cmd in candidates:
        try:
            out = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = re.search(r"version v?(\d+)\.", out.stdout)
        if out.returncode == 0 and major and int(major.group(1)) >= 2:
            return cmd
    return None


def compose_base(tmp_path: Path, files: list[Path]) -> tuple[list[str], dict[str, str]]:
    """`docker compose` over `files` with an empty env file, and an environment without DYAG_* settings; the test is
    skipped where there is no Compose v2."""
    cmd = compose_command()
    if cmd is None:
        pytest.skip("no Docker Compose v2 (docker compose plugin or docker-compose) here")
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYAG_")}
    return [*cmd, "--env-file", str(empty_env), *[arg for f in files for arg in ("-f", str(f))]], env


def test_docker_compose_config(tmp_path):
    base, env = compose_base(tmp_path, [COMPOSE_FILE])

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, cwd=ROOT, env={**env, **extra}, timeout=60
        )

    result = run("config", "-q", DYAG_API_KEYS="x")
    assert result.returncode == 0, result.stderr
    missing = run("config", "-q")
    assert missing.returncode != 0 and "set DYAG_API_KEYS" in missing.stderr, missing.stderr

    # The GPU override merges onto the same service: one GPU reserved, the CUDA image, the rest unchanged.
    merged = run("-f", str(COMPOSE_GPU_FILE), "config", "--format", "json", DYAG_API_KEYS="x")
    assert merged.returncode == 0, merged.stderr
    trainer = json.loads(merged.stdout)["services"][GPU_TRAINER]
    assert trainer["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert trainer["build"]["args"]["TRAINER_EXTRAS"] == "[gpu]"
    assert {v["target"] for v in trainer["volumes"]} >= {"/data", "/models", "/artifacts"}

    # The PostgreSQL override: refused without its password; with it, every service with a database reaches it.
    postgres = ("-f", str(COMPOSE_POSTGRES_FILE), "config", "--format", "json")
    refused = run(*postgres, DYAG_API_KEYS="x")
    assert refused.returncode != 0 and "set DYAG_POSTGRES_PASSWORD" in refused.stderr, refused.stderr
    merged = run(*postgres, DYAG_API_KEYS="x", DYAG_POSTGRES_PASSWORD="pw")
    assert merged.returncode == 0, merged.stderr
    services = json.loads(merged.stdout)["services"]
    for name in WITH_DATABASE:
        assert services[name]["environment"]["DYAG_DATABASE_URL"] == "postgresql://dyag:pw@postgres:5432/dyag"
        assert {"nats", "postgres"} <= set(services[name]["depends_on"]), name  # merged with the base's
    assert services["validator"]["environment"].get("DYAG_DATABASE_URL") == ""  # no metadata: nothing to switch

    # The provider's key reaches openai-trainer from the environment when set there, and only then.
    plain = json.loads(run("config", "--format", "json", DYAG_API_KEYS="x").stdout)["services"]
    keyed = json.loads(run("config", "--format", "json", DYAG_API_KEYS="x", OPENAI_API_KEY="sk-test").stdout)[
        "services"
    ]
    assert plain["openai-trainer"]["environment"].get("OPENAI_API_KEY") is None
    assert keyed["openai-trainer"]["environment"].get("OPENAI_API_KEY") == "sk-test"


# --- deploy/k8s ----------------------------------------------------------------------------------------------


def kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def kustomize_docs(folder: Path, components: list[Path] = ()) -> tuple[list[dict], set[Path], set[str]]:
    """The manifests a kustomization (and the components named) pulls in, the files it names, its ConfigMaps."""
    docs: list[dict] = []
    files: set[Path] = set()
    config_maps: set[str] = set()
    spec = kustomization(folder)
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        assert path.exists(), f"{folder}/kustomization.yaml lists {entry}, which does not exist"
        if path.is_dir():
            sub_docs, sub_files, sub_maps = kustomize_docs(path)
            docs += sub_docs
            files |= sub_files
            config_maps |= sub_maps
        else:
            docs += load_all(path)
            files.add(path)
    for patch in spec.get("patches", []):
        if "path" in patch:
            path = (folder / patch["path"]).resolve()
            assert path.is_file(), f"{folder}/kustomization.yaml patches with {patch['path']}, which does not exist"
            files.add(path)
    for entry in spec.get("components", []):
        path = (folder / entry).resolve()
        assert (path / "kustomization.yaml").is_file(), f"{folder}: component {entry} does not exist"
    config_maps |= {g["name"] for g in spec.get("configMapGenerator", [])}
    for component in components:
        sub_docs, sub_files, sub_maps = kustomize_docs(component)
        assert kustomization(component)["kind"] == "Component"
        docs += sub_docs
        files |= sub_files
        config_maps |= sub_maps
    return docs, files, config_maps


def example_secrets() -> dict[str, dict]:
    """Secret name -> its keys, as secret.example.yaml describes them."""
    return {
        d["metadata"]["name"]: d["stringData"] for d in load_all(K8S / "secret.example.yaml") if d["kind"] == "Secret"
    }


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container_ports(workload: dict) -> dict[str | int, int]:
    """Port name and number -> number, over the workload's containers."""
    ports = {}
    for container in pod_spec(workload)["containers"]:
        for port in container.get("ports", []):
            ports[port["containerPort"]] = port["containerPort"]
            if "name" in port:
                ports[port["name"]] = port["containerPort"]
    return ports


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


BASE = [K8S]
WITH_GPU = [K8S, GPU_COMPONENT]


def docs_for(roots: list[Path]) -> tuple[list[dict], set[Path], set[str]]:
    return kustomize_docs(roots[0], roots[1:])


def test_every_k8s_manifest_is_used():
    _, files, _ = docs_for(WITH_GPU)
    for path in K8S.rglob("*.yaml"):
        if path.name == "kustomization.yaml" or path.name.endswith(".example.yaml"):
            continue
        assert path.resolve() in files, f"{path.relative_to(ROOT)} is not listed in any kustomization.yaml"


@pytest.mark.parametrize("roots", [BASE, WITH_GPU], ids=["base", "with-gpu"])
def test_k8s_services_select_workloads_and_ports(roots):
    docs, _, _ = docs_for(roots)
    loads = workloads(docs)
    for workload in loads:
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{workload['metadata']['name']}: selector does not match its pods"
    for service in [d for d in docs if d["kind"] == "Service"]:
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        matched = [w for w in loads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert matched, f"Service {name}: selector {selector} matches no Deployment/StatefulSet's pods"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert any(target in container_ports(w) for w in matched), (
                f"Service {name}: targetPort {target} is no container port"
            )
            if name in PORTS:
                assert port["port"] == PORTS[name], (
                    f"Service {name}: port {port['port']}, the registry says {PORTS[name]}"
                )


@pytest.mark.parametrize("roots", [BASE, WITH_GPU], ids=["base", "with-gpu"])
def test_k8s_containers(roots):
    docs, _, config_maps = docs_for(roots)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    secrets = example_secrets()
    images = {i["name"] for i in kustomization(K8S).get("images", [])}
    for root in roots[1:]:
        images |= {i["name"] for i in kustomization(root).get("images", [])}
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        claim_templates = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, f"{name}: claim {volume} is not defined"
        volume_names = {v["name"] for v in spec.get("volumes", [])} | claim_templates
        for container in spec["containers"]:
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), f"{name}: set resources requests and limits"
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volume_names, f"{name}: mounts {mount['name']}, which is no volume"
            image = container["image"].split(":")[0]
            if image.startswith("dyag/"):
                assert image in images, f"{name}: image {image} has no entry under images: in a kustomization"
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, f"{name}: no ConfigMap {source}"
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], {}), (
                        f"{name}: {var['name']} reads a Secret that secret.example.yaml does not describe"
                    )
        if name in SERVICES:
            container = spec["containers"][0]
            ports = [p["containerPort"] for p in container["ports"]]
            assert ports == [SERVICES[name][1]], f"{name}: containerPort {ports}, the registry says {SERVICES[name][1]}"
            assert env_of(container)["DYAG_SERVICE_NAME"]["value"] == name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == SERVICES[name][1], (
                    f"{name}: {probe} must be a grpc probe on its port"
                )
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/data", "/artifacts"} <= mounted, f"{name}: mount /data and /artifacts"
        elif name == GATEWAY:
            assert [p["containerPort"] for p in spec["containers"][0]["ports"]] == [GATEWAY_PORT]
        elif name == "nats":
            assert NATS_PORT in container_ports(workload).values()
            assert workload["kind"] == "StatefulSet" and claim_templates, "nats keeps JetStream on a PVC"


@pytest.mark.parametrize("roots", [BASE, WITH_GPU], ids=["base", "with-gpu"])
def test_k8s_gateway_reaches_the_services(roots):
    docs, files, _ = docs_for(roots)
    hosts = {}
    for service in [d for d in docs if d["kind"] == "Service"]:
        ports = [p["port"] for p in service["spec"]["ports"]]
        hosts[service["metadata"]["name"]] = ports[0] if len(ports) == 1 else None
    gateway = next(w for w in workloads(docs) if w["metadata"]["name"] == GATEWAY)
    env = env_of(pod_spec(gateway)["containers"][0])
    # patches (the GPU component's) override the base's values
    for path in sorted(files):
        for doc in load_all(path):
            if (
                doc["kind"] == "Deployment"
                and doc["metadata"]["name"] == GATEWAY
                and "selector" not in doc.get("spec", {})
            ):
                env.update(env_of(doc["spec"]["template"]["spec"]["containers"][0]))
    assert env["DYAG_API_KEYS"]["valueFrom"]["secretKeyRef"], "the API keys come from a Secret"
    check_gateway_services(
        env["DYAG_SERVICES"]["value"], env["DYAG_SERVICE_ADDRS"]["value"], hosts, f"k8s gateway {roots}"
    )


def gpu_patch() -> dict:
    for patch in kustomization(GPU_COMPONENT).get("patches", []):
        for doc in load_all(GPU_COMPONENT / patch["path"]):
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == GPU_TRAINER:
                return doc
    raise AssertionError("the gpu component does not patch the gpu-lora-trainer Deployment")


def test_k8s_gpu_component():
    """The base runs gpu-lora-trainer on CPU (any cluster); the component moves that Deployment onto a GPU node."""
    component = kustomization(GPU_COMPONENT)
    assert component["kind"] == "Component"
    assert not component.get("resources"), "the component patches the base's trainer; it adds no second one"
    base_docs, _, _ = docs_for(BASE)
    assert any(w["metadata"]["name"] == GPU_TRAINER for w in workloads(base_docs)), "the base deploys gpu-lora-trainer"
    assert "nvidia.com/gpu" not in json.dumps(base_docs), "the base must schedule on a cluster without GPUs"
    spec = gpu_patch()["spec"]["template"]["spec"]
    assert spec["nodeSelector"] and spec["tolerations"]
    container = spec["containers"][0]
    assert container["name"] == GPU_TRAINER and container["resources"]["limits"]["nvidia.com/gpu"] == 1
    images = {i["name"] for i in component.get("images", [])}
    assert container["image"].split(":")[0] in images, "the CUDA image's tag is set under images: in the component"
    base = kustomization(K8S)
    assert base.get("namespace") == "dyag"
    assert "gpu" not in base.get("components", []), "the GPU component is opt-in: clusters without GPUs apply the base"


@pytest.mark.parametrize("roots", [BASE, WITH_GPU], ids=["base", "with-gpu"])
def test_k8s_every_landed_service_is_deployed(roots):
    docs, _, _ = docs_for(roots)
    deployments = {w["metadata"]["name"] for w in workloads(docs) if w["kind"] == "Deployment"}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    images = {i["name"] for i in kustomization(K8S).get("images", [])}
    for name in DEPLOYABLE:
        assert name in deployments and name in services, f"deploy/k8s has no Deployment and Service {name}"
        assert f"dyag/{name}" in images, f"kustomization.yaml: no images: entry for dyag/{name}"
    gateway = next(w for w in workloads(docs) if w["metadata"]["name"] == GATEWAY)
    env = env_of(pod_spec(gateway)["containers"][0])
    assert sorted(env["DYAG_SERVICES"]["value"].split(",")) == DEPLOYABLE, (
        "gateway.yaml: DYAG_SERVICES != the landed services"
    )
    config_map = next(g for g in kustomization(K8S)["configMapGenerator"] if g["name"] == "dyag-env")
    literals = dict(lit.split("=", 1) for lit in config_map["literals"])
    assert json.loads(literals["DYAG_SERVICE_ADDRS"]) == json.loads(env["DYAG_SERVICE_ADDRS"]["value"]), (
        "dyag-env and gateway.yaml disagree on DYAG_SERVICE_ADDRS"
    )
    assert {n: port for n, (_, port) in address_map(literals["DYAG_SERVICE_ADDRS"]).items()} == {
        n: PORTS[n] for n in DEPLOYABLE
    }


def test_k8s_state_and_replicas():
    """/data is a PVC where the service keeps state; a ReadWriteOnce volume means one pod, replaced not rolled."""
    docs, _, _ = docs_for(BASE)
    claims = {d["metadata"]["name"]: d["spec"]["accessModes"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for workload in [w for w in workloads(docs) if w["kind"] == "Deployment"]:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        rwo = [
            v["persistentVolumeClaim"]["claimName"]
            for v in volumes.values()
            if "persistentVolumeClaim" in v and claims.get(v["persistentVolumeClaim"]["claimName"]) == ["ReadWriteOnce"]
        ]
        if rwo:
            assert workload["spec"].get("replicas", 1) == 1, f"{name}: ReadWriteOnce {rwo} with several replicas"
            assert workload["spec"].get("strategy", {}).get("type") == "Recreate", (
                f"{name}: ReadWriteOnce {rwo}: strategy Recreate"
            )
        if name in SERVICES:
            data = next(volumes[m["name"]] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/data")
            embedded_chroma = name == "rag-service" and "CHROMA_URL" not in env_of(spec["containers"][0])
            if name in PERSISTENT_DATA or embedded_chroma:
                assert "persistentVolumeClaim" in data, f"{name} keeps state in /data: it needs a PVC, not {data}"
            else:
                assert "emptyDir" in data, f"{name} keeps no state in /data: an emptyDir lets it scale"


@pytest.mark.parametrize("roots", [BASE, WITH_GPU], ids=["base", "with-gpu"])
def test_k8s_services_with_a_database_read_its_url_from_an_optional_secret(roots):
    docs, _, _ = docs_for(roots)
    for workload in workloads(docs):
        name = workload["metadata"]["name"]
        env = env_of(pod_spec(workload)["containers"][0])
        if name not in WITH_DATABASE:
            assert "DYAG_DATABASE_URL" not in env, name
            continue
        ref = env["DYAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref["optional"]) == ("dyag-database", "url", True), name
    assert example_secrets()["dyag-database"]["url"].startswith("postgresql://")


def test_k8s_rag_service_reaches_chroma():
    docs, _, _ = docs_for(BASE)
    rag = next((w for w in workloads(docs) if w["metadata"]["name"] == "rag-service"), None)
    if rag is None:
        pytest.skip("no rag-service")
    url = env_of(pod_spec(rag)["containers"][0]).get("CHROMA_URL", {}).get("value")
    if not url:
        return  # embedded: test_k8s_state_and_replicas wants its PVC
    host, port = re.match(r"https?://([^:/]+):(\d+)", url).groups()
    service = next((d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == host), None)
    assert service and int(port) in [p["port"] for p in service["spec"]["ports"]], (
        f"rag-service: no Service behind {url}"
    )
    chroma = next(w for w in workloads(docs) if w["metadata"]["name"] == host)
    assert env_of(pod_spec(chroma)["containers"][0])["ANONYMIZED_TELEMETRY"]["value"] == "False"
    assert pod_spec(chroma).get("enableServiceLinks") is False, (
        "service links set CHROMA_PORT=tcp://..., which Chroma reads"
    )


def test_k8s_pod_security():
    docs, files, _ = docs_for(WITH_GPU)
    for workload in [w for w in workloads(docs) if w["kind"] == "Deployment"]:
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] != 0, f"{name}: run as non-root"
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", f"{name}: seccomp RuntimeDefault"
        for container in pod_spec(workload)["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == ["ALL"], name
            assert ctx["readOnlyRootFilesystem"] is True, (
                f"{name}: a read-only root filesystem (writable paths are volumes)"
            )
            assert "/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}, (
                f"{name}: mount a writable /tmp"
            )


def test_k8s_secrets_are_never_inline():
    """Secret variables come from Secrets (secretKeyRef), never a value in a manifest, a patch or the ConfigMap."""
    _, files, _ = docs_for(WITH_GPU)
    for path in sorted(files):
        for doc in load_all(path):
            assert doc["kind"] != "Secret", (
                f"{path.name}: a Secret in an applied manifest (keep examples in *.example.yaml)"
            )
            template = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in template.get("containers", []):
                for var in container.get("env", []):
                    if SECRET_NAME.search(var["name"]):
                        assert "secretKeyRef" in var.get("valueFrom", {}), (
                            f"{path.name}: {var['name']} must come from a Secret"
                        )
    for folder in (K8S, GPU_COMPONENT):
        for generator in kustomization(folder).get("configMapGenerator", []):
            for literal in generator.get("literals", []):
                key = literal.split("=", 1)[0]
                assert not SECRET_NAME.search(key), (
                    f"{folder.name}/kustomization.yaml: {key} in a ConfigMap; use a Secret"
                )


def test_k8s_gpu_lora_trainer_volumes():
    docs, _, _ = docs_for(BASE)
    trainer = next((w for w in workloads(docs) if w["metadata"]["name"] == GPU_TRAINER), None)
    if trainer is None:
        pytest.skip("no gpu-lora-trainer")
    spec = pod_spec(trainer)
    volumes = {v["name"]: v for v in spec["volumes"]}
    container = spec["containers"][0]
    mounted = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    cache = env_of(container).get("DYAG_MODEL_CACHE", {}).get("value", "/models")
    assert "persistentVolumeClaim" in mounted[cache], "base models are downloaded or converted once: keep them on a PVC"
    assert mounted["/dev/shm"]["emptyDir"]["medium"] == "Memory", "torch needs more than 64 MiB of /dev/shm"


def test_k8s_artifacts_volume_is_shared():
    claim = next(d for d in load_all(K8S / "artifacts-pvc.yaml") if d["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert "DYAG_S3_ENDPOINT_URL" in (K8S / "artifacts-pvc.yaml").read_text()


def kubectl_kustomize(folder: Path) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here")
@pytest.mark.parametrize("with_gpu", [False, True], ids=["base", "with-gpu"])
def test_kubectl_kustomize_builds(tmp_path, with_gpu):
    folder = K8S
    if with_gpu:  # what README says to do: uncomment the component
        folder = tmp_path / "k8s"
        shutil.copytree(K8S, folder)
        text = (folder / "kustomization.yaml").read_text()
        assert "# components:\n#   - gpu" in text
        (folder / "kustomization.yaml").write_text(text.replace("# components:\n#   - gpu", "components:\n  - gpu"))
    docs = kubectl_kustomize(folder)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("StatefulSet", "nats"), ("Deployment", GATEWAY)} <= names
    assert {("Deployment", n) for n in DEPLOYABLE} | {("Service", n) for n in DEPLOYABLE} <= names
    assert ("nvidia.com/gpu" in json.dumps(docs)) == with_gpu, "only the gpu component asks for a GPU"
    if GPU_TRAINER in DEPLOYABLE:
        trainer = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == GPU_TRAINER)
        spec = pod_spec(trainer)
        container = spec["containers"][0]
        assert ("-cuda:" in container["image"]) == with_gpu, container["image"]
        assert bool(spec.get("nodeSelector")) == with_gpu
        if with_gpu:  # the patch kept the base's port, probes and volumes
            assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
            assert container["startupProbe"]["grpc"]["port"] == SERVICES[GPU_TRAINER][1]
            assert {"/data", "/models", "/artifacts", "/dev/shm"} <= {m["mountPath"] for m in container["volumeMounts"]}
    assert all(d["metadata"].get("namespace") == "dyag" for d in docs if d["kind"] != "Namespace")
    config_map = next(d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap")
    for workload in workloads(docs):
        for container in pod_spec(workload)["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] == config_map  # the hashed name, rewritten


# --- deploy/k8s-ha: the overlay with high availability ----------------------------------------------------------

HA_SINGLE = {GPU_TRAINER: 1, "chroma": 1}  # one trainer per GPU node (1 by default); Chroma is one server on a RWO PVC
HA_AUTOSCALED = {GATEWAY, "validator", "rag-service", "evaluator", "dataset-builder"}  # the stateless ones
NATS_CLUSTER_SIZE = 3


def ha_build(tmp_path: Path, with_gpu: bool) -> list[dict]:
    """`kubectl kustomize deploy/k8s-ha`, or with the gpu component uncommented there (what docs/deploy.md says)."""
    folder = K8S_HA
    if with_gpu:
        shutil.copytree(K8S, tmp_path / "k8s")
        folder = tmp_path / "k8s-ha"
        shutil.copytree(K8S_HA, folder)
        text = (folder / "kustomization.yaml").read_text()
        assert "# components:\n#   - ../k8s/gpu" in text
        (folder / "kustomization.yaml").write_text(
            text.replace("# components:\n#   - ../k8s/gpu", "components:\n  - ../k8s/gpu")
        )
    return kubectl_kustomize(folder)


@pytest.fixture(scope="module", params=[False, True], ids=["ha", "ha-with-gpu"])
def ha_docs(request, tmp_path_factory) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl here")
    return ha_build(tmp_path_factory.mktemp("ha"), request.param)


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} in the build"
    return found[0]


def env_config_map(docs: list[dict]) -> dict[str, str]:
    return next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("dyag-env"))["data"]


def test_every_k8s_ha_file_is_used():
    spec = kustomization(K8S_HA)
    used = {entry for entry in spec.get("resources", []) if not entry.startswith("..")}
    used |= {patch["path"] for patch in spec.get("patches", [])}
    used |= {f for generator in spec.get("configMapGenerator", []) for f in generator.get("files", [])}
    for path in K8S_HA.iterdir():
        if path.name == "kustomization.yaml" or path.name.endswith(".example.yaml"):
            continue
        assert path.name in used, f"deploy/k8s-ha/{path.name} is not used by its kustomization.yaml"
    assert "../k8s" in spec["resources"] and spec["namespace"] == kustomization(K8S)["namespace"]


def test_k8s_ha_builds_every_service(ha_docs):
    names = {(d["kind"], d["metadata"]["name"]) for d in ha_docs}
    assert ("StatefulSet", "nats") in names and ("Deployment", GATEWAY) in names
    assert {("Deployment", n) for n in DEPLOYABLE} | {("Service", n) for n in DEPLOYABLE} <= names
    assert all(d["metadata"].get("namespace") == "dyag" for d in ha_docs if d["kind"] != "Namespace")


def test_k8s_ha_replicas(ha_docs):
    """Every workload runs 2 replicas or more, but gpu-lora-trainer (one per GPU node) and Chroma (one server)."""
    for workload in workloads(ha_docs):
        name = workload["metadata"]["name"]
        replicas = workload["spec"].get("replicas", 1)
        if name in HA_SINGLE:
            assert replicas == HA_SINGLE[name], f"{name}: {replicas} replicas"
        else:
            assert replicas >= 2, f"{name}: {replicas} replica(s) in the HA overlay"
        if workload["kind"] == "Deployment" and replicas > 1:
            assert workload["spec"]["strategy"]["type"] == "RollingUpdate", name
            assert workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, f"{name}: roll without a gap"
    trainer = pod_spec(one(ha_docs, "Deployment", GPU_TRAINER))
    term = trainer["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname", "two trainers never share a node (nor its GPU)"
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": GPU_TRAINER}


def test_k8s_ha_every_workload_has_a_disruption_budget(ha_docs):
    budgets = [d for d in ha_docs if d["kind"] == "PodDisruptionBudget"]
    for workload in workloads(ha_docs):
        name = workload["metadata"]["name"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets select its pods"
        spec = matching[0]["spec"]
        if workload["spec"].get("replicas", 1) > 1 and name != "nats":
            assert spec.get("minAvailable") == 1 and "maxUnavailable" not in spec, f"{name}: keep one pod in a drain"
        else:  # NATS keeps its quorum (2 of 3); one pod alone must stay evictable, or a drain of its node hangs
            assert spec.get("maxUnavailable") == 1 and "minAvailable" not in spec, name
    for budget in budgets:
        labels = budget["spec"]["selector"]["matchLabels"]
        assert any(labels.items() <= w["spec"]["template"]["metadata"]["labels"].items() for w in workloads(ha_docs))


def test_k8s_ha_autoscalers_target_stateless_deployments(ha_docs):
    deployments = {w["metadata"]["name"]: w for w in workloads(ha_docs) if w["kind"] == "Deployment"}
    targets = set()
    for hpa in [d for d in ha_docs if d["kind"] == "HorizontalPodAutoscaler"]:
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        assert ref["name"] in deployments, f"HPA {hpa['metadata']['name']}: no Deployment {ref['name']}"
        assert hpa["spec"]["minReplicas"] == deployments[ref["name"]]["spec"]["replicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        for container in pod_spec(deployments[ref["name"]])["containers"]:
            assert container["resources"]["requests"]["cpu"], f"{ref['name']}: CPU utilization needs a CPU request"
        targets.add(ref["name"])
    assert targets == HA_AUTOSCALED


def test_k8s_ha_nats_cluster(ha_docs):
    nats = one(ha_docs, "StatefulSet", "nats")
    size = nats["spec"]["replicas"]
    assert size == NATS_CLUSTER_SIZE and nats["spec"]["podManagementPolicy"] == "Parallel"
    service = one(ha_docs, "Service", nats["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert {p["port"] for p in service["spec"]["ports"]} >= {NATS_PORT, 6222, 8222}
    spec = pod_spec(nats)
    container = spec["containers"][0]
    assert container_ports(nats)["cluster"] == 6222
    assert env_of(container)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["lifecycle"]["preStop"]["exec"]["command"][:3] == [
        "nats-server",
        "--signal",
        "ldm=/var/run/nats/nats.pid",
    ]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz?js-enabled-only=true", probe
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    term = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert spec["terminationGracePeriodSeconds"] >= 40  # lame duck: 10 s grace + 30 s
    # The server reads the mounted nats.conf
    config_path = container["args"][container["args"].index("--config") + 1]
    mounts_by_path = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in spec["volumes"] if v["name"] == mounts_by_path[str(PurePosixPath(config_path).parent)])
    conf = one(ha_docs, "ConfigMap", volume["configMap"]["name"])["data"][PurePosixPath(config_path).name]
    assert re.search(r"^server_name: \$POD_NAME$", conf, re.M)
    assert re.search(r"^pid_file: /var/run/nats/nats.pid", conf, re.M) and "/var/run/nats" in mounts_by_path
    assert re.search(r"^lame_duck_duration: 30s", conf, re.M)
    store = re.search(r"jetstream \{[^}]*store_dir: (\S+)", conf).group(1)
    claim = {t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]}
    assert mounts_by_path[store] in claim, "JetStream's store is on the pod's own PVC"
    cluster = re.search(r"cluster \{(.*?)\n\}", conf, re.S).group(1)
    assert re.search(r"^\s*name: \S+", cluster, re.M) and re.search(r"^\s*port: 6222$", cluster, re.M)
    routes = re.findall(r"nats://([a-z0-9-]+)\.([a-z0-9-]+):6222", cluster)
    assert sorted(routes) == [(f"nats-{i}", service["metadata"]["name"]) for i in range(size)], routes


def test_k8s_ha_nats_settings(ha_docs):
    env = env_config_map(ha_docs)
    size = one(ha_docs, "StatefulSet", "nats")["spec"]["replicas"]
    assert env["DYAG_NATS_REPLICAS"] == str(size) == "3"
    servers = [urlparse(u) for u in env["NATS_URL"].split(",")]
    assert all(u.scheme == "nats" and u.port == NATS_PORT for u in servers)
    hosts = {u.hostname for u in servers}
    assert hosts in ({"nats"}, {f"nats-{i}.nats" for i in range(size)}), f"NATS_URL {env['NATS_URL']}"
    for workload in workloads(ha_docs):  # every Dyag container reads dyag-env
        for container in pod_spec(workload)["containers"]:
            if container["image"].startswith("dyag/"):
                refs = [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]
                assert refs and refs[0].startswith("dyag-env"), workload["metadata"]["name"]


def test_k8s_ha_no_shared_read_write_once_volume(ha_docs):
    """A Deployment with several replicas mounts no PVC (a ReadWriteOnce claim is one node's disk, one pod); the
    artifacts are in S3 and no pod mounts /artifacts."""
    claims = {d["metadata"]["name"] for d in ha_docs if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"chroma-data"}, f"claims left in the HA overlay: {claims}"
    for workload in [w for w in workloads(ha_docs) if w["kind"] == "Deployment"]:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        pvcs = [v["name"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v]
        if workload["spec"]["replicas"] > 1 or name == GPU_TRAINER:  # the trainer's replicas are the GPU nodes
            assert not pvcs, f"{name}: PVC volumes {pvcs} with {workload['spec']['replicas']} replicas"
        for container in spec["containers"]:
            assert "/artifacts" not in {m["mountPath"] for m in container.get("volumeMounts", [])}, name
        if name in SERVICES:
            data = next(
                v
                for v in spec["volumes"]
                if v["name"]
                == next(m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/data")
            )
            assert set(data) == {"name", "emptyDir"}, f"{name}: /data is {data}"
    env = env_config_map(ha_docs)
    assert env["DYAG_ARTIFACT_STORE"].startswith("s3://") and env["DYAG_S3_ENDPOINT_URL"]


def test_k8s_ha_secrets(ha_docs):
    """The registries must be in PostgreSQL (the Secret is required) and S3 credentials come from a Secret."""
    secrets = example_secrets()
    for workload in workloads(ha_docs):
        name = workload["metadata"]["name"]
        for container in pod_spec(workload)["containers"]:
            env = env_of(container)
            for var in env.values():
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if SECRET_NAME.search(var["name"]):
                    assert ref, f"{name}: {var['name']} must come from a Secret"
                if ref:
                    assert ref["key"] in secrets.get(ref["name"], {}), f"{name}: {ref} not in secret.example.yaml"
            if name in WITH_DATABASE:
                ref = env["DYAG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                assert (ref["name"], ref["key"], ref.get("optional", False)) == ("dyag-database", "url", False), name
            if name in SERVICES:
                for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                    assert env[var]["valueFrom"]["secretKeyRef"]["name"] == "dyag-s3", f"{name}: {var}"
    assert not [d for d in ha_docs if d["kind"] == "Secret"], "no Secret in what the overlay applies"
    for generator in kustomization(K8S_HA).get("configMapGenerator", []):
        for literal in generator.get("literals", []):
            assert not SECRET_NAME.search(literal.split("=", 1)[0]), literal


def test_k8s_ha_service_addrs_reach_every_replica(ha_docs):
    """DYAG_SERVICE_ADDRS names every service by a dns:/// target on its headless Service (every ready pod's address),
    in dyag-env and in the gateway's env alike."""
    namespace = kustomization(K8S_HA)["namespace"]
    env = env_config_map(ha_docs)
    gateway_env = env_of(pod_spec(one(ha_docs, "Deployment", GATEWAY))["containers"][0])
    assert json.loads(gateway_env["DYAG_SERVICE_ADDRS"]["value"]) == json.loads(env["DYAG_SERVICE_ADDRS"])
    assert sorted(gateway_env["DYAG_SERVICES"]["value"].split(",")) == DEPLOYABLE
    addrs = json.loads(env["DYAG_SERVICE_ADDRS"])
    assert sorted(addrs) == DEPLOYABLE
    for name, target in addrs.items():
        found = re.fullmatch(rf"dns:///([a-z0-9-]+)\.{namespace}\.svc\.cluster\.local:(\d+)", target)
        assert found, f"{name}: {target} is not dns:///<service>.{namespace}.svc.cluster.local:<port>"
        host, port = found.group(1), int(found.group(2))
        assert host == f"{name}-headless" and port == SERVICES[name][1], target
        service = one(ha_docs, "Service", host)
        assert service["spec"]["clusterIP"] == "None", f"{host} must be headless: a ClusterIP pins a gRPC connection"
        deployment = one(ha_docs, "Deployment", name)
        assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        assert service["spec"]["ports"][0]["targetPort"] in container_ports(deployment)


def test_k8s_ha_pods_keep_the_base_security(ha_docs):
    for workload in [w for w in workloads(ha_docs) if w["kind"] == "Deployment"]:
        name = workload["metadata"]["name"]
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"], name
        for container in pod_spec(workload)["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name
            if name in SERVICES:  # DYAG_METRICS_PORT (dyag-env) declared as the port "metrics"
                assert container_ports(workload)["metrics"] == int(env_config_map(ha_docs)["DYAG_METRICS_PORT"])


# --- docker-compose.cluster.yml ---------------------------------------------------------------------------------

COMPOSE_REPLICATED = {"dataset-builder", "validator", "openai-trainer", "model-exporter", "rag-service", "evaluator"}


def test_compose_cluster_config(tmp_path):
    """docker-compose.yml + docker-compose.postgres.yml + docker-compose.cluster.yml: three NATS servers routed to each
    other, R3 streams, MinIO for the artifacts, 2 replicas of the services; the gateway alone on its host port."""
    base, env = compose_base(tmp_path, [COMPOSE_FILE, COMPOSE_POSTGRES_FILE, COMPOSE_CLUSTER_FILE])

    def run(**extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*base, "config", "--format", "json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**env, "DYAG_API_KEYS": "x", "DYAG_POSTGRES_PASSWORD": "pw", **extra},
            timeout=60,
        )

    refused = run()
    assert refused.returncode != 0 and "set DYAG_MINIO_PASSWORD" in refused.stderr, refused.stderr
    result = run(DYAG_MINIO_PASSWORD="minio-pw")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]

    servers = sorted(n for n in services if re.fullmatch(r"nats-\d", n))
    assert servers == ["nats-1", "nats-2", "nats-3"] and "nats" not in services
    names, clusters, volumes = set(), set(), set()
    for server in servers:
        args = services[server]["command"]
        option = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("-")}
        assert "-js" in args and option["-sd"] == "/data" and option["-m"] == "8222", server
        names.add(option["--name"])
        clusters.add(option["--cluster_name"])
        assert option["--cluster"] == "nats://0.0.0.0:6222"
        routes = {urlparse(r).hostname for r in option["--routes"].split(",")}
        assert routes == set(servers), f"{server}: routes to {routes}"
        (data,) = [v["source"] for v in services[server]["volumes"] if v["target"] == "/data"]
        volumes.add(data)
        assert "/healthz" in " ".join(services[server]["healthcheck"]["test"])
    assert names == set(servers) and len(clusters) == 1 and len(volumes) == 3, (names, clusters, volumes)
    assert "nats-data" not in config.get("volumes", {})

    for name in [*DEPLOYABLE, GATEWAY]:
        svc = services[name]
        environment = svc["environment"]
        assert environment["DYAG_NATS_REPLICAS"] == "3", name
        assert {urlparse(u).hostname for u in environment["NATS_URL"].split(",")} == set(servers), name
        assert "nats" not in svc["depends_on"], f"{name} waits for the base's nats, which is gone"
        assert all(svc["depends_on"][s]["condition"] == "service_healthy" for s in servers), name
        replicas = svc.get("deploy", {}).get("replicas", 1)
        assert replicas == (2 if name in COMPOSE_REPLICATED else 1), f"{name}: {replicas} replicas"
        if name == GATEWAY:
            assert svc["ports"], "the gateway keeps its host port (so one replica)"
            continue
        assert not svc.get("ports"), f"{name}: a published port and 2 replicas clash"
        assert environment["DYAG_ARTIFACT_STORE"].startswith("s3://") and environment["DYAG_S3_ENDPOINT_URL"]
        assert environment["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        assert environment["AWS_ACCESS_KEY_ID"] == services["minio"]["environment"]["MINIO_ROOT_USER"]
        assert svc["build"]["args"]["DYAG_RUNTIME_EXTRAS"] == "[s3]", f"{name}: the image needs boto3"
        assert svc["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
        if name in WITH_DATABASE:
            assert environment["DYAG_DATABASE_URL"].startswith("postgresql://"), name
    bucket = urlparse(services["dataset-builder"]["environment"]["DYAG_ARTIFACT_STORE"]).hostname
    assert f"mc mb --ignore-existing dyag/{bucket}" in " ".join(services["minio-init"]["command"])
    assert services["minio"]["image"].startswith("minio/minio:")


# --- dyag_runtime.healthcheck --------------------------------------------------------------------------------


def test_healthcheck_reports_serving_and_not(monkeypatch):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert healthcheck.main([f"127.0.0.1:{port}"]) == 0
        monkeypatch.setenv("DYAG_GRPC_PORT", str(port))  # no address: the port the settings give
        assert healthcheck.main([]) == 0
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert healthcheck.main([f"127.0.0.1:{port}"]) == 1
    finally:
        server.stop(None)
    assert healthcheck.check(f"127.0.0.1:{port}", timeout=1.0) is False
