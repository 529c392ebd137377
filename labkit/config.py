"""The knobs of a batch run, validated once and then frozen.

Every knob has a default, an allowed range and an environment variable of the
same name (``MAX_CONCURRENCY=20 make run``). A value outside its range is
refused with a ``ConfigError`` that names the knob, the value and the range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .backoff import JITTER_MODES

__all__ = ["Config", "ConfigError", "KNOBS"]

RETRY_POLICIES = ("lab", "production")


class ConfigError(ValueError):
    """A knob with a value outside its allowed range."""


@dataclass(frozen=True)
class Knob:
    """One knob's name, its type and its inclusive range (``None``: open)."""

    name: str
    kind: type
    low: float | None
    high: float | None
    help: str
    choices: tuple[str, ...] = ()

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.high is None:
            return f"{self.kind.__name__} >= {self.low:g}"
        return f"{self.kind.__name__} from {self.low:g} to {self.high:g}"


KNOBS: dict[str, Knob] = {
    knob.name: knob
    for knob in [
        Knob("MAX_CONCURRENCY", int, 1, 10_000, "records in flight at once"),
        Knob("MAX_RETRIES", int, 0, 1_000, "retries after the first try"),
        Knob("BASE_DELAY_MS", int, 0, 600_000, "delay before the first retry"),
        Knob("MAX_DELAY_MS", int, 0, 600_000, "cap on any one retry delay"),
        Knob("RATE_LIMIT", int, 1, 1_000_000, "requests the endpoint accepts"),
        Knob("RATE_WINDOW_MS", int, 1, 3_600_000, "length of the endpoint's window"),
        Knob("REQUEST_TIMEOUT_MS", int, 1, 600_000, "deadline for one request"),
        Knob("JITTER", str, None, None, "how backoff spreads", JITTER_MODES),
        Knob("HONOUR_HINT", bool, None, None, "wait at least Retry-After"),
        Knob("RETRY_POLICY", str, None, None, "what is retried", RETRY_POLICIES),
    ]
}


@dataclass(frozen=True)
class Config:
    """The validated knobs of one run. Build it with keywords or ``from_env``.

    ``max_concurrency`` is 9 under a limit of 10 so the pool never fills a
    window on its own; ``max_retries`` counts retries after the first try.

    >>> Config(max_concurrency=4).max_concurrency
    4
    """

    max_concurrency: int = 9
    max_retries: int = 10
    base_delay_ms: int = 200
    max_delay_ms: int = 2_000
    rate_limit: int = 10
    rate_window_ms: int = 1_000
    request_timeout_ms: int = 10_000
    jitter: str = "equal"
    honour_hint: bool = True
    retry_policy: str = "lab"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check(KNOBS[field.name.upper()], getattr(self, field.name))

        if self.max_delay_ms < self.base_delay_ms:
            raise ConfigError(
                f"MAX_DELAY_MS={self.max_delay_ms} is below "
                f"BASE_DELAY_MS={self.base_delay_ms}: the cap must be at least "
                "the base delay"
            )

    @property
    def base_delay(self) -> float:
        """The base delay in seconds."""
        return self.base_delay_ms / 1000

    @property
    def max_delay(self) -> float:
        """The delay cap in seconds."""
        return self.max_delay_ms / 1000

    @property
    def rate_window(self) -> float:
        """The endpoint's window in seconds."""
        return self.rate_window_ms / 1000

    @property
    def request_timeout(self) -> float:
        """The deadline for one request in seconds."""
        return self.request_timeout_ms / 1000

    def replace(self, **changes: Any) -> Config:
        """A copy with some knobs changed, validated again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        **overrides: Any,
    ) -> Config:
        """Read knobs from environment variables, then apply ``overrides``.

        Only variables named like a knob are read (``MAX_RETRIES=3``);
        overrides whose value is ``None`` are ignored, so parsed command-line
        flags can be passed straight through. A variable whose knob is
        overridden is not read at all: the override wins, so a bad value
        there must not stop the run.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        values: dict[str, Any] = {}
        for name, knob in KNOBS.items():
            if name in environ and name.lower() not in given:
                values[name.lower()] = parse_knob(knob, environ[name], "environment")
        values.update(given)
        return cls(**values)


# Longer text is cut in messages: a value of 5000 digits helps nobody on screen.
_SHOWN_CHARACTERS = 40

# No allowed number has more digits than this (the largest is 3 600 000), so
# longer text is refused before int() spends time on it or refuses it itself
# for having over 4300 digits, with a message about digits, not the range.
_LONGEST_NUMBER = 20


def parse_knob(knob: Knob, text: str, source: str) -> Any:
    """Turn a knob's text (from the environment or a flag) into its type."""
    text = text.strip()
    shown = _shown(text)
    if knob.kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{knob.name}={shown} (from {source}) is not true or false")
    if knob.kind is str:
        if knob.choices and text not in knob.choices and len(text) > _SHOWN_CHARACTERS:
            # Refused here only when too long to echo; a short wrong value
            # gets Config's usual message.
            raise ConfigError(
                f"{knob.name}={shown} (from {source}) is not allowed; "
                f"allowed: {knob.describe_range()}"
            )
        return text
    digits = text.lstrip("+-")
    if len(digits) > _LONGEST_NUMBER and digits.isdecimal():
        raise ConfigError(
            f"{knob.name}={shown} (from {source}) is out of range; "
            f"allowed: {knob.describe_range()} ({knob.help})"
        )
    try:
        return int(text)
    except ValueError:
        raise ConfigError(
            f"{knob.name}={shown} (from {source}) is not a whole number; "
            f"allowed: {knob.describe_range()}"
        ) from None


def _shown(text: str) -> str:
    """``text`` as a message shows it: quoted, and cut short when long."""
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def _check(knob: Knob, value: Any) -> None:
    if knob.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{knob.name}={value!r} must be True or False")
        return
    if knob.choices:
        if value not in knob.choices:
            raise ConfigError(
                f"{knob.name}={value!r} is not allowed; "
                f"allowed: {knob.describe_range()}"
            )
        return

    # bool is an int in Python, and True milliseconds is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{knob.name}={value!r} must be a whole number; "
            f"allowed: {knob.describe_range()}"
        )
    high = math.inf if knob.high is None else knob.high
    if not knob.low <= value <= high:
        raise ConfigError(
            f"{knob.name}={value} is out of range; "
            f"allowed: {knob.describe_range()} ({knob.help})"
        )
