"""The type stubs: checked by mypy --strict, and in step with the native module."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

import runward
from runward import _runward

HERE = Path(__file__).parent
STUB = Path(runward.__file__).parent / "_runward.pyi"


def stub_members() -> Dict[str, Set[str]]:
    tree = ast.parse(STUB.read_text())
    classes: Dict[str, Set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("Health", "Server", "Outcome", "Runbook", "Flags", "Runs", "Scheduler", "Engine"):
            classes[node.name] = {
                item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    return classes


def test_stubs_match_the_native_module() -> None:
    for name, members in stub_members().items():
        runtime = {m for m in dir(getattr(_runward, name)) if not m.startswith("_")}
        declared = {m for m in members if not m.startswith("_")}
        assert declared == runtime, f"{name}: stub-only {declared - runtime}, native-only {runtime - declared}"


@pytest.mark.parametrize("name", ["Health", "Runbook", "Flags", "Runs", "Scheduler", "Engine"])
def test_stub_signatures_match(name: str) -> None:
    tree = ast.parse(STUB.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    for item in cls.body:
        if not isinstance(item, ast.FunctionDef) or item.name.startswith("_"):
            continue
        native = getattr(getattr(_runward, name), item.name)
        if isinstance(native, property) or not callable(native):
            continue
        try:
            params = list(inspect.signature(native).parameters)
        except (TypeError, ValueError):
            continue
        declared = [a.arg for a in item.args.args + item.args.kwonlyargs]
        assert declared == params, item.name


def test_package_is_typed() -> None:
    assert (Path(runward.__file__).parent / "py.typed").exists()


def test_mypy_strict_accepts_typical_use() -> None:
    if shutil.which("mypy") is None and not _has_module("mypy"):
        pytest.skip("mypy is not installed (see requirements-test.txt)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(HERE / "typed_usage.py")],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
