"""Result tables as text: the one CSV, Markdown and mean ± sd writer every study, sweep and report uses."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Sequence

# Markdown column alignment -> its separator cell; no alignment is the plain `---`.
_ALIGN_MARKS = {None: "---", "left": ":---", "right": "---:", "center": ":---:"}


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as CSV with these columns, in this order (missing and None values empty, extra keys ignored)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows([{key: ("" if row.get(key) is None else row[key]) for key in columns} for row in rows])
    return buffer.getvalue()


def csv_rows_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows given as lists under a header row, as CSV with `\\n` line ends (None values empty).

    `csv_text` keeps the csv module's `\\r\\n`: the files each writes have always had those line ends.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _markdown_row(cells: Sequence[object]) -> str:
    # A None cell is written bare (`| |`), as key-value tables leave their heading cells.
    return "|" + "".join(" |" if cell is None else f" {cell} |" for cell in cells)


def markdown_table(headings: Sequence[str | None], rows: Iterable[Sequence[object]],
                   align: Sequence[str | None] = ()) -> str:
    """A Markdown table ending in a newline: a heading row, the separator, one line per row.

    Cells are written as given (`|` is not escaped), None as an empty cell `| |`. `align` names
    "left", "right" or "center" per column; columns past its end, or given None, state none.
    """
    marks = [_ALIGN_MARKS[align[i] if i < len(align) else None] for i in range(len(headings))]
    lines = [_markdown_row(headings), "|" + "".join(f"{mark}|" for mark in marks)]
    lines += [_markdown_row(row) for row in rows]
    return "\n".join(lines) + "\n"


def mean_sd(values: Iterable[object]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the values present (None and "" are missing).

    Both are None when nothing is present; sd is None for a single value.
    """
    present = [float(v) for v in values if v is not None and v != ""]
    if not present:
        return None, None
    return statistics.mean(present), (statistics.stdev(present) if len(present) > 1 else None)


def mean_sd_cell(mean: float | None, sd: float | None, decimals: int) -> str:
    """`mean ± sd` with `decimals` places; the mean alone without an sd, "-" without a mean."""
    if mean is None:
        return "-"
    return f"{mean:.{decimals}f}" + (f" ± {sd:.{decimals}f}" if sd is not None else "")
