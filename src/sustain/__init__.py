"""Sustain: durable execution for Python on durable promises (the Resonate protocol).

The public surface is pinned by ``tests/sdk/test_exports.py``.
"""

from sustain.errors import (
    AlreadyRegisteredError,
    ApplicationError,
    ArgumentsMismatchError,
    AsyncUsageError,
    CanceledError,
    DecodingError,
    DefinitionError,
    ExecutionTimeoutError,
    FunctionNotFoundError,
    InvalidIdError,
    NondeterminismError,
    NonRetryableError,
    PromiseTimeoutError,
    QueueError,
    RetryRefusedError,
    SerializationError,
    ServerError,
    SignatureError,
    SustainError,
)
from sustain.sdk.client import Sustain
from sustain.sdk.context import Context, Info
from sustain.sdk.futures import Begin, DurableFuture
from sustain.sdk.handles import Handle
from sustain.sdk.network import NetworkStopped
from sustain.sdk.retry import Constant, Exponential, Linear, Never, RetryPolicy

__all__ = [
    "AlreadyRegisteredError",
    "ApplicationError",
    "ArgumentsMismatchError",
    "AsyncUsageError",
    "Begin",
    "CanceledError",
    "Constant",
    "Context",
    "DecodingError",
    "DefinitionError",
    "DurableFuture",
    "ExecutionTimeoutError",
    "Exponential",
    "FunctionNotFoundError",
    "Handle",
    "Info",
    "InvalidIdError",
    "Linear",
    "NetworkStopped",
    "Never",
    "NonRetryableError",
    "NondeterminismError",
    "PromiseTimeoutError",
    "QueueError",
    "RetryPolicy",
    "RetryRefusedError",
    "SerializationError",
    "ServerError",
    "SignatureError",
    "Sustain",
    "SustainError",
]
