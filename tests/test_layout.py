"""The code's shape follows DESIGN §1–2: no import cycles, short modules, a small top level,
and each box importing only the boxes below it. Read from the source, not from imports;
only the CLI's start is read from a Python that imports it, for what it loads."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "agent_runtime", "personalities", "platform_client", "feeds", "sandbox")
TOOLS = ("bench", "tests")
MAX_LINES = 450
MAX_TOP_LEVEL = 14
HEAVY = {"sqlalchemy", "sqlmodel", "alembic", "apscheduler", "fastapi", "docker", "numpy"}
# What each box of the orchestrator may import from the others (DESIGN §2, bottom up).
SHARED = {
    "orchestrator.settings",
    "orchestrator.lifecycle",
    "orchestrator.keys",
    "orchestrator.logs",
    "orchestrator.untrusted",
}
ALLOWED = {
    "orchestrator.state": set(),
    "orchestrator.runtime": set(),
    "orchestrator.control": {"orchestrator.state", "orchestrator.runtime"},
    "orchestrator.gateway": {"orchestrator.state", "orchestrator.control"},
    "orchestrator.operations": {
        "orchestrator.state",
        "orchestrator.control",
        "orchestrator.gateway",
        "orchestrator.runtime",
    },
    "orchestrator.api": {
        "orchestrator.state",
        "orchestrator.control",
        "orchestrator.gateway",
        "orchestrator.operations",
        "orchestrator.runtime",
    },
}


def modules(roots=PACKAGES) -> dict[str, Path]:
    found = {}
    for package in roots:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, at any depth in the file (TYPE_CHECKING too).
    `from package import x` depends on the package's `__init__` as well as on `x`."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            found.add(owner(base))
            found.update(owner(f"{base}.{alias.name}") for alias in node.names)
    return found - {None, name}


def graph(roots=PACKAGES) -> dict[str, set[str]]:
    known = modules(roots)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back():
    assert cycles(graph(PACKAGES + TOOLS)) == []


def test_no_module_is_over_450_lines():
    long = {
        name: n
        for name, path in modules(PACKAGES + TOOLS).items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_orchestrator_top_level_is_its_boxes():
    entries = [p.name for p in (ROOT / "orchestrator").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= MAX_TOP_LEVEL, sorted(entries)
    for box in ("state", "control", "runtime", "gateway", "operations", "api", "cli", "tools"):
        assert (ROOT / "orchestrator" / box / "__init__.py").read_text().startswith('"""')


def _box(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "orchestrator" and len(parts) > 1 else None


def test_each_box_imports_only_the_boxes_below_it():
    wrong = []
    for name, targets in graph().items():
        box = _box(name)
        if box not in ALLOWED:
            continue
        for target in targets:
            other = _box(target)
            if other and other != box and target not in SHARED and other not in ALLOWED[box]:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_agents_never_import_the_orchestrator_and_tools_never_import_tests():
    edges = graph(PACKAGES + TOOLS)
    leaks = [
        f"{name} -> {target}"
        for name, targets in edges.items()
        for target in targets
        if (name.startswith("agent_runtime") and target.startswith("orchestrator"))
        or (not name.startswith("tests") and target.startswith("tests"))
    ]
    assert leaks == []


def test_the_cli_starts_without_the_stores_libraries():
    # Most `fleet` commands only talk to the daemon over HTTP; loading SQLAlchemy first
    # made each one 0.7 s slower to start. Commands that need the store import it then.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import orchestrator.cli, sys; print(sorted({HEAVY!r} & set(sys.modules)))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
