"""metrics.csv: the records as one spreadsheet table, for tools that read CSV and not JSON lines."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional, TextIO

from cifarlab.atomic import write_text
from cifarlab.training.callbacks import Callback

METRICS_CSV = "metrics.csv"
# Columns that locate a row come first, whatever order the records bring them in.
LEADING_COLUMNS = ("kind", "step", "epoch")


class CsvSink(Callback):
    """One row per step and epoch record under a header of every key seen so far.

    Rows are appended while the keys stay the same; a record with a new key (validation numbers
    first appear at the end of an epoch) rewrites the file under the wider header.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict] = []
        self._file: Optional[TextIO] = None

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.columns, self.rows = [], []
        if start_step > 0 and self.path.exists():
            self.columns, self.rows = _read_up_to(self.path, start_step)
        self._rewrite()

    def on_log(self, trainer, record: dict) -> None:
        self._add(record)

    def on_epoch(self, trainer, record: dict) -> None:
        self._add(record)

    def on_end(self, trainer, status: str) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _add(self, record: dict) -> None:
        row = {key: "" if value is None else value for key, value in record.items()}
        self.rows.append(row)
        if any(key not in self.columns for key in row):
            self._rewrite()
            return
        csv.DictWriter(self._file, self.columns, lineterminator="\n").writerow(row)
        self._file.flush()

    def _rewrite(self) -> None:
        """Write header and every row to a new file, then keep appending to it."""
        if self._file is not None:
            self._file.close()
        seen = list(dict.fromkeys([*self.columns, *(key for row in self.rows for key in row)]))
        self.columns = [key for key in LEADING_COLUMNS if key in seen] + [key for key in seen if key not in LEADING_COLUMNS]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns, restval="", lineterminator="\n")
        if self.columns:
            writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, buffer.getvalue())
        self._file = open(self.path, "a", newline="")


def _read_up_to(path: Path, step: int) -> tuple[list[str], list[dict]]:
    """Header and rows of an existing metrics.csv up to `step`; a last row cut short by a crash is dropped."""
    text = path.read_text(errors="replace")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        try:
            row_step = float(row.get("step") or "nan")
        except ValueError:
            continue
        if row_step <= step:
            rows.append(row)
    return columns, rows
