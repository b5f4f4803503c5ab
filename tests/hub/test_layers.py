"""DESIGN's one-way flow: the core imports no integration, and does not import bootstrap.

The core is ``hub/``; integrations (``integrations/``, and whatever an entry point names,
third-party packages included) are found through pluggy, never imported by the core, not
even inside a function. Should an entry point ever name a module under ``hub/``, that module
counts as an integration, not as core.
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


def _imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text() if text is None else text, str(path))
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
            # `from integrations import uptime` imports the module integrations.uptime.
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _core_files(integrations: set[str]) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / "hub").rglob("*.py"))
        if _inside(_module_name(path), integrations) is None
    ]


def test_the_core_imports_no_integration() -> None:
    integrations = _integration_modules() | {"integrations"}
    wrong = []
    for path in _core_files(integrations):
        for line, module in _imports(path):
            owner = _inside(module, integrations)
            if owner is not None:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not wrong, "the core imports integrations:\n" + "\n".join(sorted(set(wrong)))


def test_the_core_does_not_import_the_composition_root() -> None:
    integrations = _integration_modules() | {"integrations"}
    # The CLI composes the hub; the pytest plugin does for tests.
    roots = {"hub.bootstrap", "hub.cli", "hub.testing"}
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _core_files(integrations)
        if _module_name(path) not in roots
        for line, module in _imports(path)
        if _inside(module, roots) is not None
    ]
    assert not wrong, "only the CLI composes the hub:\n" + "\n".join(sorted(set(wrong)))


def test_the_check_sees_imports_inside_functions_and_relative_ones() -> None:
    probe = ROOT / "integrations" / "uptime" / "probe_for_the_layer_test.py"
    text = "def f():\n    from integrations.recorder import recorder_of\n    from ..ocpp import x\n"
    found = _imports(probe, text)
    assert (2, "integrations.recorder") in found
    assert (3, "integrations.ocpp") in found


# An integration may use another's public modules only if it depends on it, directly or
# through what it declares (it is then set up first, and turning it off turns this one
# off). The one exception: the alerts' charge-success rule reads charge_success when it is
# there and judges nothing when it is not, so that `charge_success: false` leaves the other
# alert rules running. The security audit reads a config dir, not a running hub: it checks
# the OCPP chargers' password hashes and the firmware minimums where those are configured,
# and skips them where not.
_OPTIONAL_IMPORTS = {
    ("alerts", "charge_success"),
    ("security_audit", "ocpp"),
    ("security_audit", "firmware"),
}


def test_an_integration_imports_only_what_it_declares() -> None:
    from hub.plugins import PluginLoader

    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "evhub.integrations"
    ]
    loader = PluginLoader()

    def needs(domain: str) -> set[str]:
        found: set[str] = set()
        for dependency in loader.load(domain).dependencies:
            found |= {dependency, *needs(dependency)}
        return found

    wrong = []
    for domain, module in entry_points.items():
        declared = needs(domain)
        package = ROOT / module.replace(".", "/")
        files = sorted(package.rglob("*.py")) if package.is_dir() else [package.with_suffix(".py")]
        for path in files:
            for line, imported in _imports(path):
                for other, other_module in entry_points.items():
                    if other == domain or _inside(imported, {other_module}) is None:
                        continue
                    if other not in declared and (domain, other) not in _OPTIONAL_IMPORTS:
                        wrong.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not wrong, "undeclared dependencies:\n" + "\n".join(sorted(set(wrong)))
