"""Hostile files for the tests: YAML that asks for far more than its size, images that claim to be enormous.

Each builder writes a real, small file: the alias bomb is ~400 bytes, the decompression-bomb PNG
a valid 16,000 x 16,000 1-bit image of ~32 kB, a "gigantic header" PNG only its header chunks.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cifarlab.cli import main

SIDE = 32


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A recipe whose `data.dataset` names `width**levels` strings through aliases anchored in model.options."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "model:\n  options:\n" + "".join(f"    {line}\n" for line in lines) + f"data: {{dataset: *a{levels - 1}}}\n"


def flow_alias_chain(levels: int, width: int) -> str:
    """The same chain as one flow list, to put anywhere a value goes: `[&a0 [...], &a1 [*a0, ...], ..., *aN]`."""
    parts = ["&a0 [" + ", ".join(["lol"] * width) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + f", *a{levels - 1}]"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A 1-bit greyscale PNG that claims `width` x `height` and holds one row of data: Pillow opens it by its header."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + (width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", row) + _chunk(b"IEND", b"")


def bomb_png(side: int = 16_000) -> bytes:
    """A complete, valid `side` x `side` 1-bit black PNG: ~32 kB that decode to `side**2` pixels (256 million)."""
    rows = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte, then 8 pixels a byte
    data = b"".join(rows.compress(row) for _ in range(side)) + rows.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def good_tree(root: Path, classes: tuple[str, ...] = ("cat", "dog")) -> Path:
    """A usable image folder: two 32x32 PNGs per class and split."""
    for split in ("train", "test"):
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(2):
                (folder / f"{number}.png").write_bytes(png(number))
    return root


def zip_tree(folder: Path, path: Path, extra: dict[str, bytes]) -> Path:
    """`folder` zipped to `path`, with `extra` members (name -> bytes) added."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*.png")):
            archive.write(file, file.relative_to(folder).as_posix())
        for name, data in extra.items():
            archive.writestr(name, data)
    return path


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the code under test after `seconds`: a hang (a read from a pipe) fails the test."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cli(args: list[str], cwd: Path, seconds: int = 20) -> tuple[int, str, float]:
    """`cifarlab ARGS` in-process from `cwd`: exit code, what it wrote to stderr, seconds it took.

    Any exception other than the CLI's own refusal comes back as a traceback-like stderr, so the
    caller's check names the case instead of stopping at it.
    """
    stderr = io.StringIO()
    here = os.getcwd()
    start = time.monotonic()
    os.chdir(cwd)
    try:
        with deadline(seconds), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(args)
    except BaseException as exc:  # noqa: BLE001 - any escape is the bug these tests look for
        if isinstance(exc, KeyboardInterrupt):
            raise
        code, stderr = 1, io.StringIO(f"Traceback: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        os.chdir(here)
    return code, stderr.getvalue(), time.monotonic() - start


def outcome_problem(code: int, stderr: str, seconds: float, limit: float = 5.0) -> str | None:
    """None when the command ran (exit 0) or was refused with one `cifarlab: error:` line; else what went wrong."""
    errors = [line for line in stderr.splitlines() if line.startswith("cifarlab: error:")]
    if "Traceback" in stderr or "DecompressionBomb" in stderr:
        return f"traceback or Pillow warning: {stderr[-400:]}"
    if code == 2 and len(errors) != 1:
        return f"exit 2 with {len(errors)} error lines: {stderr[-400:]}"
    if code == 2 and len(errors[0]) > 1500:
        return f"an error line of {len(errors[0])} characters"
    if code not in (0, 2):
        return f"exit {code}: {stderr[-400:]}"
    if seconds > limit:
        return f"took {seconds:.1f} s"
    return None
