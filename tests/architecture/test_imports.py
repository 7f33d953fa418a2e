"""The package's import rules that import-linter does not express.

``lint-imports`` (run by CI, configured in ``pyproject.toml``) checks the layers and the
absence of cycles. This test adds the third rule of ARCHITECTURE.md: a package never
imports another package's private names (``_name``) or private modules (``_module``).
The foundation modules ``bci_toolkit._checks``, ``_resources`` and ``_version`` are
shared helpers, private to the toolkit but not to any one package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bci_toolkit"
SHARED = {"bci_toolkit._checks", "bci_toolkit._resources", "bci_toolkit._version"}


def _owner(module: str) -> str:
    """The top-level package (or module) of ``bci_toolkit`` that ``module`` belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _private_imports(path: Path) -> list[str]:
    """``importer -> imported`` for every private name of another package ``path`` imports."""
    me = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[tuple[str, str | None]] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [(a.name, None) for a in node.names]
        for module, name in targets:
            if not module.startswith("bci_toolkit.") or _owner(module) == _owner(me):
                continue
            if module in SHARED or _owner(module) in SHARED:
                continue
            private_module = any(p.startswith("_") for p in module.split(".")[1:])
            private_name = name is not None and name.startswith("_")
            if private_module or private_name:
                found.append(f"{me} -> {module}{'.' + name if name else ''}")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_package_imports_another_packages_private_names(path: Path) -> None:
    assert _private_imports(path) == []


def test_the_rule_catches_a_private_import(tmp_path: Path) -> None:
    # The checker itself: a module of one package reaching into another's private name.
    fake = PACKAGE / "session" / "_probe_for_test.py"
    fake.write_text("from bci_toolkit.evaluation.runner import _limit_threads\n")
    try:
        assert _private_imports(fake) == [
            "bci_toolkit.session._probe_for_test -> "
            "bci_toolkit.evaluation.runner._limit_threads"]
    finally:
        fake.unlink()
