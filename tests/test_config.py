"""Config: defaults, validation messages, environment and overrides."""

from __future__ import annotations

import pytest

from labkit import Config, ConfigError


def test_defaults_sit_under_the_limit():
    config = Config()
    assert config.max_concurrency == 9 < config.rate_limit == 10
    assert (config.base_delay, config.max_delay, config.rate_window) == (0.2, 2.0, 1.0)


@pytest.mark.parametrize(
    ("knob", "value", "words"),
    [
        ("max_concurrency", 0, ["MAX_CONCURRENCY=0", "from 1 to 10000"]),
        ("max_concurrency", 2.5, ["MAX_CONCURRENCY=2.5", "whole number"]),
        ("max_concurrency", True, ["MAX_CONCURRENCY=True", "whole number"]),
        ("max_retries", -1, ["MAX_RETRIES=-1", "from 0"]),
        ("base_delay_ms", -5, ["BASE_DELAY_MS=-5", "from 0"]),
        ("rate_limit", 0, ["RATE_LIMIT=0", "from 1"]),
        ("jitter", "some", ["JITTER='some'", "none, equal, full"]),
        ("retry_policy", "always", ["RETRY_POLICY='always'", "lab, production"]),
        ("honour_hint", "yes", ["HONOUR_HINT='yes'", "True or False"]),
    ],
)
def test_an_invalid_knob_is_refused_with_its_name_value_and_range(knob, value, words):
    with pytest.raises(ConfigError) as caught:
        Config(**{knob: value})
    for word in words:
        assert word in str(caught.value)


def test_the_cap_may_not_sit_below_the_base():
    below = "MAX_DELAY_MS=100 is below BASE_DELAY_MS=200"
    with pytest.raises(ConfigError, match=below):
        Config(base_delay_ms=200, max_delay_ms=100)


def test_config_is_frozen_and_replace_validates_again():
    config = Config()
    with pytest.raises(AttributeError):
        config.max_retries = 3  # type: ignore[misc]
    assert config.replace(max_retries=3).max_retries == 3
    with pytest.raises(ConfigError):
        config.replace(max_retries=-3)


def test_from_env_reads_knobs_and_overrides_win():
    environ = {"MAX_CONCURRENCY": "20", "JITTER": "full", "HONOUR_HINT": "off",
               "UNRELATED": "x"}
    config = Config.from_env(environ, max_retries=4, max_delay_ms=None)
    assert (config.max_concurrency, config.jitter) == (20, "full")
    assert config.honour_hint is False
    assert config.max_retries == 4
    assert config.max_delay_ms == Config().max_delay_ms


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"MAX_CONCURRENCY": "many"}, ["MAX_CONCURRENCY='many'", "environment",
                                       "whole number"]),
        ({"MAX_CONCURRENCY": "0"}, ["MAX_CONCURRENCY=0", "from 1"]),
        ({"HONOUR_HINT": "perhaps"}, ["HONOUR_HINT='perhaps'", "true or false"]),
    ],
)
def test_from_env_refuses_bad_text_naming_the_variable(environ, words):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "override"),
    [({"MAX_CONCURRENCY": "abc"}, {"max_concurrency": 5}),
     ({"HONOUR_HINT": "maybe"}, {"honour_hint": False})],
)
def test_an_overridden_variable_is_not_read_at_all(environ, override):
    config = Config.from_env(environ, **override)
    name, value = next(iter(override.items()))
    assert getattr(config, name) == value


def test_the_flag_wins_over_a_bad_environment_value_on_the_command_line(
    capsys, monkeypatch
):
    from labkit.cli import main

    monkeypatch.setenv("MAX_CONCURRENCY", "abc")
    monkeypatch.setenv("HONOUR_HINT", "maybe")
    code = main(["run", "--clock", "virtual", "-q", "--json", "--max-concurrency",
                 "5", "--honour-hint"])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize("value", ["5" * 5000, "x" * 5000, " 1" + "0" * 30])
def test_a_long_environment_value_is_cut_short_in_the_message(value):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"MAX_RETRIES": value})
    message = str(caught.value)
    assert message.startswith("MAX_RETRIES=") and len(message) < 200
    assert "environment" in message and "from 0 to 1000" in message
