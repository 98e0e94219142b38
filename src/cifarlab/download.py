"""The one download routine: an official file fetched over HTTP(S) under a progress bar, checked, then renamed.

The CIFAR archives and the BiT checkpoints both come through here, with one time-out and one set
of checks: a body shorter than its Content-Length is refused, the caller's `verify` sees the md5
and size before the file is renamed into place, and a failure leaves no partial file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError

TIMEOUT_S = 60  # a server that sends nothing for this long is taken as gone
_BLOCK = 1 << 20


class DownloadFailed(CifarlabError):
    """The transfer itself failed (offline, refused, cut short); the caller adds what to do instead."""


@dataclass(frozen=True)
class Received:
    """What arrived: its size in bytes and md5 (hex)."""

    size: int
    md5: str


def download_file(url: str, dest: Path, label: str, expected_bytes: Optional[int] = None,
                  verify: Callable[[Received], None] = lambda received: None) -> Received:
    """Fetch `url` to `dest` under a progress bar labelled `label`, atomically.

    `expected_bytes` sizes the bar when the server sends no Content-Length. `verify` may raise a
    CifarlabError (wrong md5, implausible size): the file is then not kept.
    """
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadFailed(f"downloading {url} failed ({getattr(exc, 'reason', exc)})") from exc
    length = response.headers.get("Content-Length")
    with response, atomic_path(dest) as tmp:
        received = _stream(response, tmp, label, int(length) if length else expected_bytes, url)
        if length and received.size != int(length):
            raise DownloadFailed(f"the download of {url} is incomplete: got {received.size:,} of {int(length):,} bytes")
        verify(received)
    return received


def _stream(response, path: Path, label: str, total: Optional[int], url: str) -> Received:
    """Copy a response body into `path`, advancing the bar; its size and md5."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress, open(path, "wb") as out:
        task = progress.add_task("download", total=total)
        try:
            while block := response.read(_BLOCK):
                out.write(block)
                digest.update(block)
                size += len(block)
                progress.advance(task, len(block))
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadFailed(f"the download of {url} broke off after {size:,} bytes ({exc})") from exc
    return Received(size=size, md5=digest.hexdigest())
