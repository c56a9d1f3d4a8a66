"""docs/reliability.md and the tests agree: every row names a test that exists, every hardening
and lifecycle test has a row, and the table keeps its shape (at least 25 numbered cases)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
HEADER = "| # | case | request | expected status | error body (code) | test |"
#: every test in these files must be a row of the table
COVERED = ("tests/service/test_hardening.py", "tests/service/test_lifecycle.py")


def table_rows() -> list[list[str]]:
    lines = DOC.read_text().splitlines()
    start = lines.index(HEADER)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def collected(paths: set[str]) -> set[str]:
    """Node ids pytest collects from ``paths`` (pytest's own parametrize ids, no guessing)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *sorted(paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if "::" in line}


def defined(node: str) -> bool:
    """``path::test_name`` names a module-level test function of that file."""
    path, _, name = node.partition("::")
    file = ROOT / path
    if not file.is_file():
        return False
    tree = ast.parse(file.read_text())
    return any(
        isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name
        for stmt in tree.body
    )


def test_table_rows_name_existing_tests_and_cover_the_hardening_tests() -> None:
    rows = table_rows()
    assert len(rows) >= 25
    assert [row[0] for row in rows] == [str(i) for i in range(1, len(rows) + 1)]
    named = []
    for row in rows:
        assert len(row) == 6, row
        assert re.search(r"\d{3}|exits|never", row[3]), f"row {row[0]} has no expected status"
        match = re.fullmatch(r"`(tests/[\w/]+\.py::[^`]+)`", row[5])
        assert match, f"row {row[0]}: the test column must be one pytest node id"
        named.append(match.group(1))
    assert len(set(named)) == len(named), "a test is named by two rows"
    # parametrized ids and the covered files: pytest's collection; plain test functions: the AST
    plain = {node for node in named if "[" not in node and not node.startswith(COVERED)}
    files = {node.split("::")[0] for node in set(named) - plain} | set(COVERED)
    existing = collected(files) | {node for node in plain if defined(node)}
    missing = sorted(set(named) - existing)
    assert not missing, f"rows name tests that do not exist: {missing}"
    undocumented = sorted(n for n in existing - set(named) if n.startswith(COVERED))
    assert not undocumented, f"tests without a row in docs/reliability.md: {undocumented}"
