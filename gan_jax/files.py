"""Writing files so that a kill, a full disk or an error never leaves half of one.

The one home of the write-to-a-temporary-then-rename pattern: every file the project writes
for a user (configs, PNGs, videos, JSON results, caches) goes through `atomic_path`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path`; renames it onto `path` when the block succeeds.

    The temporary name keeps the extension (writers that pick a format by it still work) and
    is hidden and unique per process. On any error the temporary file is removed and `path`
    is left as it was.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(directory, f".{stem}.{os.getpid()}.tmp{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, record) -> None:
    """Writes `record` as indented, key-sorted JSON atomically."""
    write_text(path, json.dumps(record, indent=2, sort_keys=True))
