"""Case K7: plot cells finish headless and still embed their images.

Forcing MPLBACKEND=Agg on a kernel silently drops inline figures, so the
kernel here runs with MPLBACKEND unset, as `make test` runs the notebooks.
`make test-notebooks` checks the real notebooks the same way, through
`python -m labkit.solutions verify` on the executed solved copies.
"""

from __future__ import annotations

import nbformat
import pytest
from notebook_helpers import execute

from labkit.solutions import figure_problems

SETUP = """
from labkit import Config, Timeline, backoff_delay, load_records, plots, simulate
records = load_records()
pooled, naive, starved = Timeline(), Timeline(), Timeline()
report = simulate(records, Config(), timeline=pooled)
simulate(records, Config(honour_hint=False, jitter="none"), naive=True, timeline=naive)
simulate(records, Config(honour_hint=False, max_retries=5), timeline=starved)
def backoff(retry, base, cap, rng):
    return backoff_delay(retry, base=base, cap=cap, rng=rng)
"""

PLOT_CELLS = [
    'plots.windows({"no pool": naive, "pool": pooled}, limit=10)',
    "plots.pool_counts(pooled, ceiling=9)",
    "plots.delays(plots.delay_table(backoff, base=0.2, cap=2.0), cap=2.0, base=0.2)",
    'plots.wake_ups({"herd": naive, "spread": pooled}, until=3.0)',
    "plots.attempts(starved, records=20)",
    "plots.final_run(pooled, report, limit=10)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP)])
    for source in PLOT_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["plot"]
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {"name": "labkit", "language": "python",
                                       "display_name": "Python (labkit)"}

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MPLBACKEND", raising=False)
        return execute(notebook, tmp_path_factory.mktemp("k7"))


def test_every_plot_cell_embeds_exactly_one_png(executed):
    for cell in executed.cells[1:]:
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, cell.source


def test_verify_finds_no_problem_in_the_executed_notebook(executed):
    assert figure_problems(executed) == []


def test_verify_reports_a_plot_cell_without_an_image(executed):
    broken = nbformat.from_dict(executed)
    broken.cells[1].outputs = [nbformat.v4.new_output(
        "execute_result", data={"text/plain": "<Figure size 640x480>"})]

    assert figure_problems(broken, "broken") == [
        "broken, cell 2: plot cell without image/png"
    ]
