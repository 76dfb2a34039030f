"""Sustain: durable execution for Python on durable promises (the Resonate protocol).

The public surface is pinned by ``tests/sdk/test_exports.py``.
"""

from sustain.errors import (
    AlreadyRegisteredError,
    ApplicationError,
    ArgumentsMismatchError,
    CanceledError,
    DecodingError,
    FunctionNotFoundError,
    InvalidIdError,
    NondeterminismError,
    PromiseTimeoutError,
    SerializationError,
    ServerError,
    SustainError,
)
from sustain.sdk.client import Sustain
from sustain.sdk.context import Context, Info
from sustain.sdk.futures import DurableFuture
from sustain.sdk.handles import Handle
from sustain.sdk.network import NetworkStopped
from sustain.sdk.retry import Constant, Exponential, Linear, Never, RetryPolicy

__all__ = [
    "AlreadyRegisteredError",
    "ApplicationError",
    "ArgumentsMismatchError",
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
    "RetryPolicy",
    "SerializationError",
    "ServerError",
    "Sustain",
    "SustainError",
]
