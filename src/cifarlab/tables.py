"""Result tables as text: the one CSV writer every study, sweep and report uses."""

from __future__ import annotations

import csv
import io


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """Rows as CSV with these columns, in this order (missing and None values empty, extra keys ignored)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows([{key: ("" if row.get(key) is None else row[key]) for key in columns} for row in rows])
    return buffer.getvalue()
