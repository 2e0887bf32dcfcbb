"""The repository's scripts (`benchmarks/`, `scripts/`) loaded as modules, for tests to call."""

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """The script at `path` (absolute, or from the repository's root), run as a module
    named `name` (default: its file's stem)."""
    path = REPO / path
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
