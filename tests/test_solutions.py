"""Solved copies: how worked solutions are stored, injected and checked."""

from __future__ import annotations

import nbformat
import pytest
from notebook_helpers import NOTEBOOKS, SERIES

from labkit.solutions import (
    SolutionError,
    exercise_name,
    load_solutions,
    solve,
    solve_all,
)

SOLUTION_FILE = '''"""Worked solutions."""

import math


# %% exercise: area
def area(radius):
    return math.pi * radius**2


# %% exercise: double
def double(x):
    return 2 * x
'''


def exercise(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["exercise"]
    return cell


def lesson(*cells):
    header = nbformat.v4.new_markdown_cell("# A lesson")
    return nbformat.v4.new_notebook(cells=[header, *cells])


@pytest.fixture
def solutions(tmp_path):
    (tmp_path / "lesson.py").write_text(SOLUTION_FILE)
    return load_solutions("lesson", tmp_path)


def test_solution_blocks_are_keyed_by_function_and_exclude_the_imports(solutions):
    assert list(solutions.blocks) == ["area", "double"]
    assert solutions.blocks["double"] == "def double(x):\n    return 2 * x\n"
    assert "import math" in solutions.preamble
    assert solutions.namespace()["area"](1) == pytest.approx(3.14159, rel=1e-5)


def test_solve_replaces_each_exercise_and_leaves_the_rest(solutions):
    plain = nbformat.v4.new_code_cell("x = 1")
    notebook = lesson(exercise("def area(radius):\n    raise NotImplementedError"),
                      plain,
                      exercise("def double(x):\n    raise NotImplementedError"))

    solved = solve(notebook, solutions)

    sources = [cell.source for cell in solved.cells]
    assert "return math.pi * radius**2" in sources[2]
    assert sources[3] == "x = 1"
    assert sources[4].startswith("def double(x):\n    return 2 * x")
    assert "Instructor copy" in sources[1]
    assert solved.metadata["labkit"] == {"solved": True}
    assert "NotImplementedError" in notebook.cells[1].source  # the original is kept


def test_an_exercise_without_a_solution_is_refused(solutions):
    notebook = lesson(exercise("def area(r):\n    raise NotImplementedError"),
                      exercise("async def volume(r):\n    raise NotImplementedError"))

    with pytest.raises(SolutionError, match="volume"):
        solve(notebook, solutions)


def test_a_solution_without_its_exercise_is_refused(solutions):
    notebook = lesson(exercise("def area(r):\n    raise NotImplementedError"))

    with pytest.raises(SolutionError, match="double"):
        solve(notebook, solutions)


def test_a_notebook_without_exercises_is_copied_as_it_is(tmp_path):
    notebook = lesson(nbformat.v4.new_code_cell("print('sweeps')"))

    solved = solve(notebook, load_solutions("no_such_file", tmp_path))

    assert [c.source for c in solved.cells] == [c.source for c in notebook.cells]


def test_exercise_name_reads_the_defined_function():
    assert exercise_name(exercise("async def watch(pool):\n    ...")) == "watch"
    assert exercise_name(nbformat.v4.new_code_cell("def helper(): ...")) is None


def test_solve_all_writes_a_solved_copy_of_every_notebook(tmp_path):
    written = solve_all(NOTEBOOKS, tmp_path)

    assert {path.stem for path in written} == {
        path.stem for path in NOTEBOOKS.glob("*.ipynb")
    }
    assert set(SERIES) <= {path.stem for path in written}
    for path in written:
        for cell in nbformat.read(path, as_version=4).cells:
            if "exercise" in cell.metadata.get("tags", []):
                assert "NotImplementedError" not in cell.source
