"""The public surface of ``import sustain`` is exactly this list."""

from __future__ import annotations

import sustain
from sustain.errors import Cancel, EngineSignal, Suspend, SustainError

EXPORTS = {
    "AsyncUsageError",
    "DefinitionError",
    "ExecutionTimeoutError",
    "NonRetryableError",
    "SignatureError",
    "AlreadyRegisteredError",
    "ApplicationError",
    "ArgumentsMismatchError",
    "Begin",
    "CanceledError",
    "Constant",
    "Context",
    "DecodingError",
    "DurableFuture",
    "Exponential",
    "FunctionNotFoundError",
    "Handle",
    "Info",
    "InvalidIdError",
    "Linear",
    "NetworkStopped",
    "Never",
    "NondeterminismError",
    "PromiseTimeoutError",
    "RetryRefusedError",
    "RetryPolicy",
    "SerializationError",
    "QueueError",
    "ServerError",
    "Sustain",
    "SustainError",
}


def test_public_names_are_pinned() -> None:
    assert set(sustain.__all__) == EXPORTS
    for name in EXPORTS:
        assert getattr(sustain, name) is not None


def test_every_error_is_a_sustain_error() -> None:
    for name in EXPORTS:
        obj = getattr(sustain, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, SustainError), name


def test_engine_signals_escape_except_exception() -> None:
    for signal in (Suspend, Cancel):
        assert issubclass(signal, EngineSignal)
        assert not issubclass(signal, Exception)
