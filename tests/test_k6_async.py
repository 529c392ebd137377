"""Case K6: async in a notebook without breaking asyncio.

A kernel already runs a loop, so `asyncio.run()` fails there; `nest_asyncio`,
the usual patch, breaks `asyncio.current_task()` on Python 3.14. labkit never
patches the loop: notebooks await at the top level, and its synchronous
helpers run the coroutine on a fresh loop in a worker thread.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import nbformat
from notebook_helpers import SERIES, code_cells, execute, read

from labkit import run_sync, run_virtual


async def answer(value: int) -> int:
    await asyncio.sleep(0.01)
    return value


def test_sync_helpers_work_with_no_loop_running():
    assert run_sync(answer, 1) == 1
    assert run_virtual(answer, 2) == 2


def test_sync_helpers_work_from_inside_a_running_loop():
    async def inside() -> tuple[int, int]:
        # Exactly where asyncio.run() would raise "cannot be called from a
        # running event loop".
        return run_sync(answer, 3), run_virtual(answer, 4)

    assert asyncio.run(inside()) == (3, 4)


def test_importing_labkit_leaves_asyncio_alone():
    script = textwrap.dedent("""
        import asyncio, sys
        task_class, current_task = asyncio.Task, asyncio.current_task
        import labkit, labkit.checks, labkit.plots, labkit.solutions
        from labkit import MockEndpoint, chat_request, load_records

        assert asyncio.Task is task_class and asyncio.current_task is current_task
        assert "nest_asyncio" not in sys.modules

        async def main():
            assert asyncio.current_task() is not None
            async with MockEndpoint().client() as client:
                body = chat_request(load_records()[0])
                response = await client.post("/v1/chat/completions", json=body)
            return response.status_code

        print(asyncio.run(main()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


def test_top_level_await_runs_the_pipeline_in_a_kernel(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import asyncio\n"
                                  "from labkit import Config, load_records, run_batch"),
        nbformat.v4.new_code_cell("report = await run_batch(load_records()[:12], "
                                  "Config())\nprint(report.summary())"),
        nbformat.v4.new_code_cell("print(asyncio.current_task() is not None)"),
    ])
    notebook.metadata["kernelspec"] = {"name": "labkit", "language": "python",
                                       "display_name": "Python (labkit)"}

    executed = execute(notebook, tmp_path)

    printed = [cell.outputs[0]["text"] for cell in executed.cells[1:]]
    assert printed[0].startswith("succeeded: 12, failed: 0")
    assert printed[1].strip() == "True"


def test_notebooks_use_top_level_await_and_explain_why():
    awaits = [cell for stem in SERIES[1:] for cell in code_cells(read(stem))
              if cell.source.startswith("await ") or "\nawait " in cell.source]
    assert awaits

    first_async = " ".join(c.source for c in read("02_client").cells
                           if c.cell_type == "markdown")
    for idea in ("asyncio.run()", "nest_asyncio", "current_task", "top level"):
        assert idea in first_async


def test_asyncio_run_appears_only_where_its_error_is_shown():
    for stem in SERIES:
        for cell in code_cells(read(stem)):
            if "asyncio.run(" in cell.source:
                assert "except RuntimeError" in cell.source, (stem, cell.source)
