"""Every exception Sustain raises, in one tree.

::

    SustainError(Exception)                  root of everything the SDK raises on purpose
    ├── InvalidIdError(id, reason)           an id the protocol cannot take (raised before sending)
    ├── FunctionNotFoundError(name, version, group)  no registered function under that
    │                                        name/version (in this process, or on the
    │                                        workers of ``group``: they halted the task)
    ├── DefinitionError(function, problem)   a registered function written so that it cannot
    │                                        work (no Context parameter, a plain ``def``
    │                                        making durable calls, a forgotten yield/await)
    ├── SignatureError(function, id)         a call whose arguments do not bind to the
    │                                        function's parameters (never retried)
    ├── NonRetryableError(message)           raised by a step: fail now, do not retry
    ├── AsyncUsageError(method, instead)     a blocking method called on a running event loop
    ├── ExecutionTimeoutError(id, waiting)   also a TimeoutError: ``handle.result(timeout)``
    │                                        ran out; says what the execution waits on
    ├── AlreadyRegisteredError(name, version)
    ├── SerializationError(id, function, parameter, type)  a value that cannot cross the
    │                                        durability boundary (which argument, of what type)
    ├── DecodingError(id)                    stored bytes that are not the SDK-WIRE encoding
    ├── InvalidHistoryError(source)          a history file ``sustain export`` did not write
    ├── ServerError(status, message, kind)   a protocol answer the SDK did not expect
    ├── RetryRefusedError(id, reason, state) ``Sustain.retry``: no such execution, or one that
    │                                        did not fail (pending, resolved), or ``new_id``
    │                                        taken by something else
    ├── NondeterminismError(id, recorded, found, step)
    ├── ArgumentsMismatchError(id, recorded, given)  an id already holds another call
    │                                        (``Sustain(strict=True)``; else a warning)
    ├── ApplicationError(message, name, id, type)  a rejected promise whose error class
    │   │                                    cannot be rebuilt here (``type`` names it)
    │   ├── CanceledError(id)                the promise was canceled
    │   └── PromiseTimeoutError(id)          the promise timed out
    ├── NetworkStopped                       (sustain.sdk.network) the network was stopped
    ├── StoreError                           (sustain.store.errors) e.g. StoreLockedError(path):
    │                                        the database is open in another process
    ├── ConfigError                          (sustain.runtime.config) a server configuration
    │                                        that cannot start
    ├── MissingExtraError(module, extra)     a feature whose optional dependencies are not
    │                                        installed (sustain.extras names the extra)
    └── AuthKeyError(path)                   (sustain.server.auth) an unusable public key

    EngineSignal(BaseException)              control flow of the replay runtime, never an error:
    ├── Suspend                              a user's ``except Exception`` cannot swallow it
    └── Cancel

Each class docstring is its default message; each error carries the ids it is about as
attributes so logs and callers need not parse messages.
"""

from __future__ import annotations


class SustainError(Exception):
    """A Sustain error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())


class InvalidIdError(SustainError):
    """Invalid id."""

    def __init__(self, id: str, reason: str) -> None:
        super().__init__(f"Invalid id {id!r}: {reason}")
        self.id = id
        self.reason = reason


class FunctionNotFoundError(SustainError):
    """Function not registered."""

    def __init__(
        self, name: str, version: int | None = None, group: str | None = None,
        id: str | None = None, *, paused: bool = False,
    ) -> None:  # fmt: skip
        where = f"{name!r}" if version is None else f"{name!r} version {version}"
        if group is None:
            message = f"Function {where} is not registered"
        elif paused:  # Sustain(on_code_mismatch="pause"): it resumes once a worker has it
            message = (
                f"Function {where} is not registered on any worker of group {group!r}: "
                f"the execution {id!r} is paused; register it there and it resumes"
            )
        else:
            # the workers of the group halted the task: say how to get it going again
            message = (
                f"Function {where} is not registered on any worker of group {group!r}: "
                f"they halted the task of {id!r}; register it there, then "
                f"`sustain tasks continue {id}`"
            )
        super().__init__(message)
        self.name = name
        self.version = version
        self.group = group
        self.id = id


class DefinitionError(SustainError):
    """A registered function is written in a way that cannot work."""

    def __init__(self, function: str, problem: str) -> None:
        super().__init__(f"{function}: {problem}")
        self.function = function
        self.problem = problem


class SignatureError(SustainError):
    """The call's arguments do not bind to the function's parameters."""

    def __init__(
        self, function: str, parameters: str, given: str, reason: str, id: str | None = None
    ) -> None:
        at = f" (promise {id!r})" if id is not None else ""
        super().__init__(f"{function}{parameters} cannot be called with {given}{at}: {reason}")
        self.function = function
        self.parameters = parameters
        self.given = given
        self.reason = reason
        self.id = id


class NonRetryableError(SustainError):
    """A step failed and must not be retried."""


class AsyncUsageError(SustainError):
    """A blocking method was called on a running event loop."""

    def __init__(self, method: str, instead: str) -> None:
        super().__init__(
            f"{method} blocks, and this thread runs an event loop (async code, or a Jupyter "
            f"notebook): write `{instead}` instead"
        )
        self.method = method
        self.instead = instead


class ExecutionTimeoutError(SustainError, TimeoutError):
    """The wait for an execution's result ran out; the execution goes on."""

    def __init__(self, id: str, timeout: float | None, waiting: list[str]) -> None:
        what = "; ".join(waiting) if waiting else "nothing known"
        super().__init__(
            f"{id!r} did not settle within {timeout:g}s (it goes on); waiting on: {what}"
            if timeout is not None
            else f"{id!r} did not settle; waiting on: {what}"
        )
        self.id = id
        self.timeout = timeout
        self.waiting = waiting


class MissingExtraError(SustainError):
    """An optional dependency is not installed."""

    def __init__(self, what: str, module: str, extra: str) -> None:
        super().__init__(f"{what} needs {module}: pip install 'sustain[{extra}]'")
        self.module = module
        self.extra = extra


class AlreadyRegisteredError(SustainError):
    """Function already registered."""

    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"Function {name!r} version {version} is already registered")
        self.name = name
        self.version = version


class SerializationError(SustainError):
    """A value cannot be encoded as JSON for the wire."""

    def __init__(
        self, message: str, id: str | None = None, *, function: str | None = None,
        parameter: str | None = None, type: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message if id is None else f"{message} (promise {id!r})")
        self.reason = message  # the message without the promise id
        self.id = id
        self.function = function  # the function called, or whose value it returned
        self.parameter = parameter  # the argument's parameter, or "return"
        self.type = type  # the value's type, by name


class DecodingError(SustainError):
    """A stored value is not in the SDK-WIRE encoding."""

    def __init__(self, message: str, id: str | None = None) -> None:
        super().__init__(message if id is None else f"{message} (promise {id!r})")
        self.id = id


class ServerError(SustainError):
    """The server answered with an unexpected status."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(f"{kind}: {status} {message}" if kind else f"{status} {message}")
        self.status = status
        self.message = message
        self.kind = kind


class QueueError(SustainError):
    """A queue operation was refused: a bad limit or rate (400), or no such queue (404)."""

    def __init__(self, name: str, status: int, message: str) -> None:
        super().__init__(f"Queue {name!r}: {message}")
        self.name = name
        self.status = status
        self.message = message


class RetryRefusedError(SustainError):
    """This execution cannot be retried."""

    def __init__(self, id: str, reason: str, state: str | None = None) -> None:
        super().__init__(f"Cannot retry {id!r}: {reason}")
        self.id = id
        self.reason = reason
        self.state = state  # the execution's state when that is the reason (e.g. "pending")


class NondeterminismError(SustainError):
    """A replayed workflow made a different call than the one recorded."""

    def __init__(self, id: str, recorded: str, found: str, *, step: int | None = None) -> None:
        # ``step``: the call's number in its workflow (1 = the first durable call), known
        # to a history replay (sustain check, sustain.testing.replay).
        where = f"step {step} ({id!r})" if step is not None else repr(id)
        super().__init__(
            f"Nondeterminism at {where}: the history recorded {recorded!r} "
            f"but the workflow now calls {found!r}"
        )
        self.id = id
        self.recorded = recorded
        self.found = found
        self.step = step


class InvalidHistoryError(SustainError):
    """A history to replay that cannot be read (not JSON, not ``sustain export``'s format,
    or a format version this Sustain does not know)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"Cannot replay {source}: {reason}")
        self.source = source
        self.reason = reason


class ArgumentsMismatchError(SustainError):
    """The id already holds an execution of another call."""

    def __init__(self, id: str, recorded: str, given: str) -> None:
        super().__init__(
            f"Promise {id!r} already holds {recorded}, not this call's {given}: "
            "the same id returns the first execution's result"
        )
        self.id = id
        self.recorded = recorded
        self.given = given


class ApplicationError(SustainError):
    """The function failed."""

    def __init__(
        self, message: str, name: str | None = None, id: str | None = None, *,
        type: str | None = None, attributes: dict[str, object] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.name = name
        self.id = id
        # The class raised, ``module.qualname`` (or the name another SDK gave), when it
        # could not be rebuilt here; and the attributes it had, as JSON.
        self.type = type
        self.attributes = attributes or {}


class CanceledError(ApplicationError):
    """Promise canceled."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__("Promise canceled", "CanceledError", id)


class PromiseTimeoutError(ApplicationError):
    """Promise timed out."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__("Promise timed out", "PromiseTimeoutError", id)


class EngineSignal(BaseException):
    """Control flow of the replay runtime (BaseException so user code cannot swallow it)."""


class Suspend(EngineSignal):
    """The workflow waits on a pending promise; its task suspends."""

    def __init__(self, id: str = "") -> None:
        super().__init__(id)
        self.id = id


class Cancel(EngineSignal):
    """The task was taken away (lease lost, worker stopping); abandon this pass."""
