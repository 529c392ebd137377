"""The plot helpers: a Figure each, labelled with units, the limit drawn.

The runs are simulated once per module on the virtual clock; no test sleeps.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from labkit import Config, Timeline, backoff_delay, load_records, plots, simulate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs():
    """Timelines of a pooled, a naive and a starved run, and the pooled report."""
    records = load_records()
    found = {}
    for name, config, naive in [
        ("pooled", Config(), False),
        ("naive", Config(honour_hint=False, jitter="none"), True),
        ("starved", Config(honour_hint=False, max_retries=5), False),
    ]:
        timeline = Timeline()
        found[f"{name}_report"] = simulate(records, config, naive=naive,
                                           timeline=timeline)
        found[name] = timeline
    return found


def reference_backoff(retry, base, cap, rng):
    return backoff_delay(retry, base=base, cap=cap, rng=rng)


def every_figure(runs):
    """Each helper, called as the notebooks call it."""
    table = plots.delay_table(reference_backoff, base=0.2, cap=2.0, draws=20)
    return {
        "windows": plots.windows({"no pool": runs["naive"], "pool": runs["pooled"]},
                                 limit=10),
        "pool_counts": plots.pool_counts(runs["pooled"], ceiling=9),
        "delays": plots.delays(table, cap=2.0, base=0.2),
        "delays_from_timeline": plots.delays(runs["starved"], cap=2.0),
        "wake_ups": plots.wake_ups({"herd": runs["naive"], "spread": runs["pooled"]},
                                   until=3.0),
        "attempts": plots.attempts(runs["starved"], records=15),
        "final_run": plots.final_run(runs["pooled"], runs["pooled_report"], limit=10),
    }


@pytest.fixture(scope="module")
def figures(runs):
    plt.close("all")
    return every_figure(runs)


def test_every_helper_returns_a_figure_that_saves_as_png(figures):
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")

        assert isinstance(figure, Figure), name
        assert buffer.getvalue().startswith(PNG_SIGNATURE), name


def test_helpers_leave_no_figure_open_in_pyplot(figures):
    # An open pyplot figure would be shown a second time by the inline backend.
    assert plt.get_fignums() == []


def test_helpers_never_call_show(runs, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plt.show() blocks a headless run")

    monkeypatch.setattr(plt, "show", refuse)
    assert len(every_figure(runs)) == 7


def test_axes_are_labelled_with_units(figures):
    x_units = ("(s)", "retry number")
    y_units = ("record", "requests", "retries", "(s)")
    for name, figure in figures.items():
        xlabels = " ".join(ax.get_xlabel() for ax in figure.axes)
        ylabels = " ".join(ax.get_ylabel() for ax in figure.axes)

        assert any(unit in xlabels for unit in x_units), (name, xlabels)
        assert any(unit in ylabels for unit in y_units), (name, ylabels)
        for ax in figure.axes:
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title(), name


def _horizontal_lines(figure):
    return {
        round(line.get_ydata()[0], 6)
        for ax in figure.axes
        for line in ax.get_lines()
        if len(set(line.get_ydata())) == 1 and line.get_linestyle() == "--"
    }


def test_the_limit_or_ceiling_is_drawn(figures):
    assert 10 in _horizontal_lines(figures["windows"])
    assert 10 in _horizontal_lines(figures["final_run"])
    assert 9 in _horizontal_lines(figures["pool_counts"])
    assert 2.0 in _horizontal_lines(figures["delays"])


def test_per_window_counts_every_answer_once(runs):
    table = plots.per_window(runs["pooled"])
    report = runs["pooled_report"]

    assert table["served"].sum() == len(report.succeeded)
    assert table["refused"].sum() == report.rate_limited
    assert (table["served"] <= 10).all()


def test_wake_ups_shows_the_herd(runs):
    figure = plots.wake_ups({"herd": runs["naive"]}, until=3.0)
    tallest = max(bar.get_height() for bar in figure.axes[0].patches)
    assert tallest == 90  # every refused record came back at the same instant


def test_attempts_marks_records_that_gave_up(runs):
    figure = plots.attempts(runs["starved"], records=100)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "gave up" in labels and "429" in labels
