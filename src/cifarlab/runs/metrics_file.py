"""Reading a run folder's metrics.jsonl (tolerant of a crash mid-write) and its eval_<split>.json files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cifarlab.errors import CifarlabError
from cifarlab.runs.files import METRICS, eval_file, split_of_eval_file, split_order


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a metrics.jsonl; a garbled last line (a crash mid-write) is skipped.

    A garbled line anywhere else is not a crash but a damaged file: CifarlabError naming the
    file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"no metrics file at {path}; point to a run folder's {METRICS}")
    lines = path.read_text(errors="replace").splitlines()
    last = max((number for number, line in enumerate(lines, start=1) if line.strip()), default=0)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == last:
                break
            raise CifarlabError(f"{path} line {number} is not JSON; fix or delete that line") from None
        if not isinstance(record, dict):
            if number == last:
                break
            raise CifarlabError(f"{path} line {number} is not a JSON object; fix or delete that line")
        records.append(record)
    return records


def read_evaluations(run_dir: str | os.PathLike) -> dict[str, dict]:
    """split -> content of its eval_<split>.json, val and test first, the rest by name."""
    run_dir = Path(run_dir)
    evaluations = {}
    for path in run_dir.glob(eval_file("*")):
        split = split_of_eval_file(path.name)
        try:
            evaluations[split] = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise CifarlabError(f"{path} is not valid JSON; delete it and evaluate that split again") from None
    return dict(sorted(evaluations.items(), key=lambda item: split_order(item[0])))
