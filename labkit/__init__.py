"""labkit: send a batch of LLM calls through a rate-limited endpoint, and lose nothing.

The reference implementation behind the notebooks, one module per lesson:
``config`` (the knobs), ``mock_server`` (the endpoint), ``client`` (the call
and its errors), ``pool`` (the concurrency cap), ``backoff`` (how long to
wait), ``retry`` (whether to try again), ``batch`` (settling every record),
``timeline`` (what happened, when) and ``runner`` (real or virtual clock);
beyond the lab, ``pacing`` (no 429s at all) and ``sweep`` (experiments).
"""

from .backoff import backoff_delay
from .batch import BatchRun, Outcome, Report, partition, run_batch, settle
from .client import (
    EndpointError,
    RateLimitError,
    call_llm,
    chat_request,
    parse_retry_after,
)
from .config import Config, ConfigError
from .mock_server import Faults, MockEndpoint
from .pool import Pool, QueueCleared
from .pacing import WindowPacer, make_pacer
from .records import Record, RecordsError, generate_records, load_records
from .retry import LAB, PRODUCTION, RetriesExhausted, with_retry
from .runner import run_sync, run_virtual, simulate
from .sweeps import Scenario, floor_seconds, sweep
from .timeline import Event, Timeline

__all__ = [
    "BatchRun",
    "Config",
    "ConfigError",
    "EndpointError",
    "Event",
    "Faults",
    "LAB",
    "MockEndpoint",
    "Outcome",
    "PRODUCTION",
    "Pool",
    "QueueCleared",
    "RateLimitError",
    "Record",
    "RecordsError",
    "Report",
    "RetriesExhausted",
    "Scenario",
    "Timeline",
    "WindowPacer",
    "backoff_delay",
    "call_llm",
    "chat_request",
    "floor_seconds",
    "generate_records",
    "load_records",
    "make_pacer",
    "parse_retry_after",
    "partition",
    "run_batch",
    "run_sync",
    "run_virtual",
    "settle",
    "simulate",
    "sweep",
    "with_retry",
]
