"""The layers run one way and every room stays small enough to read.

Imports: ``gmn_base`` imports no project package; ``gmn_weather`` (training) and
``data_prep`` (preparation) import only ``gmn_base``, never each other; only the demo driver
``gmn_demo`` and the entry points sit above both. Sizes: no module over 400 lines and no
function over 60 lines, in the packages listed in ``SIZE_CHECKED``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROJECT_PACKAGES = ("gmn_base", "gmn_weather", "data_prep", "gmn_demo")
# What each package may import from the project besides itself.
ALLOWED_IMPORTS = {
    "gmn_base": set(),
    "gmn_weather": {"gmn_base"},
    "data_prep": {"gmn_base"},
    "gmn_demo": {"gmn_base", "gmn_weather", "data_prep"},
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# A package joins this list once its restructure is done; all four are the goal.
SIZE_CHECKED = ("gmn_base", "gmn_demo", "data_prep", "gmn_weather")


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PROJECT_PACKAGES)


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_package_imports_only_the_layers_below(package):
    wrong = []
    for path in _modules(package):
        for imported in _imported_packages(path) - {package} - ALLOWED_IMPORTS[package]:
            wrong.append(f"{path.relative_to(REPO)} imports {imported}")
    assert not wrong, "layer violation:\n" + "\n".join(wrong)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{_shown(path)}:{node.lineno} {node.name}() "
                             f"is {length} lines")
    return found


@pytest.mark.parametrize("package", SIZE_CHECKED)
def test_modules_and_functions_stay_small(package):
    too_big = []
    for path in _modules(package):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(REPO)} is {lines} lines")
        too_big += _long_functions(path)
    assert not too_big, "split these:\n" + "\n".join(too_big)


def test_entry_points_stay_thin():
    too_big = []
    for name in ("train.py", "analyze.py", "predict.py"):
        too_big += _long_functions(REPO / name)
    assert not too_big, "\n".join(too_big)


def test_the_checks_see_a_violation(tmp_path):
    # The checks themselves: a module importing the wrong layer and an over-long function.
    module = tmp_path / "m.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    module.write_text(f"from data_prep import x\n\ndef f():\n{body}\n")
    assert _imported_packages(module) == {"data_prep"}
    assert len(_long_functions(module)) == 1
