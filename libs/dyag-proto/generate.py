"""Generate the Python stubs of proto/ into src/ (the build step; never edit the output by hand).

python libs/dyag-proto/generate.py            # write src/dyag/v1/*_pb2*.py
python libs/dyag-proto/generate.py --check    # exit 1 if the committed stubs are stale
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
OUTPUT = HERE / "src"
PACKAGE = Path("dyag") / "v1"


def generate(out: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc  # build-time only: the runtime needs grpcio and protobuf alone

    protos = sorted(PROTO_ROOT.glob(f"{PACKAGE}/*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *map(str, protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / PACKAGE / "__init__.py").write_text('"""Generated from proto/dyag/v1 by libs/dyag-proto/generate.py."""\n')
    return sorted((out / PACKAGE).glob("*.py*"))


def stale_files() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = {p.name for p in (OUTPUT / PACKAGE).glob("*.py*")}
        names = {p.name for p in fresh}
        stale = sorted(committed ^ names)
        stale += [
            p.name
            for p in fresh
            if p.name in committed and not filecmp.cmp(p, OUTPUT / PACKAGE / p.name, shallow=False)
        ]
        return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the stubs in src/ differ from a fresh generation")
    if parser.parse_args().check:
        stale = stale_files()
        if stale:
            sys.exit(f"stale generated stubs: {', '.join(stale)}; run python libs/dyag-proto/generate.py")
        print("generated stubs are up to date")
        return
    (OUTPUT / PACKAGE).mkdir(parents=True, exist_ok=True)
    for path in generate(OUTPUT):
        print(path.relative_to(HERE))


if __name__ == "__main__":
    main()
