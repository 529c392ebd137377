"""Solved copies of the notebooks: for instructors, for ``make html``, for CI.

(Needs the development extras, ``pip install -e ".[dev]"``: nbformat and
nbconvert read, run and render the notebooks.)

The notebooks ship with their exercises unsolved. An exercise is a code cell
tagged ``exercise`` that defines one function; the worked answer lives in
``notebooks/solutions/<notebook>.py``, in a block that starts with a line
``# %% exercise: <function name>``. Lines above the first block are imports
for running the file on its own (tests do); they are not injected.

Three commands::

    python -m labkit.solutions solve    # build/solved/*.ipynb, unexecuted
    python -m labkit.solutions html     # execute the solved copies into html/
    python -m labkit.solutions verify build/solved
                                         # every plot cell embeds a PNG

A notebook with no exercise cells (``08_experiments``) is copied unchanged,
so every ``notebooks/*.ipynb`` has a solved copy.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["Solutions", "figure_problems", "load_solutions", "solve", "solve_all"]

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
SOLVED = NOTEBOOKS.parent / "build" / "solved"
HTML = NOTEBOOKS.parent / "html"

EXERCISE_TAG, PLOT_TAG = "exercise", "plot"
MARKER = re.compile(r"^# %% exercise: *(\w+) *$", re.MULTILINE)
DEFINES = re.compile(r"^(?:async +)?def +(\w+)", re.MULTILINE)
SOLVED_NOTE = (
    "*Instructor copy: every exercise below is filled in with its worked "
    "solution from `notebooks/solutions/`. Generated; edit the notebook and the "
    "solution file instead.*"
)


class SolutionError(ValueError):
    """A notebook and its solution file do not match."""


@dataclass(frozen=True)
class Solutions:
    """One notebook's worked solutions: imports, then one block per exercise."""

    notebook: str
    preamble: str = ""
    blocks: dict[str, str] = field(default_factory=dict)

    def namespace(self) -> dict[str, Any]:
        """Run the whole file and return its names (each solved function)."""
        names: dict[str, Any] = {"__name__": f"solutions_{self.notebook}"}
        source = "\n\n".join([self.preamble, *self.blocks.values()])
        exec(compile(source, f"solutions/{self.notebook}.py", "exec"), names)
        return names


def load_solutions(notebook: str, directory: Path = SOLUTIONS) -> Solutions:
    """Read ``<directory>/<notebook>.py``; a notebook without one has no blocks."""
    path = directory / f"{notebook}.py"
    if not path.exists():
        return Solutions(notebook)

    text = path.read_text(encoding="utf-8")
    parts = MARKER.split(text)
    names, bodies = parts[1::2], parts[2::2]
    if len(set(names)) != len(names):
        raise SolutionError(f"{path}: an exercise has two solution blocks")
    blocks = {name: body.strip() + "\n" for name, body in zip(names, bodies)}
    return Solutions(notebook, parts[0], blocks)


def exercise_name(cell: Any) -> str | None:
    """The function an exercise cell defines, or ``None`` for any other cell."""
    if cell.cell_type != "code" or EXERCISE_TAG not in cell.metadata.get("tags", []):
        return None
    found = DEFINES.search(cell.source)
    if found is None:
        raise SolutionError(f"exercise cell defines no function:\n{cell.source}")
    return found.group(1)


def solve(notebook: Any, solutions: Solutions) -> Any:
    """A copy of ``notebook`` with each exercise cell replaced by its solution.

    Raises ``SolutionError`` when an exercise has no solution, or a solution
    has no exercise cell: the two files have drifted apart.
    """
    solved = nbformat.from_dict(notebook)
    exercises = {}
    for cell in solved.cells:
        name = exercise_name(cell)
        if name is not None:
            exercises[name] = cell

    missing = set(exercises) ^ set(solutions.blocks)
    if missing:
        raise SolutionError(
            f"{solutions.notebook}: exercises and solutions differ: {sorted(missing)}"
        )
    for name, cell in exercises.items():
        cell.source = solutions.blocks[name].rstrip("\n")
    if exercises:
        note = nbformat.v4.new_markdown_cell(SOLVED_NOTE, id="instructor-copy")
        solved.cells.insert(1, note)
    solved.metadata["labkit"] = {"solved": True}
    return solved


def solve_all(source: Path = NOTEBOOKS, out: Path = SOLVED) -> list[Path]:
    """Write a solved copy of every ``source/*.ipynb`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        solved = solve(notebook, load_solutions(path.stem, source / "solutions"))
        target = out / path.name
        nbformat.write(solved, target)
        written.append(target)
    return written


def render_html(
    source: Path = NOTEBOOKS,
    solved: Path = SOLVED,
    out: Path = HTML,
) -> list[Path]:
    """Solve every notebook, execute the solved copy, write it as HTML in ``out``."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    # Each check then insists on "passed", so a broken solution cannot hide.
    os.environ["LABKIT_EXPECT"] = "passed"
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for path in solve_all(source, solved):
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=120, kernel_name=kernel_for(notebook),
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
        body, _ = HTMLExporter().from_notebook_node(notebook)
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        print(f"wrote {page}")
    return pages


def kernel_for(notebook: Any) -> str:
    """The notebook's kernel if installed (``make`` installs it), else python3.

    A conda or Binder setup made without ``make`` may lack the ``labkit``
    kernel; run from inside that environment, python3 is the same Python.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = notebook.metadata.get("kernelspec", {}).get("name", "python3")
    return wanted if wanted in KernelSpecManager().find_kernel_specs() else "python3"


def figure_problems(notebook: Any, name: str = "notebook") -> list[str]:
    """What is wrong with an executed notebook's figures: one line per problem.

    Every cell tagged ``plot`` must have an ``image/png`` output; no cell may
    have an error output.
    """
    problems = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        kinds = {kind for output in cell.get("outputs", [])
                 for kind in output.get("data", {})}
        if any(output.output_type == "error" for output in cell.get("outputs", [])):
            problems.append(f"{name}, cell {number}: error output")
        if PLOT_TAG in cell.metadata.get("tags", []) and "image/png" not in kinds:
            problems.append(f"{name}, cell {number}: plot cell without image/png")
    return problems


def verify(paths: Iterable[Path]) -> int:
    """Check the figures of executed notebooks; print a summary, return 0 or 1."""
    passed = failed = 0
    for path in paths:
        problems = figure_problems(nbformat.read(path, as_version=4), path.name)
        for problem in problems:
            print(problem)
        failed += bool(problems)
        passed += not problems
    print(f"figures: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``solve``, ``html`` or ``verify``."""
    parser = argparse.ArgumentParser(prog="python -m labkit.solutions")
    parser.add_argument("command", choices=("solve", "html", "verify"))
    parser.add_argument("paths", nargs="*", type=Path,
                        help="for verify: executed notebooks or folders of them")
    args = parser.parse_args(argv)

    if args.command == "solve":
        for path in solve_all():
            print(f"wrote {path}")
        return 0
    if args.command == "html":
        render_html()
        return 0
    return verify(_notebooks_in(args.paths or [SOLVED]))


def _notebooks_in(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return found


if __name__ == "__main__":
    sys.exit(main())
