"""Output paths checked before the work that fills them, so nothing is played for nothing.

`ValueError`s here are bad input: the CLI prints them as one line and exits 2.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def writable_file(path: str | Path) -> Path:
    """`path` as an output file: not a directory, and its folder exists (or is created)
    and takes a new file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory: expected a file path to write")
    writable_folder(path.parent, f"cannot write {path}")
    return path


def writable_folder(folder: str | Path, what: str | None = None) -> Path:
    """`folder`, created if need be and checked by writing a file in it (permission bits
    alone mislead: root ignores them, and /proc refuses files whatever they say)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mario-rl-write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"{what or f'cannot write into {folder}'}: {reason}") from None
    return folder
