"""The TUI's layering, read from its source with ast (tui.messages states the rules):

- no import circle among tui's modules, counting every import (TYPE_CHECKING and lazy ones too);
- tui/data has no Textual in it, nor anything that brings Textual (tui.widgets, tui.screens, tui.app);
- screens and widgets never reach into the app (`self.app.` ...): they post messages, and what they
  show is handed to them. Widgets may read the theme, which Textual keeps only on the app.
"""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parents[2] / "tui"
# Textual keeps the theme on the App only; a widget that draws in theme colors must read it there.
THEME_READS = {"theme", "theme_variables"}


def module_name(path: Path) -> str:
    parts = path.relative_to(TUI.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(TUI.rglob("*.py"))}


def imported(tree: ast.Module, modules: set[str]) -> set[str]:
    """The tui modules `tree` imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from tui.widgets import tables` imports the module tui.widgets.tables
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n for n in submodules if n in modules] or [node.module]
        else:
            continue
        found.update(n for n in names if n in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    trees = sources()
    return {name: imported(tree, set(trees)) - {name} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_tui_modules_import_each_other_without_a_circle():
    graph = import_graph()
    assert "tui.app" in graph and "tui.screens.base" in graph  # the scan sees the package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_data_modules_bring_no_textual():
    trees = sources()
    graph = import_graph()
    data = [name for name in trees if name.startswith("tui.data")]
    assert "tui.data.snapshot" in data
    for name in data:
        textual = sorted({alias.name for node in ast.walk(trees[name]) if isinstance(node, ast.Import)
                          for alias in node.names if alias.name.split(".")[0] == "textual"}
                         | {node.module for node in ast.walk(trees[name]) if isinstance(node, ast.ImportFrom)
                            and (node.module or "").split(".")[0] == "textual"})
        assert not textual, f"{name} imports {textual}"
        ui = sorted(m for m in graph[name] if not m.startswith("tui.data"))
        assert not ui, f"{name} imports {ui}: tui/data must not depend on the Textual layers"


def app_reach_ins(tree: ast.Module) -> list[str]:
    """Every `<name>.app` outside the app, as `line: code`, but theme reads."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "app" and isinstance(node.value, ast.Name):
            parent = parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.attr in THEME_READS:
                continue
            found.append((node.lineno, ast.unparse(parent if isinstance(parent, ast.Attribute) else node)))
    return [f"{line}: {code}" for line, code in sorted(found)]


def test_nothing_outside_the_app_reaches_into_it():
    reach_ins = {name: found for name, tree in sources().items()
                 if name != "tui.app" and (found := app_reach_ins(tree))}
    assert not reach_ins, f"post a tui.messages message instead: {reach_ins}"


def test_the_reach_in_scan_sees_one():
    tree = ast.parse("class S:\n    def f(self):\n        self.app.open_study(1)\n"
                     "        x = screen.app\n        c = self.app.theme_variables\n")
    assert app_reach_ins(tree) == ["3: self.app.open_study", "4: screen.app"]
