"""The rows of a CSV file with a header, checked so that no value is silently cut off.

A value with an unquoted comma (`img.jpg,street, urban`) splits into more fields than the header
has; Python's `csv.DictReader` files the surplus under the key None, and a reader that only
asks for its named columns would read `street`. Such a row is a `DataError` naming its line.
"""

from __future__ import annotations

import csv
import io

from edgetl.errors import DataError


def csv_rows(text: str, where: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of CSV `text`, header names stripped, blank lines left out.

    `where` names the file in the error ("manifest /data/labels.csv").
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        extra: list[str] = list(row.pop(None, None) or [])  # type: ignore[call-overload]
        surplus = [v for v in extra if (v or "").strip()]
        if surplus:
            raise DataError(
                f"{where} line {reader.line_num}: {len(header) + len(extra)} fields where the "
                f"header has {len(header)} ({','.join(header)}); the extra "
                f"{', '.join(repr(v) for v in surplus)} would be lost",
                hint="quote a value that holds a comma, e.g. \"street, urban\"")
        if any((v or "").strip() for v in row.values()):
            rows.append(row)
    return header, rows
