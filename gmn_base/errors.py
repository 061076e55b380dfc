"""The one error every GMN parser raises, and the one JSON reader that raises it.

:class:`GMNFormatError` is a ``ValueError`` whose message names the file (when known), what
was malformed and the offending value, e.g.
``listing: malformed timelapse name: 'CAWEC2_...' (end before start)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class GMNFormatError(ValueError):
    """A GMN name, value or file does not have the expected shape."""

    def __init__(self, what: str, value: Any, source: str | Path | None = None, hint: str = ""):
        where = f"{source}: " if source is not None else ""
        message = f"{where}malformed {what}: {value!r}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.what = what
        self.value = value
        self.source = None if source is None else str(source)


def load_json(path: Path) -> Any:
    """Read a JSON file; a broken one raises :class:`GMNFormatError` naming the file."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GMNFormatError("JSON", f"{exc.msg} at line {exc.lineno} column {exc.colno}", path) from None
    except UnicodeDecodeError:
        raise GMNFormatError("JSON", "not UTF-8 text", path) from None
