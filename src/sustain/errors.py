"""Every exception Sustain raises, in one tree.

::

    SustainError(Exception)                  root of everything the SDK raises on purpose
    ├── InvalidIdError(id, reason)           an id the protocol cannot take (raised before sending)
    ├── FunctionNotFoundError(name, version) no registered function under that name/version
    ├── AlreadyRegisteredError(name, version)
    ├── SerializationError(id)               a value that cannot cross the durability boundary
    ├── DecodingError(id)                    stored bytes that are not the SDK-WIRE encoding
    ├── ServerError(status, message, kind)   a protocol answer the SDK did not expect
    ├── NondeterminismError(id, recorded, found)
    ├── ArgumentsMismatchError(id, recorded, given)  an id already holds another call
    │                                        (``Sustain(strict=True)``; else a warning)
    ├── ApplicationError(message, name, id)  a rejected promise: the user error, decoded
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

    def __init__(self, name: str, version: int | None = None) -> None:
        where = f"{name!r}" if version is None else f"{name!r} version {version}"
        super().__init__(f"Function {where} is not registered")
        self.name = name
        self.version = version


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

    def __init__(self, message: str, id: str | None = None) -> None:
        super().__init__(message if id is None else f"{message} (promise {id!r})")
        self.id = id


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


class NondeterminismError(SustainError):
    """A replayed workflow made a different call than the one recorded."""

    def __init__(self, id: str, recorded: str, found: str) -> None:
        super().__init__(
            f"Nondeterminism at {id!r}: the history recorded {recorded!r} "
            f"but the workflow now calls {found!r}"
        )
        self.id = id
        self.recorded = recorded
        self.found = found


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

    def __init__(self, message: str, name: str | None = None, id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.id = id


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
