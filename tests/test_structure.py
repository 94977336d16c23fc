"""The code's shape holds: callers ask a task's traits, not its name; the portfolio's members are told apart by
their interface, not by a sentinel string; the estimators and the portfolio keep short functions."""

from __future__ import annotations

import ast
from pathlib import Path

from mmfuse.registry import TASKS
import mmfuse.tasks  # noqa: F401  (registers the tasks)

SOURCE = Path(__file__).resolve().parents[1] / "src" / "mmfuse"


def literal_strings(node: ast.AST) -> list[str]:
    """The string constants of a comparison operand: a literal, or a tuple / list / set of literals."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for element in node.elts for s in literal_strings(element)]
    return []


def compared_literals(tree: ast.AST, wanted: set[str]) -> list[tuple[int, str]]:
    """(line, literal) of each comparison (==, !=, in, not in, is) with one of ``wanted`` as an operand."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                found += [(node.lineno, s) for s in literal_strings(operand) if s in wanted]
        elif isinstance(node, ast.match_case) and isinstance(node.pattern, ast.MatchValue):
            found += [(node.pattern.lineno, s) for s in literal_strings(node.pattern.value) if s in wanted]
    return found


def sources(*, outside: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted(SOURCE.rglob("*.py"))
            if not any(p.relative_to(SOURCE).as_posix().startswith(o) for o in outside)]


def test_no_task_name_is_compared_outside_the_tasks():
    names = set(TASKS.names())
    found = [f"{path.relative_to(SOURCE)}:{line} {literal!r}" for path in sources(outside=("tasks/",))
             for line, literal in compared_literals(ast.parse(path.read_text()), names)]
    assert not found, "compare a task's traits, not its name: " + "; ".join(found)


def test_the_scan_sees_each_form_of_comparison():
    code = ('a == "binary"\n"regression" != b\nc in ("multiclass", "x")\nd not in ["multilabel"]\n'
            'match e:\n    case "retrieval": pass\nf == "image"\n')
    assert [line for line, _ in compared_literals(ast.parse(code), set(TASKS.names()))] == [1, 2, 3, 4, 6]


def test_the_network_is_no_sentinel_outside_its_member():
    found = [f"{path.relative_to(SOURCE)}:{line}" for path in sources(outside=("portfolio/network.py",))
             for line, _ in compared_literals(ast.parse(path.read_text()), {"network"})]
    assert not found, "ask a member's traits (reads_views, saved_apart, open_ended), not its name: " + "; ".join(found)


def long_functions(path: Path, limit: int) -> list[str]:
    """The functions of a file longer than ``limit`` lines (decorators and docstring included)."""
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(SOURCE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_the_estimators_and_the_portfolio_keep_short_functions_and_files():
    found = [f for path in sources() if path.relative_to(SOURCE).as_posix().startswith(("estimators/", "portfolio/"))
             for f in long_functions(path, 40)]
    assert not found, "functions over 40 lines: " + "; ".join(found)
    lines = {name: len((SOURCE / "estimators" / name).read_text().splitlines()) for name in ("predictor.py", "base.py")}
    assert lines["predictor.py"] <= 250 and lines["base.py"] <= 400, lines
