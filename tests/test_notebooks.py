"""The notebooks as committed: clean, navigable, and each a complete lesson.

These read the .ipynb files; executing them is `make test-notebooks`'s job
(nbmake runs every notebook as shipped and solved).
"""

from __future__ import annotations

import re
import statistics

import pytest
from notebook_helpers import (
    NOTEBOOKS,
    SERIES,
    code_cells,
    prose_lines,
    read,
    tagged,
)

from labkit import checks
from labkit.solutions import exercise_name, load_solutions, solve

ALL = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("stem", ALL)
def test_committed_without_outputs_or_execution_counts(stem):
    for cell in code_cells(read(stem)):
        assert cell.outputs == [], cell.source[:60]
        assert cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("stem", ALL)
def test_runs_on_the_projects_kernel(stem):
    assert read(stem).metadata.kernelspec.name == "labkit"


@pytest.mark.parametrize("stem", ALL)
def test_never_patches_the_loop_nor_forces_a_backend(stem):
    for cell in code_cells(read(stem)):
        assert "nest_asyncio" not in cell.source
        assert "MPLBACKEND" not in cell.source and "matplotlib.use" not in cell.source


def test_every_notebook_of_the_series_exists():
    assert set(SERIES) <= set(ALL)


@pytest.mark.parametrize("stem", SERIES)
def test_opens_with_navigation_and_a_two_line_promise(stem):
    header = read(stem).cells[0]
    number = SERIES.index(stem)

    assert header.cell_type == "markdown"
    assert "labkit" in header.source and "contents" in header.source
    assert f"notebook {number + 1} of 8" in header.source
    if number > 0:
        assert f"({SERIES[number - 1]}.ipynb)" in header.source
    following = SERIES[number + 1] if number + 1 < len(SERIES) else "08_experiments"
    assert f"({following}.ipynb)" in header.source

    promise = [line for line in header.source.splitlines() if line.strip()][-2:]
    assert promise[0].startswith("After this notebook you can")
    assert promise[1].startswith("You can also")


@pytest.mark.parametrize("stem", SERIES)
def test_each_exercise_is_a_stub_followed_by_its_check(stem):
    notebook = read(stem)
    exercises = tagged(notebook, "exercise")
    assert exercises, "every lesson has at least one exercise"

    cells = code_cells(notebook)
    for cell in exercises:
        name = exercise_name(cell)
        assert "raise NotImplementedError" in cell.source
        after = cells[cells.index(cell) + 1]
        assert after.source.strip() == f"{name} = checks.{name}({name})"
        assert checks.EXERCISES[name].notebook == stem


@pytest.mark.parametrize("stem", SERIES)
def test_every_exercise_has_a_worked_solution(stem):
    notebook = read(stem)
    solved = solve(notebook, load_solutions(stem))

    for cell in tagged(solved, "exercise"):
        assert "NotImplementedError" not in cell.source


@pytest.mark.parametrize("stem", SERIES)
def test_shows_a_plot_drawn_by_labkit(stem):
    plots = tagged(read(stem), "plot")
    assert plots
    for cell in plots:
        assert cell.source.strip().startswith("plots.")


@pytest.mark.parametrize("stem", SERIES)
def test_ends_with_questions_and_an_experiment(stem):
    ending = read(stem).cells[-1]
    assert ending.cell_type == "markdown"
    assert "## Questions" in ending.source and "## Experiment" in ending.source
    for knob in ("MAX_CONCURRENCY", "MAX_RETRIES"):
        assert knob in ending.source


def test_the_series_prompts_every_experiment_of_the_lab():
    endings = " ".join(read(stem).cells[-1].source for stem in SERIES)
    for prompt in ("MAX_CONCURRENCY", "MAX_RETRIES", "MAX_DELAY_MS", "[RETRY]",
                   "clear_queue"):
        assert prompt in endings


@pytest.mark.parametrize("stem", SERIES)
def test_prose_has_one_sentence_per_line(stem):
    two_sentences = re.compile(r"[a-z0-9)`*]\.\s+[A-Z]")
    for line in prose_lines(read(stem)):
        assert not two_sentences.search(line), line


@pytest.mark.parametrize("stem", SERIES)
def test_code_cells_stay_short(stem):
    lengths = [len(cell.source.splitlines()) for cell in code_cells(read(stem))]
    assert statistics.median(lengths) <= 3, lengths
    assert max(lengths) <= 12, lengths


@pytest.mark.parametrize("stem", SERIES)
def test_quiets_httpx(stem):
    setup = code_cells(read(stem))[0].source
    assert 'logging.getLogger("httpx").setLevel(logging.WARNING)' in setup
