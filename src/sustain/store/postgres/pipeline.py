"""The libpq pipeline driver: one PostgreSQL transaction sent as few round trips as it can.

``Pipeline`` is the transport half of ``PostgresTx`` (tx.py), which adds the engine's
statements and the rows the transaction holds.  On the connection's ``pgconn``, in libpq
pipeline mode: ``_send`` queues a prepared statement (the transaction's ``BEGIN`` goes out
with the first one) with the handler of its result; ``_sync`` sends what is queued and
waits, and is called only when the engine needs an answer, so writes travel with the next
read or with ``COMMIT`` (``commit``: one trip).  The statements still run one after the
other, in the order they were queued; a statement's error surfaces at the next ``_sync``.
``cursor`` leaves the pipeline for a psycopg cursor in the same transaction (the rare
statements: searches, claims, the cluster's).

Waiting never blocks in libpq holding the GIL: the socket is polled (``_next``, ``_flush``).

Connection loss.  The session is over when the socket closes under libpq, when libpq stops
short of the pipeline's sync, or when the backend's FATAL (or PANIC) error arrives in place
of a statement's answer (``pg_terminate_backend``, a shutdown, an idle-in-transaction
timeout): then the connection is closed (the pool replaces it), ``lost`` is set and
``_sync`` raises ``psycopg.OperationalError``, never the statement's own error.
``committing`` tells the store whether the final trip (the last writes and ``COMMIT``) was
sent: lost before it, nothing committed and the operation may run again; lost during it,
the outcome is unknown (store.py).  A ``COMMIT`` answered with ``ROLLBACK`` is an error too:
a failed transaction is never acknowledged.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as e
from psycopg import pq

from sustain.store.postgres.statements import PREPARED

Handler = Callable[[pq.abc.PGresult], None] | None
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_BUSY = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Prepare ``PREPARED`` on a new connection (the pool's configure step), in one trip."""
    pg = conn.pgconn
    poller = _poller(pg)
    pg.enter_pipeline_mode()
    try:
        for name, sql in PREPARED.items():
            pg.send_prepare(name, sql.encode())
        pg.pipeline_sync()
        _flush(pg)
        error: pq.abc.PGresult | None = None
        for _ in PREPARED:
            res = _next(pg, poller)
            if res is not None and res.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = res
            _next(pg, poller)  # the end of that statement's results
        _next(pg, poller)  # the sync
    finally:
        if pg.status == pq.ConnStatus.OK:
            pg.exit_pipeline_mode()
    if error is not None:
        raise e.error_from_result(error, encoding="utf-8")


def _flush(pg: pq.abc.PGconn) -> None:
    """Send the whole output buffer.  psycopg puts its connections in nonblocking mode, so a
    large statement (a big value) may not fit the socket at once: wait until it can write
    more, reading what the server answers meanwhile (it may be blocked writing to us)."""
    poller: select.poll | None = None
    while pg.flush():
        if poller is None:
            poller = select.poll()
            poller.register(pg.socket, select.POLLIN | select.POLLOUT)
        if any(ev & select.POLLIN for _, ev in poller.poll()):  # releases the GIL
            pg.consume_input()


def _poller(pg: pq.abc.PGconn) -> select.poll:
    poller = select.poll()  # not select.select: a server may hold more than 1,024 sockets
    poller.register(pg.socket, select.POLLIN)
    return poller


def _next(pg: pq.abc.PGconn, poller: select.poll) -> pq.abc.PGresult | None:
    """The next result of the pipeline.  libpq's ``PQgetResult`` would block holding the GIL
    (every other thread of the server would stop): wait for the socket here instead."""
    while pg.is_busy():
        poller.poll()  # releases the GIL
        pg.consume_input()
    return pg.get_result()


class Pipeline:
    """One transaction on ``conn`` (a pooled psycopg connection in autocommit mode, idle):
    nothing is sent before the first statement; ``commit`` or ``abort`` ends it."""

    __slots__ = (
        "_alive",
        "_begin",
        "_conn",
        "_handlers",
        "_pg",
        "_piped",
        "_poller",
        "committing",
        "lost",
    )

    def __init__(self, conn: psycopg.Connection[Any], durable: bool = True) -> None:
        self._conn = conn
        self._pg = conn.pgconn
        self._poller = _poller(self._pg)
        # Result handlers of the statements sent since the last sync, in order.
        self._handlers: list[Handler] = []
        self._piped = False
        # Statements that open the transaction, sent with the first statement (None: sent).
        self._begin: tuple[bytes, ...] | None = (
            (b"BEGIN",) if durable else (b"BEGIN", b"SET LOCAL synchronous_commit = off")
        )
        self._alive = False  # a trip of this transaction was answered
        self.committing = False  # the final trip (writes + COMMIT) was sent
        self.lost = False  # the connection broke, and was closed

    def _open(self) -> None:
        """Enter pipeline mode and queue the transaction's start if not done yet."""
        pg = self._pg
        if not self._piped:
            pg.enter_pipeline_mode()
            self._piped = True
        if self._begin is not None:
            for sql in self._begin:
                pg.send_query_params(sql, None)
                self._handlers.append(None)
            self._begin = None

    def _send(self, name: bytes, params: Sequence[bytes | None], handler: Handler = None) -> None:
        self._open()
        self._pg.send_query_prepared(name, params)
        self._handlers.append(handler)

    def _sync(self) -> None:
        """Send everything queued and take every answer, in order; raise the first error
        (the statements after it were skipped by the server)."""
        handlers = self._handlers
        if not handlers:
            return
        self._handlers = []
        pg = self._pg
        try:
            pg.pipeline_sync()
            _flush(pg)
            results = []
            for _ in handlers:
                res = _next(pg, self._poller)
                if res is None:
                    break  # connection lost: checked below
                results.append(res)
                _next(pg, self._poller)  # None: the end of this statement's results
            last = _next(pg, self._poller)
        except psycopg.OperationalError:  # the socket closed under libpq
            self._lost()
            raise
        fatal = next((res for res in results if _ends_session(res)), None)
        if (
            pg.status != pq.ConnStatus.OK
            or last is None
            or last.status != pq.ExecStatus.PIPELINE_SYNC
            or fatal is not None
        ):
            # The backend went away mid-pipeline (pg_terminate_backend, a crash, a failover):
            # libpq may hand over the backend's FATAL error, and stop short of the sync,
            # before it notices that the socket closed.  Either way the session is over.
            message = pg.get_error_message()  # before the close, which clears it
            self._lost()
            if fatal is not None:
                error = e.error_from_result(fatal, encoding="utf-8")
                if isinstance(error, psycopg.OperationalError):
                    raise error
                # e.g. idle_in_transaction_session_timeout's FATAL (25P03): still a lost
                # connection to the store, never the op's own error.
                raise e.OperationalError(f"connection lost: {error}") from error
            raise e.OperationalError(f"connection lost: {message}")
        self._alive = True
        # Out of pipeline mode between trips (a local switch, no trip): a psycopg cursor taken
        # earlier from ``cursor`` keeps working after the Tx's own statements.
        pg.exit_pipeline_mode()
        self._piped = False
        for handler, res in zip(handlers, results, strict=False):  # shorter: lost above
            if res.status not in _OK:
                raise e.error_from_result(res, encoding="utf-8")
            if handler is not None:
                handler(res)

    def _lost(self) -> None:
        """The session is over: close the connection, so that the pool replaces it and the
        store knows it broke (``lost``)."""
        self.lost = True
        self._conn.close()

    def _leave_pipeline(self) -> None:
        if self._piped:
            self._pg.exit_pipeline_mode()
            self._piped = False

    def commit(self) -> None:
        """Send the queued writes and COMMIT in one trip; return once COMMIT returned."""
        if self._begin is not None:
            return  # nothing was sent: no transaction to end
        if not self._alive:
            # Only writes so far: send them first, so that a connection found broken (the
            # database restarted) is found before COMMIT was sent, and the op runs again.
            self._sync()
        self.committing = True
        self._open()  # again, when the cursor ran last
        self._pg.send_query_params(b"COMMIT", None)
        self._handlers.append(_committed)
        self._sync()
        self._leave_pipeline()

    def abort(self) -> None:
        """Roll back whatever was sent; never raises (a broken connection is dropped by the
        pool)."""
        pg = self._pg
        try:
            if self._piped:
                if self._handlers:
                    self._handlers = []
                    pg.pipeline_sync()
                    _flush(pg)
                    while True:
                        res = _next(pg, self._poller)
                        if res is not None and res.status == pq.ExecStatus.PIPELINE_SYNC:
                            break
                        if pg.status != pq.ConnStatus.OK:
                            return
                self._leave_pipeline()
            if pg.transaction_status in _BUSY:
                pg.exec_(b"ROLLBACK")
        except (psycopg.Error, OSError):
            # Left in an unknown state: closed, so the pool replaces it.
            self._lost()

    @property
    def cursor(self) -> psycopg.Cursor[Any]:
        """A psycopg cursor inside this transaction, for the statements that are not prepared
        here and for the cluster's own (cluster.py): what is queued is sent first."""
        self._open()
        self._sync()
        self._leave_pipeline()
        return self._conn.cursor()

    def _all(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[Any]:
        return self.cursor.execute(sql, params).fetchall()

    def _fetch(self, name: bytes, params: Sequence[bytes | None]) -> pq.abc.PGresult:
        out: list[pq.abc.PGresult] = []
        self._send(name, params, out.append)
        self._sync()
        return out[0]


def _ends_session(res: pq.abc.PGresult) -> bool:
    """A FATAL (or PANIC) error: the backend ends the session after sending it."""
    if res.status in _OK:
        return False
    severity = res.error_field(pq.DiagnosticField.SEVERITY_NONLOCALIZED)
    return severity in (b"FATAL", b"PANIC")


def _committed(res: pq.abc.PGresult) -> None:
    # A transaction that failed answers COMMIT with ROLLBACK (no error): never acknowledge it.
    if res.command_status != b"COMMIT":
        raise e.OperationalError(f"the transaction was rolled back ({res.command_status!r})")
