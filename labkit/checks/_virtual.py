"""Running the learner's async code on the virtual clock, with guards.

Checks run async exercises on labkit's virtual clock in a worker thread, so a
check that waits 10 seconds of loop time takes milliseconds, and it works the
same from a script, a test or a notebook whose kernel already runs a loop.

Two guards stop code that would never end. Code that keeps waiting on the
clock is stopped after ``GIVE_UP_AFTER`` seconds of loop time. Code that keeps
the loop busy (``while ...: await asyncio.sleep(0)``) never lets the virtual
clock move at all, so no loop-time limit can fire: a wall-clock guard in the
calling thread notices the clock standing still and stops it from outside.

Shortcoming: code that loops without ever awaiting (``while True: pass``)
never hands control back to the loop, so nothing can stop it from outside:
the check gives up waiting and says so, but that thread keeps running (and
holding the CPU) until the kernel restarts. Python offers no safe way to stop
a thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import looptime

from ._engine import ClockStuck, Observed, StillRunning

# Longer than any case needs: a function still busy after this much loop time
# is waiting for something that never comes.
GIVE_UP_AFTER = 600.0

# Time is the loop's everywhere else in labkit, but this guard is the exception
# that must be: it watches for the loop's clock NOT moving, which only the wall
# clock can measure. A correct answer moves the clock every few milliseconds,
# so seconds of standing still can only be a busy loop; the limit stays
# generous so that a loaded CI machine never trips it on a right answer.
WALL_GUARD = 10.0
# Loop seconds past GIVE_UP_AFTER after which the calling thread stops code
# that swallowed the loop-time limit's cancellation.
OVERDUE_MARGIN = 60.0
# How long to wait, in real time, for stuck code to stop once told to.
STOP_GRACE = 1.0
# How often the calling thread looks at the worker's clock; short, so that
# Ctrl-C in the caller is handled promptly.
POLL_EVERY = 0.05

# Tasks left suspended when their loop had to be stopped under them: code that
# swallowed every cancellation. Kept, never destroyed: destroying one throws
# GeneratorExit into code that swallows that too, and Python then prints a
# confusing traceback about the learner's coroutine. A few small objects per
# stuck check, for the life of the kernel.
_SUSPENDED: list[asyncio.Task[Any]] = []

_wall_guard: contextvars.ContextVar[float] = contextvars.ContextVar(
    "labkit_wall_guard", default=WALL_GUARD
)


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


@contextmanager
def wall_guard(seconds: float | None) -> Iterator[None]:
    """Use ``seconds`` as the wall-clock guard for checks run inside (None: default)."""
    if seconds is None:
        yield
        return
    token = _wall_guard.set(seconds)
    try:
        yield
    finally:
        _wall_guard.reset(token)


class _VirtualRun:
    """One scenario on a fresh virtual-clock loop in its own worker thread.

    A plain daemon thread rather than labkit's ThreadPoolExecutor: leaving an
    executor's ``with`` block waits for its thread, so stuck code would keep
    the caller (and Ctrl-C) waiting forever; a daemon thread can be given up.
    """

    def __init__(self, scenario: Callable[[], Awaitable[Observed]]) -> None:
        self.scenario = scenario
        # Set once, under the lock, with a stop that may come from the caller
        # at any moment (Ctrl-C can land before the loop even exists).
        self.lock = threading.Lock()
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Observed] | None = None
        self.start_clock = 0.0
        self.result: Observed | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._work, name="labkit-check",
                                       daemon=True)

    def _work(self) -> None:
        # The same loop as labkit.runner.run_virtual (one idle cycle per jump).
        loop = looptime.new_event_loop(noop_cycles=1)
        try:
            # Refused around the whole run, not inside the coroutine, so that
            # time.sleep comes back even when the loop is stopped mid-scenario.
            with time_sleep_refused():
                with self.lock:
                    if self.stopping:
                        return  # stopped before it began: run nothing
                    self.start_clock = loop.time()
                    self.loop = loop
                    self.task = loop.create_task(_guarded(self.scenario))
                self.result = loop.run_until_complete(self.task)
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            self.error = error
        finally:
            _SUSPENDED.extend(t for t in asyncio.all_tasks(loop) if not t.done())
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except BaseException:  # noqa: BLE001, S110 - closing up regardless
                pass
            loop.close()
            self.done.set()

    def clock(self) -> float | None:
        """The loop's clock, read from the calling thread (a plain float read)."""
        return self.loop.time() if self.loop is not None else None

    def _call_in_loop(self, callback: Callable[[], Any]) -> None:
        loop = self.loop
        if loop is None or self.done.is_set():
            return
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:
            pass  # the loop closed meanwhile: it has stopped on its own

    def stop(self) -> bool:
        """Stop the scenario from the calling thread; True once the thread ended.

        First cancel the main task, which unwinds the learner's code through
        its ``finally`` blocks. Code that swallows the cancellation is then
        cut off by stopping the loop itself. Code that never awaits cannot be
        reached at all (see the module's docstring).
        """
        with self.lock:
            self.stopping = True
            loop, task = self.loop, self.task
        if loop is None or task is None:
            return self.done.wait(STOP_GRACE)  # never started: ends at once
        self._call_in_loop(task.cancel)
        if self.done.wait(STOP_GRACE):
            return True
        self._call_in_loop(loop.stop)
        return self.done.wait(STOP_GRACE)

    def wait(self, guard: float) -> str:
        """Wait for the end: "done", "stuck" (clock still) or "overdue".

        "stuck" means the clock stood still for ``guard`` s of real time.
        "overdue" means the clock ran well past ``GIVE_UP_AFTER``: the loop-time
        limit did cancel the code, and the code swallowed the cancellation
        (a bare ``except:`` around an await, say) and went on waiting.
        """
        last_clock = self.clock()
        still_since = time.monotonic()
        while not self.done.wait(POLL_EVERY):
            now, clock = time.monotonic(), self.clock()
            ran = clock - self.start_clock if clock is not None else 0.0
            if ran > GIVE_UP_AFTER + OVERDUE_MARGIN:
                return "overdue"
            if clock != last_clock:
                last_clock, still_since = clock, now
            elif now - still_since >= guard:
                return "stuck"
        return "done"


def observe_async(
    scenario: Callable[[], Awaitable[Observed]],
    *,
    wall_guard: float | None = None,
) -> Observed:
    """Run ``scenario()`` on the virtual clock and return what it observed.

    ``wall_guard`` is how many seconds of real time the loop's clock may stand
    still before the code is called stuck (default: the ``wall_guard()``
    setting, else ``WALL_GUARD``). Ctrl-C (KeyboardInterrupt) while waiting
    stops the scenario, then goes on up to the caller.
    """
    guard = _wall_guard.get() if wall_guard is None else wall_guard
    run = _VirtualRun(scenario)
    try:
        run.thread.start()
        ending = run.wait(guard)
    except KeyboardInterrupt:
        run.stop()
        raise
    if ending == "overdue":
        run.stop()
        return _still_running(" (it caught the cancellation and went on)")
    if ending == "stuck":
        clock = run.clock() or 0.0
        stopped = run.stop()
        message = (
            f"still busy after {guard:g} s of real time with the loop's clock "
            f"stuck at {clock:g} s: it never lets the clock move"
        )
        if not stopped:
            message += " (and it could not be stopped: it never awaits at all)"
        return Observed(error=ClockStuck(message))
    if run.error is not None:
        raise run.error
    if run.result is None:  # cannot happen: _guarded always returns one
        return Observed(error=RuntimeError("the check's run gave no observation"))
    return run.result


def _still_running(extra: str = "") -> Observed:
    message = f"still running after {GIVE_UP_AFTER:g} s of loop time{extra}"
    return Observed(error=StillRunning(message))


async def _guarded(scenario: Callable[[], Awaitable[Observed]]) -> Observed:
    limit = asyncio.timeout(GIVE_UP_AFTER)
    try:
        async with limit:
            return await scenario()
    except TimeoutError as error:
        # The learner's own TimeoutError (asyncio.wait_for, say) is an answer
        # to judge, not a sign that the code never finished.
        return _still_running() if limit.expired() else Observed(error=error)
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
