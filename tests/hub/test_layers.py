"""DESIGN's one-way flow: the core imports no integration, and does not import bootstrap.

The core is ``hub/`` minus the integrations that are loaded by entry point (built-in ones
such as the recorder live under ``hub/`` too); an integration is found through pluggy, never
imported by the core, not even inside a function.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _integration_modules() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(pyproject["project"]["entry-points"]["evhub.integrations"].values())


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _inside(module: str, packages: set[str]) -> str | None:
    for package in packages:
        if module == package or module.startswith(package + "."):
            return package
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from hub import uptime` imports the module hub.uptime.
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _core_files(integrations: set[str]) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / "hub").rglob("*.py"))
        if _inside(_module_name(path), integrations) is None
    ]


def test_the_core_imports_no_integration() -> None:
    integrations = _integration_modules | set() if False else _integration_modules()
    integrations |= {"integrations"}
    wrong = []
    for path in _core_files(integrations):
        for line, module in _imports(path):
            owner = _inside(module, integrations)
            if owner is not None:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "the core imports integrations:\n" + "\n".join(sorted(set(wrong)))


def test_the_core_does_not_import_the_composition_root() -> None:
    integrations = _integration_modules() | {"integrations"}
    roots = {"hub.bootstrap", "hub.cli"}
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _core_files(integrations)
        if _module_name(path) not in roots
        for line, module in _imports(path)
        if _inside(module, roots) is not None
    ]
    assert not wrong, "only the CLI composes the hub:\n" + "\n".join(sorted(set(wrong)))


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from hub.recorder import get_recorder\n")
    assert (2, "hub.recorder") in _imports_of(source)


def _imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
    return found
