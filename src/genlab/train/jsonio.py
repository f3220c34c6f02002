"""JSON files written atomically, with non-finite floats stored as null (valid JSON for any reader)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def clean(value: Any) -> Any:
    """Replace NaN/inf by None and tensors/numpy scalars by Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(clean(value), indent=indent, allow_nan=False)


def write_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, dumps(value, indent=2) + "\n")


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)
