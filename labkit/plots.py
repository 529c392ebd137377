"""The notebooks' figures, drawn from a timeline's DataFrame with pandas.

Each function takes ``timeline.to_dataframe()`` (or a small table built from
it) and returns a matplotlib ``Figure``: a notebook cell that ends with the
call shows it, and ``fig.savefig("x.png")`` saves it. Nothing here calls
``plt.show()``, so no plot ever waits for a window to close (a headless run
just keeps going). Every axis says its unit, and the endpoint's limit or the
pool's ceiling is drawn where it applies.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .batch import Report
from .timeline import Timeline

__all__ = [
    "attempts",
    "delay_table",
    "delays",
    "final_run",
    "per_window",
    "pool_counts",
    "wake_ups",
    "windows",
]

SERVED, REFUSED, WAITING = "tab:green", "tab:red", "tab:gray"
ACTIVE, PENDING, LIMIT = "tab:blue", "tab:orange", "black"


def _figure(ncols: int = 1, nrows: int = 1, **options: Any) -> tuple[Figure, Any]:
    """A new figure, detached from pyplot so only the returned object shows it."""
    fig, axes = plt.subplots(nrows, ncols, layout="constrained", **options)
    # Closing detaches it: the inline backend would otherwise show it a second
    # time at the end of the cell, and pyplot would keep every figure alive.
    plt.close(fig)
    return fig, axes


def _limit_line(ax: Axes, value: float, label: str) -> None:
    ax.axhline(value, color=LIMIT, linestyle="--", linewidth=1.2, label=label)


Frame = pd.DataFrame | Timeline


def _frame(run: Frame) -> pd.DataFrame:
    """A timeline's DataFrame, whether given the timeline or the DataFrame."""
    return run.to_dataframe() if isinstance(run, Timeline) else run


def _events(df: pd.DataFrame, *kinds: str) -> pd.DataFrame:
    return df[df["kind"].isin(kinds)]


def per_window(run: Frame, *, window: float = 1.0) -> pd.DataFrame:
    """Requests answered and refused (429) in each window of ``window`` seconds.

    One row per window, from the first to the last with any request, with
    columns ``served`` and ``refused``; the index is the window's start (s).
    """
    answers = _events(_frame(run), "response", "rate_limited")
    # A hair of tolerance, as the endpoint has: an answer at 1.0 s is in window 1.
    index = ((answers["time"] + 1e-9) // window).astype(int)
    table = pd.crosstab(index, answers["kind"])
    table = table.reindex(columns=["response", "rate_limited"], fill_value=0)
    table = table.reindex(range(int(index.max()) + 1), fill_value=0)
    table.index = table.index * window
    table.index.name = "window start (s)"
    return table.rename(columns={"response": "served", "rate_limited": "refused"})


def _window_bars(ax: Axes, df: Frame, window: float) -> pd.DataFrame:
    table = per_window(df, window=window)
    starts = table.index.to_numpy()
    ax.bar(starts, table["served"], width=window * 0.9, align="edge",
           color=SERVED, label="answered (200)")
    ax.bar(starts, table["refused"], width=window * 0.9, align="edge",
           bottom=table["served"], color=REFUSED, label="refused (429)")
    return table


def windows(
    runs: Mapping[str, Frame],
    *,
    limit: int,
    window: float = 1.0,
) -> Figure:
    """Side by side, for each run: requests per window, answered and refused.

    ``runs`` maps a title (``"no pool"``) to that run's timeline (or its
    DataFrame). The dashed line is the endpoint's limit per window.
    """
    fig, axes = _figure(len(runs), sharey=True, figsize=(5 * len(runs), 3.8))
    for ax, (title, run) in zip(_flat(axes), runs.items()):
        df = _frame(run)
        table = _window_bars(ax, df, window)
        _limit_line(ax, limit, f"limit: {limit} per {window:g} s")
        refused = int(table["refused"].sum())
        ax.set_title(f"{title}\n{refused} refused (429), "
                     f"last answer at {df['time'].max():.2f} s")
        ax.set_xlabel(f"time since the batch started (s), one bar per {window:g} s")
    _flat(axes)[0].set_ylabel("requests in the window")
    _flat(axes)[0].legend(loc="upper right")
    return fig


def pool_counts(run: Frame, *, ceiling: int) -> Figure:
    """Active and pending records over time; the ceiling caps active.

    Reads the ``pool`` events (samples of the two counts) of a timeline. Top:
    active, with the ceiling; bottom: pending, on its own scale.
    """
    samples = _events(_frame(run), "pool")
    fig, (top, bottom) = _figure(1, 2, sharex=True, figsize=(8, 4.6),
                                 gridspec_kw={"height_ratios": [1, 1.4]})
    _limit_line(top, ceiling, f"ceiling: MAX_CONCURRENCY={ceiling}")
    top.step(samples["time"], samples["active"], where="post", color=ACTIVE,
             linewidth=2.5, label="active (holding a slot)")
    top.set_ylim(0, ceiling * 1.35 + 1)
    top.set_ylabel("records")
    top.legend(loc="lower left", fontsize=8)
    top.set_title("The pool while the batch runs")

    bottom.step(samples["time"], samples["pending"], where="post", color=PENDING,
                linewidth=2.5, label="pending (waiting for a slot)")
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel("records")
    bottom.set_xlabel("time since the batch started (s)")
    bottom.legend(loc="upper right", fontsize=8)
    return fig


def delay_table(
    backoff: Callable[[int, float, float, random.Random], float],
    *,
    base: float,
    cap: float,
    retries: int = 10,
    draws: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Many draws of ``backoff(retry, base, cap, rng)`` for retries 1 to ``retries``.

    Columns ``retry`` and ``delay`` (s): the same shape as a timeline's
    ``wait`` events, so ``delays`` draws either.
    """
    rng = random.Random(seed)
    rows = [
        {"retry": retry, "delay": backoff(retry, base, cap, rng)}
        for retry in range(1, retries + 1)
        for _ in range(draws)
    ]
    return pd.DataFrame(rows)


def delays(table: Frame, *, cap: float, base: float | None = None) -> Figure:
    """Each retry's delay: every draw as a dot, the cap as a dashed line.

    ``table`` has ``retry`` and ``delay`` columns (see ``delay_table``), or is
    a timeline DataFrame, whose ``wait`` events are used. With ``base``, the
    un-jittered delay ``min(cap, base * 2 ** (retry - 1))`` is drawn too.
    """
    table = _frame(table)
    if "kind" in table:
        table = _events(table, "wait").rename(columns={"attempt": "retry"})
    # Spread the dots sideways so they do not hide each other; a seed of its
    # own, so the spread is not the same sequence as the draws themselves.
    spread = random.Random("sideways")
    fig, ax = _figure(figsize=(8, 3.8))
    x = [r + spread.uniform(-0.25, 0.25) for r in table["retry"]]
    ax.scatter(x, table["delay"], s=6, alpha=0.35, color=ACTIVE,
               label="one draw (with jitter)")
    if base is not None:
        retries = range(1, int(table["retry"].max()) + 1)
        plain = [min(cap, base * 2 ** min(r - 1, 64)) for r in retries]
        ax.plot(retries, plain, color=PENDING, marker="o", label="without jitter")
    _limit_line(ax, cap, f"cap: {cap:g} s")
    ax.set_xlabel("retry number (1 = first retry)")
    ax.set_ylabel("delay before the retry (s)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right")
    ax.set_title("Capped exponential backoff")
    return fig


def wake_ups(
    runs: Mapping[str, Frame],
    *,
    bin_seconds: float = 0.05,
    until: float | None = None,
    window: float = 1.0,
) -> Figure:
    """When retries went out, for each run: a herd shows as tall, thin spikes.

    Counts the retried requests (attempt 2 and later) of each timeline in bins
    of ``bin_seconds``, up to ``until`` seconds. Dotted lines mark where the
    endpoint's windows start.
    """
    fig, axes = _figure(1, len(runs), sharex=True, sharey=True,
                        figsize=(8, 2.4 * len(runs)))
    for ax, (title, run) in zip(_flat(axes), runs.items()):
        counts = _retries_per_bin(_frame(run), bin_seconds, until)
        ax.bar(counts.index, counts.to_numpy(), width=bin_seconds * 0.9,
               align="edge", color=ACTIVE)
        ax.set_title(f"{title}: at most {int(counts.max())} retries in one "
                     f"{bin_seconds * 1000:g} ms bin", fontsize=10)
        ax.set_ylabel(f"retries per\n{bin_seconds * 1000:g} ms")
        end = counts.index.max() if until is None else until
        for start in range(1, int(end / window) + 1):
            ax.axvline(start * window, color=LIMIT, linestyle=":", linewidth=0.8)
    _flat(axes)[-1].set_xlabel(
        f"time since the batch started (s); dotted: a new {window:g} s window"
    )
    return fig


def _retries_per_bin(df: pd.DataFrame, bin_seconds: float,
                     until: float | None) -> pd.Series:
    """How many retried requests (attempt 2 on) started in each bin."""
    retries = _events(df, "request")
    retries = retries[retries["attempt"] > 1]
    if until is not None:
        retries = retries[retries["time"] <= until]
    bins = ((retries["time"] + 1e-9) // bin_seconds) * bin_seconds
    return bins.value_counts().sort_index()


def attempts(run: Frame, *, records: int = 20) -> Figure:
    """Each record's story on one line: requests, 429s, waits, success.

    Shows the first ``records`` records of the timeline, first at the top.
    """
    df = _frame(run)
    ids = list(dict.fromkeys(_events(df, "request")["record_id"]))[:records]
    lane = {record_id: number for number, record_id in enumerate(ids)}
    mine = df[df["record_id"].isin(lane)]
    fig, ax = _figure(figsize=(9, 0.28 * len(ids) + 1.6))

    waits = _events(mine, "wait")
    ax.hlines(waits["record_id"].map(lane), waits["time"],
              waits["time"] + waits["delay"], color=WAITING, linewidth=3,
              label="waiting before a retry")
    _marks(ax, _events(mine, "rate_limited"), lane, "x", REFUSED, "429")
    _marks(ax, _events(mine, "response"), lane, "o", SERVED, "answered")
    _marks(ax, _events(mine, "failed"), lane, "X", LIMIT, "gave up")

    ax.set_yticks(range(len(ids)), ids, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time since the batch started (s)")
    ax.set_ylabel("record")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title(f"Attempts and waits of the first {len(ids)} records")
    return fig


def _marks(ax: Axes, events: pd.DataFrame, lane: dict[str, int], marker: str,
           color: str, label: str) -> None:
    if not events.empty:
        ax.scatter(events["time"], events["record_id"].map(lane), marker=marker,
                   color=color, s=28, label=label, zorder=3)


def final_run(
    run: Frame,
    report: Report,
    *,
    limit: int,
    window: float = 1.0,
) -> Figure:
    """Left: answered and refused requests per window against the limit, and
    the floor the limit allows. Right: how every record ended.
    """
    fig, (left, right) = _figure(2, figsize=(11, 3.8),
                                 gridspec_kw={"width_ratios": [3, 1]})
    _window_bars(left, _frame(run), window)
    _limit_line(left, limit, f"limit: {limit} per {window:g} s")
    floor = (math.ceil(len(report.outcomes) / limit) - 1) * window
    left.axvline(floor, color=LIMIT, linestyle=":",
                 label=f"floor for {len(report.outcomes)} records: {floor:g} s")
    left.axvline(report.duration, color=ACTIVE, linestyle="-.",
                 label=f"this run: {report.duration:.2f} s")
    left.set_xlabel(f"time since the batch started (s), one bar per {window:g} s")
    left.set_ylabel("requests in the window")
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8)
    left.set_title("Throughput against the limit")
    _report_bars(right, report)
    return fig


def _report_bars(ax: Axes, report: Report) -> None:
    counts = {
        "succeeded": len(report.succeeded),
        "failed": len(report.failed),
        "not attempted": len(report.not_attempted),
    }
    bars = ax.bar(list(counts), list(counts.values()),
                  color=[SERVED, REFUSED, WAITING])
    ax.bar_label(bars)
    ax.set_ylabel("records")
    ax.set_ylim(0, len(report.outcomes) * 1.15 or 1)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"Report: {report.requests} requests,\n"
                 f"{report.rate_limited} refused", fontsize=10)


def _flat(axes: Any) -> list[Axes]:
    return list(axes.flat) if hasattr(axes, "flat") else [axes]
