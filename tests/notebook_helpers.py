"""Helpers for the tests that read or execute notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# The lesson notebooks, in order. 08_experiments has no exercise, so only the
# rules that hold for every notebook apply to it.
SERIES = [
    "01_config",
    "02_client",
    "03_pool",
    "04_counters",
    "05_backoff",
    "06_retry",
    "07_settle",
]


def read(stem: str) -> nbformat.NotebookNode:
    """A notebook of the series, as committed."""
    return nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def tagged(notebook: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [c for c in notebook.cells if tag in c.metadata.get("tags", [])]


def prose_lines(notebook: nbformat.NotebookNode) -> list[str]:
    """Markdown lines that are running prose: not headings, lists or tables."""
    lines = []
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.strip() and not re.match(r"\s*([#|*>-]|\d+\.)", line):
                lines.append(line)
    return lines


def execute(notebook: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel (labkit's if installed) and return it."""
    from nbclient import NotebookClient

    from labkit.solutions import kernel_for

    client = NotebookClient(notebook, timeout=120, kernel_name=kernel_for(notebook),
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook
