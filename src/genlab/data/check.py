"""`genlab data check`: verify a dataset's files and describe what they hold."""

from __future__ import annotations

import os

from genlab.data.datasets import load, read_raw, splits_of
from genlab.data.files import locate
from genlab.data.registry import get_spec
from genlab.data.user import is_user


def check(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """Lines describing the verified dataset; raises DataError when a file is missing or corrupt (or, for a
    user's images, unreadable or of mixed sizes)."""
    spec = get_spec(name)
    if is_user(name):
        return [f"{name}: {spec.notes}"] + _splits(name, spec, data_dir)
    files = locate(spec, data_dir)
    raw = read_raw(files)
    lines = [f"{spec.name}: {spec.title} in {files.folder}"]
    for entry in spec.files:
        if entry.name in raw.verified:
            how = raw.verified[entry.name]
            how = "records checked against the header (no published checksum)" if how == "structure" else how
            lines.append(f"  ok      {entry.name}  [{how}]")
        else:
            lines.append(f"  absent  {entry.name}" + ("" if entry.required else "  (optional)"))
    lines += _splits(name, spec, data_dir)
    lines.extend(f"  note: {n}" for n in raw.notes)
    return lines


def _splits(name: str, spec, data_dir: str | os.PathLike | None) -> list[str]:
    lines = []
    for split in splits_of(name):
        data = load(name, split, data_dir)
        counts = " ".join(f"{c}:{n}" for c, n in zip(spec.classes, data.class_counts()))
        lines.append(f"  {split:<5} {len(data):>6,} images {'x'.join(map(str, data.shape))}"
                     + (f"  per class {counts}" if counts else ""))
    return lines
