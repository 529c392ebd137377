"""Figures for the experiments notebook: what a sweep's table says, at a glance.

Each function takes a DataFrame from ``labkit.sweeps.sweep`` and returns a
matplotlib ``Figure``; nothing is shown or saved here, and nothing blocks, so
the same call works in a notebook, a script and a headless test run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import pandas
    from matplotlib.axes import Axes

__all__ = ["LABELS", "summarize", "plot_sweep", "plot_regimes"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")

# How each column of a sweep reads on an axis.
LABELS = {
    "duration_s": "duration (simulated s)",
    "requests": "requests sent",
    "rate_limited": "429s",
    "retries": "retries",
    "succeeded": "records succeeded",
    "failed": "records failed",
    "peak_pending": "most records waiting",
    "wasted_per_record": "wasted requests per record",
    "throughput": "records per second",
}


def summarize(frame: pandas.DataFrame, knob: str | None = None) -> pandas.DataFrame:
    """The mean over seeds of every figure, one row per value of the knob.

    Adds ``throughput``, records that succeeded per simulated second.
    """
    knob = knob or frame.columns[0]
    figures = _with_throughput(frame).drop(columns="seed")
    numeric = figures.select_dtypes("number").columns.drop(knob, errors="ignore")
    return figures.groupby(knob, sort=False)[list(numeric)].mean().round(3)


def plot_sweep(
    frame: pandas.DataFrame,
    metrics: Sequence[str] = ("duration_s", "rate_limited"),
    *,
    knob: str | None = None,
    by: str | None = None,
    title: str | None = None,
) -> Figure:
    """One panel per figure against the swept knob: every seed a dot, the mean a line.

    ``by`` names a column that splits the runs into one line each, for sweeps
    concatenated with ``pandas.concat`` (``by="honour_hint"``). Numeric knobs
    get a numeric axis (logarithmic when the values span more than a factor
    of 20); other knobs (jitter modes, pacers, true/false) get one slot per
    value. A duration panel shows the floor the limit allows.
    """
    knob = knob or frame.columns[0]
    data = _with_throughput(frame)
    groups = [(None, data)] if by is None else list(data.groupby(by, sort=False))
    fig = _figure(4.2 * len(metrics), 3.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]

    for ax, metric in zip(axes, metrics, strict=True):
        for (value, group), color in zip(groups, _COLORS, strict=False):
            name = "mean over seeds" if by is None else f"{by}={value}"
            _draw_metric(ax, group, knob, metric, color, name)
        _finish_axes(ax, data[knob], knob, metric)
        if metric == "duration_s" and "floor_s" in frame.attrs:
            ax.axhline(frame.attrs["floor_s"], color="grey", linestyle="--",
                       linewidth=1, label="floor")
        if metric == metrics[0]:
            ax.legend(loc="best", fontsize="small")

    if title:
        fig.suptitle(title)
    return fig


def plot_regimes(
    instant: pandas.DataFrame,
    slow: pandas.DataFrame,
    *,
    knob: str = "max_concurrency",
) -> Figure:
    """Throughput and 429s against concurrency, instant answers beside slow ones.

    Each panel draws records per second (left axis) and 429s per record
    (right axis), so the point where concurrency stops buying speed and starts
    buying 429s can be read off. The dashed line is the most the limit allows
    for these records: all of them in the floor's time.
    """
    limit_per_second = _best_throughput(instant)
    fig = _figure(10, 3.8)
    panels = fig.subplots(1, 2, sharey=True)

    for ax, frame, name in zip(panels, (instant, slow), _regime_titles(slow),
                               strict=True):
        _draw_regime(ax, _with_throughput(frame), knob, limit_per_second)
        ax.set_title(name)
    panels[0].set_ylabel(LABELS["throughput"])

    # One legend for both panels, under them, where it hides no line.
    fig.legend(*_legend_entries(fig), loc="outside lower center", ncols=3)
    return fig


def _figure(width: float, height: float) -> Figure:
    fig = plt.figure(figsize=(width, height), layout="constrained")
    # Closed at once: the notebook shows the returned figure, and pyplot neither
    # shows it a second time at the end of the cell nor keeps it alive.
    plt.close(fig)
    return fig


def _draw_metric(
    ax: Axes,
    data: pandas.DataFrame,
    knob: str,
    metric: str,
    color: str,
    name: str,
) -> None:
    positions, _ = _positions(data[knob])
    ax.scatter(positions, data[metric], s=14, alpha=0.4, color=color)
    means = data.assign(_x=positions).groupby("_x", sort=True)[metric].mean()
    ax.plot(means.index, means.values, color=color, marker="o", label=name)


def _finish_axes(ax: Axes, values: pandas.Series, knob: str, metric: str) -> None:
    _, labels = _positions(values)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
    elif _wide(values):
        _log_axis(ax, values)
    ax.set_xlabel(knob)
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_ylim(bottom=0)


def _draw_regime(ax: Axes, data: pandas.DataFrame, knob: str, limit: float) -> None:
    means = data.groupby(knob, sort=True)[["throughput", "rate_limited"]].mean()
    records = data["succeeded"] + data["failed"]
    per_record = (data["rate_limited"] / records).groupby(data[knob]).mean()

    ax.plot(means.index, means["throughput"], marker="o", color="tab:blue",
            label="records per second")
    ax.axhline(limit, color="grey", linestyle="--", linewidth=1,
               label=f"at the floor: {limit:.1f} records/s (the limit's best)")
    _log_axis(ax, data[knob])
    ax.set_xlabel(knob)
    ax.set_ylim(0, limit * 1.3)

    twin = ax.twinx()
    twin.plot(per_record.index, per_record.values, marker="s", color="tab:red",
              label="429s per record")
    twin.set_ylabel("429s per record", color="tab:red")
    twin.set_ylim(bottom=0)


def _log_axis(ax: Axes, values: pandas.Series) -> None:
    # Ticks at the swept values, written plainly, rather than powers of ten.
    ticks = sorted(values.unique())
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    ax.minorticks_off()


def _legend_entries(fig: Figure) -> tuple[list, list[str]]:
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def _best_throughput(frame: pandas.DataFrame) -> float:
    records = (frame["succeeded"] + frame["failed"]).iloc[0]
    floor = frame.attrs.get("floor_s", 0.0)
    return records / floor if floor > 0 else float(records)


def _regime_titles(slow: pandas.DataFrame) -> tuple[str, str]:
    latency = slow["latency_ms"].iloc[0] if "latency_ms" in slow else None
    second = "answers take time" if latency is None else f"answers take ~{latency:g} ms"
    return "instant answers", second


def _with_throughput(frame: pandas.DataFrame) -> pandas.DataFrame:
    # A batch that settled at once (every record failed on its first try) has
    # no duration; its throughput is reported as 0 rather than infinite.
    duration = frame["duration_s"].where(frame["duration_s"] > 0)
    return frame.assign(throughput=(frame["succeeded"] / duration).fillna(0.0))


def _positions(values: pandas.Series) -> tuple[pandas.Series, list[str] | None]:
    """Numeric knobs sit at their value; the others get slots 0, 1, 2, ..."""
    if values.dtype.kind in "iuf":
        return values, None
    labels = list(dict.fromkeys(str(v) for v in values))
    return values.map(lambda v: labels.index(str(v))), labels


def _wide(values: pandas.Series) -> bool:
    low, high = values.min(), values.max()
    return low > 0 and high / low > 20
