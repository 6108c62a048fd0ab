"""The layering rules of docs/architecture.md, checked from the source text (ast): no import is executed.

Every import counts as a dependency — module level, inside a function, under ``TYPE_CHECKING`` — so
moving an import into a function never hides a cycle or an upward dependency. Third-party imports are
judged at module level only (outside ``TYPE_CHECKING``): that is what makes ``import lotus_deploy``
light on a Jetson without torch.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Stages in dependency order: a module may import its own stage and earlier ones, never a later one.
STAGES: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("image", "synthetic"),
    ("onnxrt",),
    ("model",),
    ("export",),
    ("precision",),
    ("tensorrt",),
    ("openvino",),
    ("runtime",),
    ("stream",),
    ("bench",),
    ("serve",),
    ("pipeline",),
    ("cli",),
)
# Deprecated import paths kept for users (each re-exports its new home and warns once); exempt from ordering.
COMPAT_SHIMS = frozenset({"depth_video", "temporal", "metric", "ros_core"})
LIGHT_THIRD_PARTY = frozenset({"numpy", "PIL", "tqdm"})
# Third-party packages a stage may import at module level (everything else is imported inside functions).
MODULE_LEVEL_ALLOWED: dict[str, frozenset[str]] = {}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, e.g. lotus_deploy.export.fused
    target: str  # imported module, e.g. lotus_deploy.core.artifacts
    names: tuple[str, ...]
    line: int
    module_level: bool  # executed on import (not in a function, not under TYPE_CHECKING)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _walk(node: ast.AST, module_level: bool = True) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, False)
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            yield child, module_level
            for grandchild in child.body:
                yield grandchild, False
                yield from _walk(grandchild, False)
            for grandchild in child.orelse:
                yield grandchild, module_level
                yield from _walk(grandchild, module_level)
        else:
            yield child, module_level
            yield from _walk(child, module_level)


def imports_of(root: Path) -> list[Import]:
    """Every import statement in the package at ``root`` (a folder with __init__.py)."""
    found: list[Import] = []
    modules = {module_name(root, p) for p in root.rglob("*.py")}
    for path in sorted(root.rglob("*.py")):
        name = module_name(root, path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node, level_flag in _walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(name, alias.name, (), node.lineno, level_flag))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = tuple(alias.name for alias in node.names)
                submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
                if submodules:  # "from . import common": a dependency on each named submodule
                    found += [Import(name, sub, (), node.lineno, level_flag) for sub in submodules]
                    names = tuple(n for n in names if f"{target}.{n}" not in modules)
                    if not names:
                        continue
                found.append(Import(name, target, names, node.lineno, level_flag))
    return found


def stage_of(package: str, module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != package or len(parts) == 1:
        return None
    return parts[1]


def stage_index(stage: str) -> int | None:
    for index, group in enumerate(STAGES):
        if stage in group:
            return index
    return None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def violations(root: Path) -> list[str]:
    """Every breach of the layering rules in the package at ``root``; empty when it is clean."""
    package = root.name
    imports = imports_of(root)
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    problems: list[str] = []
    edges: dict[str, set[str]] = {}
    for imp in imports:
        src_stage = stage_of(package, imp.module)
        top = imp.target.split(".")[0]
        if top == package:
            if imp.target != imp.module and not imp.module.startswith(imp.target + "."):  # a package's own __init__ is not an edge
                edges.setdefault(imp.module, set()).add(imp.target)
            dst_stage = stage_of(package, imp.target)
            if src_stage in COMPAT_SHIMS or src_stage is None or dst_stage is None:
                pass
            elif stage_index(src_stage) is None:
                problems.append(f"{imp.module}: stage {src_stage!r} is not in the architecture's stage list")
            elif dst_stage in COMPAT_SHIMS:
                problems.append(f"{imp.module}:{imp.line} imports the deprecated path {imp.target}")
            elif stage_index(dst_stage) is None:
                problems.append(f"{imp.module}:{imp.line} imports {imp.target}, which is in no stage")
            elif stage_index(dst_stage) > stage_index(src_stage):  # type: ignore[operator]
                problems.append(f"{imp.module}:{imp.line} imports {imp.target} from the later stage {dst_stage!r}")
            private = [n for n in imp.names if _is_private(n)]
            if private and imp.target != imp.module:
                problems.append(f"{imp.module}:{imp.line} imports private name(s) {', '.join(private)} from {imp.target}")
        elif imp.module_level and top not in stdlib and top not in LIGHT_THIRD_PARTY:
            if src_stage is None or top not in MODULE_LEVEL_ALLOWED.get(src_stage, frozenset()):
                problems.append(f"{imp.module}:{imp.line} imports third-party {top!r} at module level (import it inside the function that needs it)")
    for cycle in _cycles(edges):
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems
