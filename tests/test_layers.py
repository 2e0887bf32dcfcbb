"""The import graph flows one way: env -> shared parts -> integrations -> agents -> runner ->
tools -> CLI; only the CLI's entry point imports the command modules.

Every `import` in the package is read from the source, lazy ones inside functions
included (only imports under `if TYPE_CHECKING:` are left out, since they never run), so
a new import that points up a layer, or closes a circle, fails here with its place named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mario_rl"

LAYERS: list[set[str]] = [
    {"env", "mario_rl"},  # the package root only registers the Gymnasium ids
    {"nets", "replay", "runs", "policy", "stopping"},
    {"integrations"},
    {"agents"},
    {"training", "studies"},
    {
        "evaluate", "record", "compare", "levels_table", "bundled", "play", "leaderboard",
        "presets", "random_agent", "bench", "outputs",
    },
    {"cli", "__main__"},
]  # fmt: skip
"""Top-level modules of each layer, lowest first, as docs/architecture.md section 1 has them."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("mario_rl", *parts)).removesuffix(".__init__")


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) of every mario_rl import that can run."""
    found: list[tuple[str, int]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if is_type_checking_block(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"line {node.lineno}: a relative import; write it absolute")
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(node.module, node.lineno)] + [(name, node.lineno) for name in names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        stack.extend(ast.iter_child_nodes(node))
    return [(name, line) for name, line in found if name.split(".")[0] == "mario_rl"]


def import_graph() -> dict[str, list[tuple[str, int]]]:
    """Each module -> the package modules it imports (a `from m import x` counts as an
    import of m, and of m.x when x is a submodule)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: [
            (target, line)
            for target, line in imported_modules(ast.parse(path.read_text()))
            if target in modules and target != name
        ]
        for name, path in modules.items()
    }


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "mario_rl"
    for rank, members in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module}: no layer; add its top-level name to LAYERS")


GRAPH = import_graph()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_layer_above_its_own(module):
    upward = [
        f"{module} line {line} imports {target}"
        for target, line in GRAPH[module]
        if layer_of(target) > layer_of(module)
    ]
    assert not upward


def test_no_import_circle():
    """Depth-first search for a back edge; a package's own __init__ re-exporting its
    submodules is not a circle of the submodule importing it back, so the package
    itself is left out as an import target of its own submodules."""

    def targets(module: str) -> list[str]:
        return [t for t, _ in GRAPH[module] if not module.startswith(t + ".")]

    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in targets(module):
            if state.get(target) == "open":
                return [*path, module, target]
            if target not in state and (found := visit(target, [*path, module])):
                return found
        state[module] = "done"
        return None

    for module in sorted(GRAPH):
        if module not in state:
            circle = visit(module, [])
            assert circle is None, " -> ".join(circle)


def test_the_layer_check_sees_a_lazy_upward_import():
    source = "def f():\n    from mario_rl.cli.main import main\n"
    assert imported_modules(ast.parse(source)) == [
        ("mario_rl.cli.main", 2),
        ("mario_rl.cli.main.main", 2),
    ]
    assert layer_of("mario_rl.cli.main") > layer_of("mario_rl.env.core")


COMMAND_MODULES = sorted(
    name for name in GRAPH if name.startswith("mario_rl.cli.") and name != "mario_rl.cli.args"
)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_only_the_entry_point_imports_command_modules(module):
    """Command modules import `cli/args.py` and the library, never each other."""
    others = [
        f"{module} line {line} imports {target}"
        for target, line in GRAPH[module]
        if target in COMMAND_MODULES and module != "mario_rl.cli.main"
    ]
    assert not others
