"""The house rules of the code base, checked: short functions, few positional parameters, a tree
clean under the linter."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 80
MAX_POSITIONAL = 8


def _functions():
    for path in sorted((ROOT / "magan").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(ROOT), node


def _is_argparse_declaration(node) -> bool:
    """A function whose statements are mostly ``add_argument`` / ``add_parser`` calls."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute)
             and n.func.attr in ("add_argument", "add_parser", "add_subparsers",
                                 "add_mutually_exclusive_group", "set_defaults")]
    return len(calls) >= max(3, len(node.body) // 2)


def test_functions_are_short():
    long = [f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, node in _functions()
            if node.end_lineno - node.lineno + 1 > MAX_LINES
            and not _is_argparse_declaration(node)]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_few_positional_parameters():
    many = []
    for path, node in _functions():
        names = [a.arg for a in node.args.posonlyargs + node.args.args]
        if names and names[0] in ("self", "cls"):
            names = names[1:]
        if len(names) > MAX_POSITIONAL:
            many.append(f"{path}:{node.lineno} {node.name} ({len(names)} positional)")
    assert not many, f"functions with over {MAX_POSITIONAL} positional parameters: {many}"


RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install '.[test]')")
def test_tree_is_clean_under_ruff():
    """The configuration is pyproject.toml's [tool.ruff]."""
    out = subprocess.run([RUFF, "check", "--no-cache", "magan", "tests", "scripts"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_old_module_paths_still_import_with_a_warning():
    """magan 0.1's flat module paths are served for one more release, naming the new path."""
    import importlib

    sys.modules.pop("magan.networks", None)
    with pytest.warns(DeprecationWarning, match="magan.networks moved to magan.nn.models"):
        old = importlib.import_module("magan.networks")
    assert old is importlib.import_module("magan.nn.models")
    assert old.__spec__.name == "magan.nn.models"  # its own spec, not the old name's
    from magan.io import atomic_write_json  # noqa: F401 - importable from the old path


def test_public_api_names_resolve():
    import magan

    for name in magan.__all__:
        assert getattr(magan, name) is not None, name
