"""The outbox loop and message delivery (PROTOCOL.md §4.2-4.3, §5.2).

Theory of operation: the loop claims (deletes and returns) up to ``messages.batch_size``
executes and unblocks in one store transaction, then dispatches executes first, then
unblocks.  Delivery is at most once per outbox entry: a failure is logged and counted, never
re-queued (executes come back through the task retry timer).  The loop sleeps until a write
reports ``wake_outbox`` (requests call ``wake``), with ``messages.poll_interval`` only as a
cap (running out of it claims too); a full batch means more may wait, so it claims again at
once.  A timer tick claims in its own transaction instead (``claim_in``, runtime/loops.py) and
hands the messages over (``hand``): they go out without another claim, poll deliveries right
in ``hand`` and HTTP pushes from the loop.

In the claiming transaction, executes whose task is no longer ``pending`` are skipped
(§0.1 item 6 allows it): the worker would only get a 409 on acquire.  A poll execute also
learns there the version its promise is pinned to (``pinned``, protocol/versions.py): only a
stream that serves that version gets it (a PostgreSQL replica's claim does the same).

Routing by address: ``poll://`` -> the poll registry (non-blocking, dropped when nobody
listens); ``http(s)://`` -> an HTTP POST by a shared ``aiohttp.ClientSession``, at most
``concurrency`` in flight (aiohttp, not httpx: httpcore's pool costs O(connections) per request,
which collapsed a burst of 1,000 timer unblocks at 256 connections, see benchmarks/README.md);
the loop waits for a free slot (backpressure), it never drops a push while running.  Other
schemes (gcps, bash) are not served by Sustain: dropped with a warning.

On PostgreSQL (``cluster`` given) the replica's ``Cluster`` claims instead: it takes only
the entries this replica can deliver and marks them rather than deleting them; each message
is acknowledged (``done``) once it went out or was dropped, and the next claim deletes it
(sustain/store/postgres/cluster.py).  A single server skips all of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import aiohttp
import msgspec

from sustain.protocol.addresses import Address, parse_address
from sustain.protocol.records import ExecuteData, Message, Promise, TaskRef, UnblockData
from sustain.protocol.versions import Pin
from sustain.runtime.config import ServerConfig
from sustain.runtime.loops import Alarm, Pause
from sustain.runtime.metrics import Metrics
from sustain.runtime.poll import PollRegistry
from sustain.store.base import Store
from sustain.store.errors import UNAVAILABLE
from sustain.store.tx import Execute, Tx, pinned

if TYPE_CHECKING:
    from sustain.runtime.cluster import Cluster

log = logging.getLogger(__name__)

_ADDRESS_CACHE_LIMIT = 4096

Claimed = tuple[list[Execute], list[tuple[Promise, str]]]
Done = Callable[[], None] | None  # a cluster replica's acknowledgement of one message
Encoded = tuple[str, bytes, Done, Pin | None]  # address, message, acknowledgement, pin


class Delivery:
    def __init__(
        self,
        store: Store,
        registry: PollRegistry,
        metrics: Metrics,
        config: ServerConfig,
        pause: Pause,
        *,
        cluster: Cluster | None = None,
    ) -> None:
        self._store = store
        self._cluster = cluster
        self._registry = registry
        self._metrics = metrics
        self._pause = pause
        self._batch = config.messages.batch_size
        self._cap = config.messages.poll_interval / 1000
        self._server_url = config.server_url
        self._poll_enabled = config.transports.http_poll.enabled
        push = config.transports.http_push
        self._push_enabled = push.enabled
        self._slots = asyncio.Semaphore(push.concurrency)
        headers = {"content-type": "application/json"}
        if push.auth.mode == "bearer" and push.auth.token:
            headers[push.auth.header] = f"Bearer {push.auth.token}"
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(
            total=push.request_timeout / 1000, connect=push.connect_timeout / 1000
        )
        self._concurrency = push.concurrency
        self._session: aiohttp.ClientSession | None = None  # made in the loop, on first push
        self._pushes: set[asyncio.Task[None]] = set()
        self._addresses: dict[str, Address | None] = {}
        self._alarm = Alarm()
        pause.attach(self._alarm)
        self._stopping = False
        self._dirty = True  # the outbox may hold messages: claim (at start: a previous run's)
        self._handed: deque[Encoded] = deque()  # handed over, waiting for the loop

    def wake(self) -> None:
        """Messages were written: claim them now."""
        self._dirty = True
        self._alarm.ring()

    def claim_in(self, tx: Tx) -> Claimed:
        """Claim in the caller's transaction (a timer tick's); ``hand`` the result over once
        that transaction is durable."""
        return self._claim(tx)

    def hand(self, claimed: Claimed) -> None:
        """Send messages claimed by ``claim_in`` (their transaction is committed and synced).

        A poll stream takes a message without waiting (a non-blocking append), so those go
        out now rather than an event-loop iteration later, when the loop task runs; HTTP
        pushes wait for a slot, so the loop sends them.  While anything handed earlier still
        waits, or the loops are paused, everything waits for the loop, in order."""
        if self._full(claimed):
            self._dirty = True
        messages = self._encode(claimed)
        if self._handed or self._pause.paused:
            self._handed.extend(messages)
        else:
            for url, payload, done, pin in messages:
                address = self._address(url)
                if address is not None and self._pushable(address):
                    self._handed.append((url, payload, done, pin))
                else:
                    self._send_now(url, address, payload, done, pin)
        self._alarm.ring()

    def _full(self, claimed: Claimed) -> bool:
        executes, unblocks = claimed
        return len(executes) >= self._batch or len(unblocks) >= self._batch

    def stop(self) -> None:
        self._stopping = True
        self._alarm.ring()

    async def close(self, grace: float) -> None:
        """Give in-flight pushes up to ``grace`` s, then cancel them and close the client."""
        if self._pushes:
            _, pending = await asyncio.wait(set(self._pushes), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._concurrency),
            )
        return self._session

    def _claim(self, tx: Tx) -> Claimed:
        executes, unblocks = tx.claim_outbox(self._batch)
        live = []
        for execute in executes:
            task = tx.get_task(execute.task_id)
            if task is not None and task.state == "pending":
                live.append(pinned(tx, execute))
        return live, unblocks

    async def run(self) -> None:
        while not self._stopping:
            if self._pause.paused:
                await self._pause.wait_running()
                continue
            while self._handed and not self._stopping:
                await self.send(*self._handed.popleft())
            if not self._dirty:
                # Woken by a ring (a write, handed messages, pause, stop) or the cap, which
                # is the safety net: claim after it even if nobody rang.
                if not await self._alarm.sleep(self._cap):
                    self._dirty = True
                continue
            self._dirty = False
            try:
                if self._cluster is None:
                    claimed = await self._store.run_async(self._claim)
                else:
                    claimed = await self._cluster.claim(self._batch)
            except Exception as exc:
                if isinstance(exc, UNAVAILABLE):
                    log.warning("outbox claim failed, store unavailable: %s", exc,
                                extra={"action": "claim"})  # fmt: skip
                else:
                    log.exception("outbox claim failed", extra={"action": "claim"})
                self._dirty = True
                await self._alarm.sleep(self._cap)
                continue
            await self._dispatch(claimed)
            if self._full(claimed):
                self._dirty = True

    async def _dispatch(self, claimed: Claimed) -> None:
        for url, payload, done, pin in self._encode(claimed):
            await self.send(url, payload, done, pin)

    def _encode(self, claimed: Claimed) -> list[Encoded]:
        """Executes first, then unblocks; counted in the metrics here, once."""
        executes, unblocks = claimed
        self._metrics.messages("execute", len(executes))
        self._metrics.messages("unblock", len(unblocks))
        cluster = self._cluster
        messages: list[Encoded] = []
        for execute in executes:
            message = Message(
                "execute",
                {"serverUrl": self._server_url},
                ExecuteData(TaskRef(execute.task_id, execute.version)),
            )
            done = (
                None
                if cluster is None
                else partial(cluster.sent_execute, execute.task_id, execute.version)
            )
            messages.append((execute.address, msgspec.json.encode(message), done, execute.pin))
        for promise, address in unblocks:
            unblock = Message("unblock", {}, UnblockData(promise))
            done = None if cluster is None else partial(cluster.sent_unblock, promise.id, address)
            messages.append((address, msgspec.json.encode(unblock), done, None))
        return messages

    def _address(self, url: str) -> Address | None:
        try:
            return self._addresses[url]
        except KeyError:
            pass
        if len(self._addresses) >= _ADDRESS_CACHE_LIMIT:
            self._addresses.clear()
        address = self._addresses[url] = parse_address(url)
        return address

    async def send(
        self, url: str, payload: bytes, done: Done = None, pin: Pin | None = None
    ) -> None:
        """Deliver one encoded message to ``url``, or count it dropped.  ``done`` (a cluster
        replica's acknowledgement) is called once the message went out or was dropped."""
        address = self._address(url)
        if address is not None and self._pushable(address):
            await self._slots.acquire()  # backpressure: at most `concurrency` in flight
            task = asyncio.create_task(self._push(address.url, payload, done))
            self._pushes.add(task)
            task.add_done_callback(self._pushes.discard)
        else:
            self._send_now(url, address, payload, done, pin)

    def _pushable(self, address: Address) -> bool:
        return address.scheme in ("http", "https") and self._push_enabled

    def _send_now(
        self, url: str, address: Address | None, payload: bytes, done: Done, pin: Pin | None
    ) -> None:
        """Everything but an HTTP push: a poll stream's buffer, or a drop."""
        if address is None:
            log.warning("dropping message to invalid address %s", url, extra={"address": url})
            self._metrics.delivery("dropped")
        elif address.scheme == "poll":
            delivered = (
                self._poll_enabled
                and address.cast is not None
                and address.group is not None
                and self._registry.deliver(address.cast, address.group, address.id, payload, pin)
            )
            self._metrics.delivery("success" if delivered else "dropped")
        else:
            log.warning("no transport for %s: message dropped", url, extra={"address": url})
            self._metrics.delivery("dropped")
        if done is not None:
            done()

    async def _push(self, url: str, payload: bytes, done: Done = None) -> None:
        try:
            async with self._client().post(url, data=payload, allow_redirects=False) as response:
                status = response.status
                await response.read()
        except Exception as exc:
            # Anything (refused, timeout, a URL aiohttp rejects) is a failed delivery: at most
            # once, logged, never fatal to the loop.
            log.warning("push to %s failed: %r", url, exc, extra={"address": url})
            self._metrics.delivery("error")
        else:
            if 200 <= status < 300:
                self._metrics.delivery("success")
            else:
                log.warning("push to %s answered %d", url, status, extra={"address": url})
                self._metrics.delivery("error")
        finally:
            self._slots.release()
            if done is not None:
                done()
