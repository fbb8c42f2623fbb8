"""Smaller rooms (issue 13 item 6): no module over 500 lines, no function over 60 lines.

A long module is usually two things sharing a file; a long function, several steps that
deserve names. Where size is the better choice, the reason is written down here, in
:data:`LONG_MODULES` and :data:`LONG_FUNCTIONS`, so the rule holds from now on: a new long
module or function fails this test until it is split or listed with its reason. A listed
entry that is no longer long fails too (so the list only ever shrinks).

Lines are physical lines (docstrings and comments count: they are part of what a reader has
to hold); a function's length runs from its ``def`` to its last line, nested functions
included (and measured on their own as well).
"""

from __future__ import annotations

import ast
from pathlib import Path

LASERD = Path(__file__).resolve().parents[2] / "laserd"

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

#: Module path relative to laserd/ → why it may stay over the limit.
LONG_MODULES: dict[str, str] = {
    "grbl/sim/core.py": (
        "it mirrors GRBL's protocol loop (real-time bytes, receive buffer, line buffer, "
        "execution that waits on the planner) as one piece, so it can be read against "
        "GRBL's protocol.c and serial.c side by side"
    ),
    "grbl/sim/block_parser.py": (
        "it mirrors GRBL 1.1h's gc_execute_line: the modal groups, the word checks and "
        "their error numbers, in the board's order, so it can be read against gcode.c"
    ),
    "safety/supervisor.py": (
        "one reflex, reviewed as one piece: the interlock edge, the laser-enable output, "
        "the real-time byte, the gates and the start button share state that the reflex "
        "thread and the loop must agree on, and a split would spread that agreement over "
        "several files"
    ),
    "gcode/planner.py": (
        "one model of GRBL's planner over shared batch arrays (blocks, the look-ahead window, "
        "the solve) whose docstring is the model's specification; being tuned for speed by "
        "issue 16 right now"
    ),
}

#: "module path:function qualname" → why it may stay over the limit.
LONG_FUNCTIONS: dict[str, str] = {
    "grbl/sim/block_parser.py:_plan": (
        "gc_execute_line's steps in their order (line number, tool, feed, spindle, coolant, "
        "dwell, offsets, motion), each check raising the board's error number before "
        "anything changes; split, the order would no longer read as one sequence"
    ),
    "gcode/fast.py:fast_chunk": (
        "the fast path's one vectorised pass over a chunk: its dozen intermediate arrays "
        "would only be handed between helpers, and every step is measured (bench_gcode)"
    ),
    "gcode/planner.py:Estimator._solve": (
        "the windowed backward and forward passes over one batch of blocks, as the module "
        "docstring states them (numpy over shared arrays); being tuned by issue 16"
    ),
    "gcode/planner.py:Estimator._make_blocks": (
        "moves to blocks as GRBL's planner makes them (steps, per-axis limits projected on "
        "the direction, junction speeds), numpy over one batch; being tuned by issue 16"
    ),
}


def long_modules() -> dict[str, int]:
    found = {}
    for path in sorted(LASERD.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found[path.relative_to(LASERD).as_posix()] = lines
    return found


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node
            yield from _functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def long_functions() -> dict[str, int]:
    found = {}
    for path in sorted(LASERD.rglob("*.py")):
        rel = path.relative_to(LASERD).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, node in _functions(tree):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[f"{rel}:{name}"] = lines
    return found


def test_no_module_is_over_the_limit_without_a_reason() -> None:
    new = {rel: n for rel, n in long_modules().items() if rel not in LONG_MODULES}
    assert not new, (
        f"modules over {MAX_MODULE_LINES} lines (split them along a real seam, named for what "
        f"each part holds, or list them in LONG_MODULES with the reason): {new}"
    )


def test_no_function_is_over_the_limit_without_a_reason() -> None:
    new = {name: n for name, n in long_functions().items() if name not in LONG_FUNCTIONS}
    assert not new, (
        f"functions over {MAX_FUNCTION_LINES} lines (give their steps names, or list them in "
        f"LONG_FUNCTIONS with the reason): {new}"
    )


def test_every_listed_exception_is_still_long() -> None:
    """A listed module or function that shrank below the limit leaves the list."""
    modules, functions = long_modules(), long_functions()
    stale = sorted(
        [rel for rel in LONG_MODULES if rel not in modules]
        + [n for n in LONG_FUNCTIONS if n not in functions]
    )
    assert not stale, f"remove these from the lists, they are within the limits now: {stale}"


def test_every_exception_says_why() -> None:
    for name, why in {**LONG_MODULES, **LONG_FUNCTIONS}.items():
        assert len(why.split()) >= 4, f"{name}: say why it stays long, not just that it does"


def test_functions_are_named_by_where_they_stand() -> None:
    source = (
        "def top():\n    def inner():\n        pass\n"
        "class C:\n    def m(self):\n        pass\n    async def a(self):\n        pass\n"
        "if True:\n    def guarded():\n        pass\n"
    )
    names = [name for name, _ in _functions(ast.parse(source))]
    assert names == ["top", "top.inner", "C.m", "C.a", "guarded"]
