"""The house rules of issue 22, checked on the source tree.

* one import namespace: no module imports the old top-level names (``dsp``, ``agent``, ...), and
  every package folder is one ``pyproject.toml`` installs;
* one-way layers: ``import-linter`` runs the ``[tool.importlinter]`` contracts of
  ``pyproject.toml`` over a copy of the package laid out as a wheel installs it (``stase/dsp/...``:
  the source folders are mapped by ``package-dir``, which import-linter cannot follow).
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]
OLD_TOP_LEVEL = {"dsp", "agent", "bridge", "presets", "onnx_models"}


def _package_folders() -> dict[str, Path]:
    """Installed package name -> its source folder, from package-dir (longest prefix)."""
    found = {}
    for name in SETUPTOOLS["packages"]:
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            head = ".".join(parts[:k])
            if head in PACKAGE_DIR:
                found[name] = REPO / PACKAGE_DIR[head] / Path(*parts[k:])
                break
    return found


def _source_files():
    for name, folder in _package_folders().items():
        for path in sorted(folder.glob("*.py")):
            yield name, path


def test_every_package_folder_is_installed():
    listed = {folder.resolve() for folder in _package_folders().values()}
    for name, folder in _package_folders().items():
        assert folder.is_dir(), f"{name}: {folder} does not exist"
    for top in set(PACKAGE_DIR.values()):
        for sub in (REPO / top).rglob("*"):
            if not sub.is_dir() or sub.name == "__pycache__" or "__pycache__" in sub.parts:
                continue
            has_files = any(p.is_file() for p in sub.iterdir())
            assert not has_files or sub.resolve() in listed, (
                f"{sub.relative_to(REPO)} holds files but is not in [tool.setuptools] packages")
    assert "bench" not in {n.split(".")[0] for n in SETUPTOOLS["packages"]}


def _imported_names(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_no_module_imports_the_old_top_level_names():
    roots = [p for _, p in _source_files()] + sorted((REPO / "tests").glob("*.py")) \
        + sorted((REPO / "bench").glob("*.py")) + sorted((REPO / "tools").glob("*.py"))
    wrong = [f"{p.relative_to(REPO)}:{line}: import {name}"
             for p in roots for line, name in _imported_names(p)
             if name.split(".")[0] in OLD_TOP_LEVEL]
    assert not wrong, "imports outside the stase namespace:\n" + "\n".join(wrong)


def test_layers_hold(tmp_path):
    pytest.importorskip("importlinter")
    for name, folder in _package_folders().items():
        target = tmp_path / Path(*name.split("."))
        for path in folder.glob("*.py"):  # data-only folders (no Python) are left out
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    out = subprocess.run(cmd + ["pyproject.toml", "--no-cache"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout, out.stdout[-2000:]
