"""The check for 02_client: ``call_endpoint`` turns each answer into the right result.

Each case mounts a tiny endpoint that gives one kind of answer (a completion,
a 429 with or without a hint, a 400, a 500) and looks at what the learner's
function returns or raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx

from ..client import EndpointError, RateLimitError, call_llm
from ..mock_server import BASE_URL, MockEndpoint, transform_note
from ..records import Record
from ._engine import Case, Mistake, Observed, check_signature, safe_repr
from ._virtual import observe_async, timed

RECORD = Record(id="CR-0001", note="Invoice 12 was charged twice. Help!")
ANSWER = transform_note(RECORD.note)

reference = call_llm


def _scripted(status: int, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """An endpoint that gives the same answer to every request."""

    async def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json=body)

    return handle


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}}


RATE_LIMITED = _error_body("rate_limit_exceeded", "Rate limit of 10 requests per 1s")
ANSWERS = {
    "429-both-hints": (
        429, {"retry-after-ms": "250", "retry-after": "1"}, RATE_LIMITED
    ),
    "429-seconds": (429, {"retry-after": "2"}, RATE_LIMITED),
    "429-no-hint": (429, {}, RATE_LIMITED),
    "400": (400, {}, _error_body("invalid_request_error", "the note is empty")),
    "500": (500, {}, _error_body("server_error", "the model is overloaded")),
}


def observe(fn: Callable[..., Any], answer: str) -> Observed:
    """Run ``fn(client, RECORD)`` against an endpoint giving ``answer``."""

    async def scenario() -> Observed:
        if answer == "200":
            handler: Any = MockEndpoint().handle
        else:
            handler = _scripted(*ANSWERS[answer])
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            check_signature(fn, client, RECORD)
            seen = await timed(fn(client, RECORD))
        notes: tuple[str, ...] = ()
        if isinstance(seen.error, RateLimitError):
            notes = (f"its retry_after is {safe_repr(_hint_seen(seen))}",)
        elif isinstance(seen.error, EndpointError):
            notes = (f"its status is {safe_repr(getattr(seen.error, 'status', None))}",)
        return Observed(seen.value, seen.error, facts={"answer": answer}, notes=notes)

    return observe_async(scenario)


def seconds(value: object) -> bool:
    """True for a usable number of seconds: a real, finite number, 0 or more.

    The learner chooses what goes into ``retry_after`` and ``status``, so
    judges must expect anything there: text, None, a bool, NaN, a negative.
    """
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _hint_is(expected: float | None) -> Callable[[Observed], bool]:
    def right(seen: Observed) -> bool:
        if type(seen.error) is not RateLimitError:
            return False
        hint = _hint_seen(seen)
        if expected is None or hint is None:
            return hint is expected
        return seconds(hint) and math.isclose(hint, expected)

    return right


def _endpoint_error(status: int) -> Callable[[Observed], bool]:
    def right(seen: Observed) -> bool:
        error = seen.error
        return (
            isinstance(error, EndpointError)
            and not isinstance(error, RateLimitError)
            and type(getattr(error, "status", None)) is int
            and error.status == status
        )

    return right


def _case(answer: str, call: str, expected: str, right: Any) -> Case:
    return Case(call, expected, lambda fn: observe(fn, answer), right)


CASES = [
    _case("200", "the endpoint answers 200 with a completion",
          f"returns the completion's text, {ANSWER!r}",
          lambda seen: seen.error is None and seen.value == ANSWER),
    _case("429-both-hints", "429 with retry-after-ms: 250 and retry-after: 1",
          "raises RateLimitError with retry_after=0.25", _hint_is(0.25)),
    _case("429-seconds", "429 with only retry-after: 2",
          "raises RateLimitError with retry_after=2.0", _hint_is(2.0)),
    _case("429-no-hint", "429 with no retry-after header at all",
          "raises RateLimitError with retry_after=None", _hint_is(None)),
    _case("400", "400 invalid_request_error (the request itself is wrong)",
          "raises EndpointError with status=400 (not RateLimitError)",
          _endpoint_error(400)),
    _case("500", "500 server_error",
          "raises EndpointError with status=500 (not RateLimitError)",
          _endpoint_error(500)),
]


def _on(*answers: str) -> Callable[[Observed], bool]:
    """True when the failing input is one of ``answers``."""
    return lambda seen: seen.facts.get("answer") in answers


def _hint_seen(seen: Observed) -> object:
    try:
        return getattr(seen.error, "retry_after", "no hint attribute")
    except Exception:  # noqa: BLE001 - a learner property that raises
        return "no hint attribute"


def _hint_as_text(seen: Observed) -> bool:
    return isinstance(_hint_seen(seen), str | bytes) and seen.raised(RateLimitError)


def _hint_not_seconds(seen: Observed) -> bool:
    hint = _hint_seen(seen)
    return seen.raised(RateLimitError) and hint is not None and not seconds(hint)


def _status_seen(seen: Observed) -> object:
    try:
        return getattr(seen.error, "status", None)
    except Exception:  # noqa: BLE001 - a learner property that raises
        return None


def _spot(
    answers: tuple[str, ...],
    test: Callable[[Observed], bool],
) -> Callable[[Callable[..., Any], Observed], bool]:
    return lambda fn, seen: _on(*answers)(seen) and test(seen)


RATE_LIMITS = ("429-both-hints", "429-seconds", "429-no-hint")
FAILURES = ("400", "500")
EVERY_ANSWER = ("200", *RATE_LIMITS, *FAILURES)

MISTAKES = [
    Mistake(
        "forgot-await",
        lambda fn, seen: "coroutine" in str(seen.error) + repr(seen.value),
        "Something was not awaited: `client.post(...)` is a coroutine, so write "
        "`response = await client.post(...)`.",
    ),
    Mistake(
        "request-refused",
        _spot(("200",), _endpoint_error(400)),
        "The endpoint refused your request with a 400. Post to "
        "'/v1/chat/completions' with `json=chat_request(record)`.",
    ),
    Mistake(
        "returns-body",
        _spot(("200",), lambda seen: isinstance(seen.value, dict)),
        "You returned the whole JSON body. Return only the text: "
        "`response.json()['choices'][0]['message']['content']`.",
    ),
    Mistake(
        "returns-response",
        _spot(("200",), lambda seen: isinstance(seen.value, httpx.Response)),
        "You returned the response object. Return the completion's text.",
    ),
    Mistake(
        "httpx-error",
        lambda fn, seen: seen.raised(httpx.HTTPStatusError),
        "`response.raise_for_status()` raises httpx's own error, which the retry "
        "loop cannot tell apart. Raise labkit's RateLimitError on a 429 and "
        "EndpointError on anything else.",
    ),
    Mistake(
        "not-raised",
        _spot(RATE_LIMITS + FAILURES, lambda seen: seen.error is None),
        "A failure came back as a normal result. Check `response.status_code` "
        "first: raise RateLimitError on 429 and EndpointError on other errors.",
    ),
    Mistake(
        "no-hint-crashes",
        _spot(("429-no-hint", "429-seconds"),
              lambda seen: seen.raised((KeyError, ValueError, TypeError))),
        "A 429 without the header you read crashed your function. Servers send "
        "the hint in different headers, or none: `parse_retry_after` handles "
        "them all and gives None when there is no hint.",
    ),
    Mistake(
        "everything-is-a-rate-limit",
        _spot(FAILURES, lambda seen: seen.raised(RateLimitError)),
        "This error became a RateLimitError, so the retry loop would wait and "
        "send it again. Raise RateLimitError only for status 429, and "
        "EndpointError for the rest.",
    ),
    Mistake(
        "429-wrong-type",
        _spot(RATE_LIMITS, lambda seen: not seen.raised(RateLimitError)),
        "A 429 must raise RateLimitError: that type is how the retry loop knows "
        "waiting may help.",
    ),
    Mistake(
        "hint-dropped",
        _spot(("429-both-hints", "429-seconds"), lambda seen: _hint_seen(seen) is None),
        "Your RateLimitError has no retry_after, so the server's hint is lost. "
        "Pass `retry_after=parse_retry_after(response.headers)`.",
    ),
    Mistake(
        "hint-as-text",
        _spot(RATE_LIMITS, _hint_as_text),
        lambda fn, seen: (
            f"retry_after is {safe_repr(_hint_seen(seen))} (text); parse it into "
            "seconds (labkit's parse_retry_after does): "
            "`retry_after=parse_retry_after(response.headers)`."
        ),
    ),
    Mistake(
        "hint-not-seconds",
        _spot(RATE_LIMITS, _hint_not_seconds),
        lambda fn, seen: (
            f"retry_after is {safe_repr(_hint_seen(seen))}: it must be a number "
            "of seconds, 0 or more (a float), or None when there is no hint. "
            "`parse_retry_after(response.headers)` gives exactly that."
        ),
    ),
    Mistake(
        "hint-in-milliseconds",
        _spot(("429-both-hints",), lambda seen: _hint_seen(seen) == 250),
        "retry_after is in seconds: 250 ms is 0.25. `parse_retry_after` converts.",
    ),
    Mistake(
        "hint-whole-seconds",
        _spot(("429-both-hints",), lambda seen: _hint_seen(seen) == 1),
        "You read retry-after (whole seconds, rounded up) and got 1.0; the server "
        "also sent retry-after-ms: 250, which is exact. `parse_retry_after` "
        "prefers the millisecond header.",
    ),
    Mistake(
        "no-hint-means-zero",
        _spot(("429-no-hint",), lambda seen: _hint_seen(seen) == 0),
        "No hint is not 'wait 0 s'. Leave retry_after=None so the retry loop "
        "uses its own backoff.",
    ),
    Mistake(
        "status-as-text",
        _spot(FAILURES, lambda seen: seen.raised(EndpointError)
              and isinstance(_status_seen(seen), str | bytes)),
        lambda fn, seen: (
            f"status is {safe_repr(_status_seen(seen))} (text); pass the number: "
            "`status=response.status_code`."
        ),
    ),
    Mistake(
        "status-missing",
        _spot(FAILURES, lambda seen: seen.raised(EndpointError)
              and _status_seen(seen) is None),
        "Your EndpointError has status=None. Pass `status=response.status_code`, "
        "so the retry loop and the report can tell a 400 from a 500.",
    ),
    Mistake(
        "not-an-endpoint-error",
        _spot(FAILURES, lambda seen: not seen.raised(EndpointError)),
        "Raise labkit's EndpointError (with `status=response.status_code`) for "
        "any answer that is not a success and not a 429.",
    ),
]
