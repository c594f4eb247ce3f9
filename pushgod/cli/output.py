"""How commands print: one JSON object with --json, aligned `key: value` lines otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any


def emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    width = max((len(key) for key in data), default=0)
    for key, value in data.items():
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False)
        print(f"{key + ':':<{width + 1}} {'' if value is None else value}")


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as aligned columns under a header."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    for line in [columns, *cells]:
        print(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def fail(message: str, code: str | None = None) -> int:
    suffix = f" ({code})" if code else ""
    print(f"pushgod: {message}{suffix}", file=sys.stderr)
    return 1
