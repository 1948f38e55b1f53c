"""The dependency rules of DESIGN §3, checked on the source: who may import whom, and no
import cycles between modules at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import affectstream

ROOT = Path(affectstream.__file__).parent


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """affectstream modules imported by ``path`` (inside functions too, unless told not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks are not run
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("affectstream")}
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


FORBIDDEN = {
    # perception never knows who consumes it
    "detectors": {"emotion", "vlm", "publish", "web", "app", "cli", "eval", "demo",
                  "benchmark", "stats"},
    "stream": {"emotion", "vlm", "publish", "web", "app", "cli", "eval", "demo", "benchmark",
               "stats"},
    "specialist": {"emotion", "vlm", "publish", "web", "app", "cli", "stream", "detectors"},
    # the emotion stage and the VLM read perception only through types.py
    "emotion": {"detectors", "stream", "specialist", "publish", "web", "app", "cli", "eval"},
    "vlm": {"detectors", "stream", "specialist", "emotion", "publish", "web", "app", "cli",
            "eval"},
    # publishing knows messages and stats, not detectors
    "publish": {"detectors", "stream", "specialist", "emotion", "vlm", "app", "cli", "eval"},
    # the run report knows messages, stats and types, not detectors or who runs it
    "report": {"detectors", "stream", "specialist", "emotion", "vlm", "web", "app", "cli",
               "eval", "demo", "benchmark", "runs", "camera"},
    # the web server knows messages, stats and the frame types, not what produced them
    "web": {"detectors", "stream", "specialist", "emotion", "vlm", "app", "cli", "eval",
            "camera", "demo", "benchmark", "stats"},
    # the message contract depends on nothing but pydantic: subscribers import it alone
    "schemas": {"detectors", "stream", "specialist", "emotion", "vlm", "publish", "web", "app",
                "cli", "eval", "camera", "demo", "benchmark", "stats", "report", "runs",
                "client", "watch", "config", "types"},
    # subscribers' side: messages off a broker, never the pipeline that makes them
    "client": {"detectors", "stream", "specialist", "emotion", "vlm", "web", "app", "cli",
               "eval", "camera", "demo", "benchmark", "stats", "report", "runs", "watch"},
    "watch": {"detectors", "stream", "specialist", "emotion", "vlm", "web", "app", "cli",
              "eval", "camera", "demo", "benchmark", "stats", "report", "runs"},
}


def test_layers_import_only_what_the_design_allows() -> None:
    broken = []
    for module, path in _modules().items():
        banned = FORBIDDEN.get(_layer(module), set())
        for imported in _imports(path, module_level_only=False):
            if _layer(imported) in banned:
                broken.append(f"{module} imports {imported}")
    assert not broken, "\n".join(sorted(broken))


def test_nothing_imports_the_cli() -> None:
    users = [m for m, p in _modules().items() if m != "affectstream.__main__" and any(
        i == "affectstream.cli" or i.startswith("affectstream.cli.")  # not .client
        for i in _imports(p, module_level_only=False))]
    assert users == []
    # its argument definitions are the CLI's alone too
    users = [m for m, p in _modules().items() if m != "affectstream.cli" and any(
        i == "affectstream.cliargs" for i in _imports(p, module_level_only=False))]
    assert users == []


def test_no_import_cycles_at_import_time() -> None:
    modules = _modules()
    graph = {m: {i for i in _imports(p, module_level_only=True) if i in modules and i != m}
             for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles
