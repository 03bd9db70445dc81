"""The import graph of kpireport: stages only import downwards and modules form no cycle.

The allowed order is declared once, here (``LAYERS``); docs/ARCHITECTURE.md
draws the same stack. Lazy imports inside functions count like top-level
ones: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import kpireport

ROOT = Path(kpireport.__file__).parent

#: the stages from the bottom up; a module may import its own stage and the ones below
LAYERS: list[set[str]] = [
    {"_version", "_lazy", "errors", "constants"},
    {"secrets", "resources", "periods", "problems"},
    {"i18n"},
    {"data"},
    # the demo CRM produces data: it uses the contract and CrmData, and nothing in data/ imports
    # it; the source name "demo" is handed to it by report, dashboard and cli (kpireport/demo)
    {"demo"},
    {"kpis"},
    {"forecasting"},
    {"goals"},
    {"history"},
    {"plots"},
    {"report"},
    {"schedule"},
    {"dashboard"},
    {"cli"},
    {"<root>"},  # kpireport/__init__.py: re-exports the API lazily
]
RANK = {stage: i for i, layer in enumerate(LAYERS) for stage in layer}
#: back edges still to remove, each with its reason; a new one fails the test
KNOWN_BACK_EDGES: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: the report notebooks' jupytext sources are notebooks, not modules of the package
NOTEBOOKS = ROOT / "resources" / "notebooks"
MODULES = {_module_name(p) for p in ROOT.rglob("*.py") if NOTEBOOKS not in p.parents}


def _resolve(name: str) -> str:
    """``kpireport.x.y`` down to the longest prefix that is a module of the package."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        if NOTEBOOKS in path.parents:
            continue
        mod = _module_name(path)
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {  # `if TYPE_CHECKING:` imports are annotations, not dependencies
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for stmt in block.body
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + [base])
                    base = base.rstrip(".")
                targets = [f"{base}.{a.name}" for a in node.names]  # a submodule or a name
            for t in targets:
                if t == "kpireport" or t.startswith("kpireport."):
                    dep = _resolve(t)
                    if dep != mod:
                        graph[mod].add(dep)
    return graph


def stage(mod: str) -> str:
    parts = mod.split(".")
    return "<root>" if len(parts) == 1 else parts[1]


def test_no_import_from_a_lower_stage_to_a_higher_one():
    back = sorted(
        f"{mod} -> {dep}"
        for mod, deps in import_graph().items()
        for dep in deps
        if RANK[stage(dep)] > RANK[stage(mod)]
    )
    assert [e for e in back if e not in KNOWN_BACK_EDGES] == []
    assert sorted(KNOWN_BACK_EDGES - set(back)) == [], "a known back edge is gone: drop it here"


def test_every_stage_has_a_declared_place():
    assert {stage(m) for m in import_graph()} <= set(RANK)


def test_modules_form_no_import_cycle():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            # a package __init__ re-exporting its own modules is not a cycle of meaning
            if node.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert [" -> ".join(c) for c in cycles] == []


def test_the_architecture_page_draws_every_stage_in_the_declared_order():
    """docs/ARCHITECTURE.md's package tree names each stage of ``LAYERS``, bottom-up."""
    doc = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    tree = doc[doc.index("kpireport/ ") : doc.index("```", doc.index("kpireport/ "))]
    named: list[str] = []  # "  _version.py, _lazy.py, errors.py   ..." -> _version, _lazy, errors
    for line in tree.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("   "):
            head = line.strip().split("  ")[0]
            named += [w.strip().rstrip("/").removesuffix(".py") for w in head.split(",")]
    stages = {s if s != "<root>" else "__init__" for s in RANK}
    assert stages <= set(named), sorted(stages - set(named))
    order = [s for s in dict.fromkeys(named) if s in stages]
    ranks = [RANK["<root>" if s == "__init__" else s] for s in order]
    assert ranks == sorted(ranks), order
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith("__")}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages | modules <= stages, sorted((packages | modules) - stages)
