"""Sweeps: one row per value and seed, the same row for the same seed."""

from __future__ import annotations

import io

import pytest
from matplotlib.figure import Figure

from labkit import Config, ConfigError, Scenario, floor_seconds, sweep
from labkit.experiment_plots import plot_regimes, plot_sweep, summarize
from labkit.sweeps import COLUMNS


@pytest.fixture(scope="module")
def concurrency():
    return sweep("max_concurrency", [1, 9, 50], seeds=[0, 1])


def test_a_sweep_has_one_row_per_value_and_seed(concurrency):
    assert list(concurrency.columns) == ["max_concurrency", *COLUMNS]
    assert list(concurrency["max_concurrency"]) == [1, 1, 9, 9, 50, 50]
    assert list(concurrency["seed"]) == [0, 1] * 3
    assert (concurrency["succeeded"] + concurrency["failed"] == 100).all()


def test_the_same_seed_gives_the_same_row(concurrency):
    # At 50 the jitter draws decide who retries when, so the seed matters.
    again = sweep("max_concurrency", [50], seeds=[1])
    expected = concurrency.query("max_concurrency == 50 and seed == 1")
    assert again.equals(expected.reset_index(drop=True))


def test_the_figures_match_what_the_default_run_is_known_to_cost(concurrency):
    default = concurrency.query("max_concurrency == 9 and seed == 0").iloc[0]
    assert default["duration_s"] == pytest.approx(9.0)
    assert (default["requests"], default["rate_limited"]) == (181, 81)
    assert default["peak_pending"] == 91  # 100 admitted, 9 in the pool
    assert default["wasted_per_record"] == pytest.approx(0.81)
    assert concurrency.attrs["floor_s"] == 9.0


def test_concurrency_above_the_limit_buys_429s_not_speed(concurrency):
    means = concurrency.groupby("max_concurrency").mean()
    assert means.loc[1, "rate_limited"] < means.loc[9, "rate_limited"]
    assert means.loc[9, "rate_limited"] < means.loc[50, "rate_limited"]
    assert means["duration_s"].min() >= 9.0


def test_knobs_outside_config_can_be_swept_too(records):
    latency = sweep("latency_ms", [0, 200], seeds=[0], records=records[:20],
                    max_concurrency=1)
    assert latency["duration_s"].iloc[1] > latency["duration_s"].iloc[0] + 2

    pacing = sweep("pacing", ["none", "window"], seeds=[0])
    assert list(pacing["rate_limited"]) == [81, 0]


def test_fixed_knobs_get_a_column_of_their_own():
    frame = sweep("JITTER", ["none", "full"], seeds=[0], HONOUR_HINT=False)
    assert list(frame.columns[:2]) == ["jitter", "honour_hint"]
    assert not frame["honour_hint"].any()

    # Synchronised retries collide again; jitter spreads them out.
    none, full = frame["rate_limited"]
    assert none > full


def test_an_unknown_knob_names_the_ones_that_exist():
    with pytest.raises(ValueError, match="max_concurrency.*pacing"):
        sweep("speed", [1])


def test_a_bad_value_is_refused_by_the_config_itself():
    with pytest.raises(ConfigError, match="MAX_RETRIES"):
        sweep("max_retries", [-1])


def test_a_scenario_reads_and_changes_knobs_wherever_they_live():
    scenario = Scenario().with_knobs(MAX_CONCURRENCY=20, latency_ms=300)
    assert scenario.config.max_concurrency == 20
    assert (scenario.knob("max_concurrency"), scenario.knob("latency_ms")) == (20, 300)
    with pytest.raises(ValueError, match="pacing"):
        Scenario(pacing="faster")


def test_the_floor_is_the_last_window_opening():
    assert floor_seconds(100, Config()) == 9.0
    assert floor_seconds(101, Config()) == 10.0
    assert floor_seconds(10, Config()) == 0.0


def test_the_plots_are_figures_that_save_as_png(concurrency):
    slow = concurrency.assign(latency_ms=500)
    for figure in (plot_sweep(concurrency, ["duration_s", "rate_limited"]),
                   plot_sweep(concurrency, ["failed"], by="seed"),
                   plot_regimes(concurrency, slow)):
        assert isinstance(figure, Figure)
        png = io.BytesIO()
        figure.savefig(png, format="png")
        assert png.getvalue().startswith(b"\x89PNG")


def test_a_summary_is_the_mean_over_seeds(concurrency):
    summary = summarize(concurrency)
    assert list(summary.index) == [1, 9, 50]
    assert summary.loc[9, "rate_limited"] == 81
    assert summary.loc[9, "throughput"] == pytest.approx(100 / 9, abs=1e-3)
