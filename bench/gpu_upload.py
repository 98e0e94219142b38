"""Take CIFAR-10 to a bare GPU machine that can receive only a few tens of MiB per command.

The lent GPU machines start with the checkout alone (no `../shared`, no internet), and one command
may carry at most 64 MiB with the working tree. `split` cuts the dataset's zip (117 MB) into parts
that each fit beside the checkout, with their sha256 in a manifest; each part travels with one
command and stays there (ignored files are kept between commands on a warm machine); `join` then
checks every part, puts the zip back together, checks it against the manifest and writes it with
its JSON into a folder for CIFARLAB_DATA. Both steps are tested on the CPU (tests/bench).

    # here
    python bench/gpu_upload.py split --data ../shared/data --out gpu_upload
    # on the GPU machine: one command per part, each carrying gpu_upload/manifest.json and one part
    #   (the commands are printed by `split`); the last one also runs:
    python3 bench/gpu_upload.py join gpu_upload --out gpu_data
    CIFARLAB_DATA=gpu_data PYTHONPATH=src bash bench/gpu.sh
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

MIB = 1 << 20
# 64 MiB per command, less the checkout (about 4 MiB) and some room for what it grows by.
DEFAULT_PART_MIB = 56


class UploadError(Exception):
    """A part is missing or damaged, or the input is not there: one line saying which and what to do."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def split(data: Path, out: Path, name: str = "cifar10", part_mib: int = DEFAULT_PART_MIB) -> list[Path]:
    """Cut `data/<name>.zip` into parts of at most `part_mib` MiB in `out`, with manifest.json; returns the parts."""
    archive = data / f"{name}.zip"
    if not archive.is_file():
        raise UploadError(f"{archive} does not exist; pass --data the folder holding {name}.zip (e.g. ../shared/data)")
    size = archive.stat().st_size
    count = max(1, math.ceil(size / (part_mib * MIB)))
    part_size = math.ceil(size / count)  # equal parts: each well under the limit, not one full and one tiny
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(archive, "rb") as source:
        for index in range(count):
            part = out / f"{name}.zip.part{index + 1}of{count}"
            part.write_bytes(source.read(part_size))
            parts.append(part)
    manifest = {
        "name": name, "file": archive.name, "bytes": size, "sha256": sha256(archive),
        "parts": [{"file": part.name, "bytes": part.stat().st_size, "sha256": sha256(part)} for part in parts],
    }
    described = data / f"{name}.json"  # the checksums cifarlab verifies when it decodes the zip
    if described.is_file():
        manifest["json"] = json.loads(described.read_text())
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return parts


def join(upload: Path, out: Path) -> Path:
    """Check every part against the manifest, write the zip (and its JSON) into `out`; returns the zip."""
    manifest_path = upload / "manifest.json"
    if not manifest_path.is_file():
        raise UploadError(f"{manifest_path} is missing; carry it with every part (see `split`'s printed commands)")
    manifest = json.loads(manifest_path.read_text())
    for part in manifest["parts"]:
        path = upload / part["file"]
        if not path.is_file():
            raise UploadError(f"{path} has not arrived; run the command that carries it, then join again")
        if path.stat().st_size != part["bytes"] or sha256(path) != part["sha256"]:
            raise UploadError(f"{path} is damaged (size or sha256 differs from the manifest); carry it again")
    out.mkdir(parents=True, exist_ok=True)
    target = out / manifest["file"]
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as whole:
        for part in manifest["parts"]:
            with open(upload / part["file"], "rb") as piece:
                shutil.copyfileobj(piece, whole, MIB)
    if sha256(temporary) != manifest["sha256"]:
        temporary.unlink()
        raise UploadError("the joined zip's sha256 differs from the manifest although every part matched; "
                          "split again from the original")
    os.replace(temporary, target)
    if "json" in manifest:
        (out / f"{manifest['name']}.json").write_text(json.dumps(manifest["json"], indent=1))
    return target


def device_commands(parts: list[Path], out: Path) -> list[str]:
    """What to run on the GPU machine, one command per part; the last joins and measures."""
    commands = []
    for index, part in enumerate(parts):
        carry = [str(out / "manifest.json"), str(part)]
        command = f"ls -l {out}" if index < len(parts) - 1 else (
            f"python3 bench/gpu_upload.py join {out} --out gpu_data && "
            "CIFARLAB_DATA=gpu_data PYTHONPATH=src bash bench/gpu.sh")
        commands.append(f"carry {carry}: {command}")
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)
    split_parser = verbs.add_parser("split", help="cut <data>/<name>.zip into parts that travel one per command")
    split_parser.add_argument("--data", type=Path, default=Path(os.environ.get("CIFARLAB_DATA", "../shared/data")))
    split_parser.add_argument("--out", type=Path, default=Path("gpu_upload"))
    split_parser.add_argument("--name", default="cifar10")
    split_parser.add_argument("--part-mib", type=int, default=DEFAULT_PART_MIB)
    join_parser = verbs.add_parser("join", help="check the parts and write the zip for CIFARLAB_DATA")
    join_parser.add_argument("upload", type=Path)
    join_parser.add_argument("--out", type=Path, default=Path("gpu_data"))
    args = parser.parse_args(argv)
    try:
        if args.verb == "split":
            parts = split(args.data, args.out, args.name, args.part_mib)
            print(f"{len(parts)} parts in {args.out} (at most {args.part_mib} MiB each; .gitignore keeps them out of "
                  "the working tree that travels). Device calls, one per part, back to back on a warm machine:")
            for command in device_commands(parts, args.out):
                print("  " + command)
        else:
            print(f"wrote {join(args.upload, args.out)}; use CIFARLAB_DATA={args.out}")
    except UploadError as error:
        print(f"gpu_upload: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
