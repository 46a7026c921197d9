"""The library never imports click and never prints: only clockwork/cli/ does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIBRARY = [path for folder in ("clockwork", "operations", "facts") for path in sorted((REPO / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.parent.name != "cli"], ids=lambda p: str(p.relative_to(REPO)))
def test_library_module_has_no_cli_concerns(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert "click" not in imported
    assert "pyinfra_cli" not in imported or path.parent.name == "engine", "only the engine may use pyinfra's inventory loader"
    calls = [node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    assert "print" not in calls


def test_only_the_engine_drives_pyinfra_state() -> None:
    for path in LIBRARY:
        if path.parts[-2] in ("engine", "operations", "facts"):
            continue
        source = path.read_text()
        for name in ("run_ops", "run_host_op", "connect_all", "State("):
            assert name not in source, f"{path.relative_to(REPO)} uses {name}: only clockwork/engine/ drives pyinfra"
