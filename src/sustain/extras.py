"""Which optional extra brings which import, so a missing one is named in one line.

``pip install sustain`` is embedded mode, the SDK's remote client and the CLI client; the
extras in pyproject.toml add the rest (docs/install.md).  A command that needs an extra that
is not installed says which one to install (``MissingExtraError``), never a traceback.
"""

from __future__ import annotations

import importlib

from sustain.errors import MissingExtraError

# Top-level import name -> the extra whose install provides it.
PROVIDED_BY = {
    "uvicorn": "server",
    "httptools": "server",
    "uvloop": "server",
    "jwt": "server",
    "cryptography": "server",
    "prometheus_client": "metrics",
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "aiokafka": "kafka",
    "opentelemetry": "otel",
}


def missing(what: str, exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The error to show for ``exc`` when it is an optional dependency that is not installed;
    None when it is anything else (a real bug must keep its traceback)."""
    top = (exc.name or "").split(".")[0]
    extra = PROVIDED_BY.get(top)
    return None if extra is None else MissingExtraError(what, top, extra)


def require(what: str, module: str) -> None:
    """Import ``module`` or raise the one-line ``MissingExtraError`` naming its extra."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        error = missing(what, exc)
        if error is None:
            raise
        raise error from None
