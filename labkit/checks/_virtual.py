"""Running the learner's async code on the virtual clock, with guards.

Checks run async exercises on labkit's virtual clock in a worker thread, so a
check that waits 10 seconds of loop time takes milliseconds, and it works the
same from a script, a test or a notebook whose kernel already runs a loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..runner import run_virtual
from ._engine import Observed

# Longer than any case needs: a function still busy after this much loop time
# is waiting for something that never comes.
GIVE_UP_AFTER = 600.0


class Runaway(Exception):
    """The learner's code looped without ever letting the clock move."""


class Blocked(BaseException):
    """The learner's code called ``time.sleep``, which would stop the whole loop.

    A BaseException, so that a retry loop's ``except Exception`` lets it out.
    """


@contextmanager
def time_sleep_refused() -> Iterator[None]:
    """Make ``time.sleep`` raise ``Blocked`` in this thread, and only here.

    A check runs on a virtual clock, where a real sleep would block for real
    and teach nothing; other threads (the kernel's own) sleep as usual.
    """
    real_sleep, owner = time.sleep, threading.get_ident()

    def refuse(seconds: float) -> None:
        if threading.get_ident() != owner:
            return real_sleep(seconds)
        raise Blocked(f"time.sleep({seconds:g}) blocks the event loop")

    time.sleep = refuse
    try:
        yield
    finally:
        time.sleep = real_sleep


def observe_async(scenario: Callable[[], Awaitable[Observed]]) -> Observed:
    """Run ``scenario()`` on the virtual clock and return what it observed."""
    return run_virtual(_guarded, scenario)


async def _guarded(scenario: Callable[[], Awaitable[Observed]]) -> Observed:
    try:
        with time_sleep_refused():
            async with asyncio.timeout(GIVE_UP_AFTER):
                return await scenario()
    except TimeoutError:
        message = f"still running after {GIVE_UP_AFTER:g} s of loop time"
        return Observed(error=TimeoutError(message))
    except (Exception, Blocked) as error:  # noqa: BLE001 - e.g. a sync def
        return Observed(error=error)
    finally:
        await _cancel_leftovers()


async def _cancel_leftovers() -> None:
    """Cancel tasks the learner's code left running, as ``asyncio.run`` does."""
    leftovers = asyncio.all_tasks() - {asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=1.0)


def close_unstarted(coroutines: Iterable[Any]) -> None:
    """Close coroutines the learner never awaited, so Python does not warn."""
    for coroutine in coroutines:
        if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
            coroutine.close()


async def timed(awaitable: Awaitable[Any]) -> Observed:
    """Await one call of the learner's function, noting how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        seen = Observed(value=await awaitable)
    except Exception as error:  # noqa: BLE001 - the error is the observation
        seen = Observed(error=error)
    took = loop.time() - start
    return seen.noting(f"took {took:.3g} s of loop time", took=took)
