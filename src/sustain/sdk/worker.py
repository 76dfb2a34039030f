"""The worker: executes delivered tasks with bounded concurrency and keeps their leases.

``on_message`` takes ``execute`` messages; each becomes ``task.acquire`` then ``run_task``
under a semaphore of ``max_tasks``.  Every task this process holds (acquired here or won by
``Sustain.run`` through ``task.create``) is heartbeated every ttl/3, all in one
``task.heartbeat`` request: two beats may fail before the lease lapses.  A beat leaves out
the tasks whose lease was set less than ttl/6 before it (acquired just now, or renewed): it
would only rewrite a fresh lease, a store write that a short task (most of them) never
needs; such a task is renewed on the next beat, at most ttl/2 after its lease was set.

``stop(grace)`` (the drain) stops taking work, waits up to ``grace`` seconds for what is
running to finish or suspend, then cancels the rest and releases their tasks, so another
worker takes them at once instead of after their leases; ``hurry()`` ends that wait now (a
second Ctrl-C).

A task awaiting a promise of another origin stays held and waits for it through a listener
at this process's unicast address (replay.py): the worker keeps those listeners in its own
``Subscriptions`` (``env.watch``), feeds them the ``unblock`` messages it receives, registers
them again after a stream reconnect and every ``REFRESH_SECONDS``, and on ``stop()`` ends the
waits so those tasks are released to the group at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from sustain.sdk.handles import Subscriptions
from sustain.sdk.network import NetworkStopped
from sustain.sdk.replay import WorkerState
from sustain.sdk.runner import run_task

log = logging.getLogger(__name__)

Settled = Callable[[dict[str, Any]], None]

# Tasks per heartbeat request: below any server's limits.max_heartbeat_tasks default.
HEARTBEAT_TASKS = 1000
REFRESH_SECONDS = 60.0  # unblocks are best effort: listeners of waiting tasks are renewed


class _Slots:
    """``asyncio.Semaphore`` (FIFO, a released slot goes to the oldest waiter) whose free
    slot is taken without a coroutine: ``take_now()``, else ``await take()``.  Every task
    run takes one, so ``async with`` (two coroutines and a scan of the waiters) showed."""

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def take_now(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.take_now():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot as it was cancelled: pass it on
            else:  # only live waiters stay queued (take_now relies on it)
                with contextlib.suppress(ValueError):  # give() may have dropped it already
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class Worker:
    def __init__(
        self,
        env: WorkerState,
        max_tasks: int = 64,
        on_settled: Settled | None = None,
        on_unsettled: Callable[[str], None] | None = None,
    ) -> None:
        self.env = env
        self.max_tasks = max_tasks
        self.held: dict[str, int] = {}
        # When each held task's lease was last set (clock ms, at or before the server set it).
        self._leased: dict[str, int] = {}
        self._acquiring: dict[str, int] = {}  # acquires in flight per task id
        self._running: set[asyncio.Task[None]] = set()
        self._slots: _Slots | None = None
        self._stopping = False
        self._beat: asyncio.Task[None] | None = None
        self._hurry: asyncio.Event | None = None
        self._on_settled = on_settled
        self._on_unsettled = on_unsettled  # a run ended with its promise still pending
        self.waits = Subscriptions(env.network, "")  # awaited promises of another origin
        env.watch = self.waits.watch

    def start(self) -> None:
        self.waits.address = self.env.network.unicast(self.env.group, self.env.pid)
        self.env.network.on_reconnect(self.waits.refresh)
        self._slots = _Slots(self.max_tasks)
        self._beat = asyncio.create_task(self._heartbeat(), name="sustain-heartbeat")

    def on_message(self, message: dict[str, Any]) -> None:
        self.waits.on_message(message)
        if message.get("kind") != "execute" or self._stopping:
            return
        task = (message.get("data") or {}).get("task") or {}
        id, version = task.get("id"), task.get("version")
        if isinstance(id, str) and isinstance(version, int):
            self._spawn(self._acquire(id, version))

    @contextlib.contextmanager
    def acquiring(self, id: str) -> Iterator[None]:
        """Count an acquire of ``id`` in flight (``holds`` is then True) for the block."""
        self._acquiring[id] = self._acquiring.get(id, 0) + 1
        try:
            yield
        finally:
            self._acquiring[id] -= 1
            if not self._acquiring[id]:
                del self._acquiring[id]

    def holds(self, id: str) -> bool:
        """True while this worker holds ``id`` or waits for the answer of its acquire."""
        return id in self.held or id in self._acquiring

    def took(self, id: str, version: int, at: int) -> None:
        """This process holds ``id`` now, on a lease set at ``at`` (clock ms) or later."""
        self.held[id] = version
        self._leased[id] = at

    def hold(self, task: dict[str, Any], promise: dict[str, Any], preload: list[Any]) -> None:
        """Run a task this process already holds (``task.create`` answered acquired)."""
        self.took(task["id"], int(task["version"]), self.env.clock.now())
        self._spawn(self._execute(task, promise, preload, acquired_slot=False))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _acquire(self, id: str, version: int) -> None:
        slots = self._slots
        assert slots is not None
        if not slots.take_now():
            await slots.take()
        try:
            if self._stopping:
                return
            data = {"id": id, "version": version, "pid": self.env.pid, "ttl": self.env.ttl_ms}
            asked = self.env.clock.now()
            try:
                with self.acquiring(id):
                    answer = await self.env.network.request("task.acquire", data)
            except NetworkStopped:
                return
            if answer.status == 409:
                await self._release_if_ours(id)
            if answer.status != 200:
                log.debug("task.acquire %s v%s: %s %s", id, version, answer.status, answer.data)
                return
            d = answer.data
            self.took(id, int(d["task"]["version"]), asked)
            await self._execute(d["task"], d["promise"], d.get("preload") or [], True)
        finally:
            slots.give()

    async def _release_if_ours(self, id: str) -> None:
        """A 409 may answer the retry of an acquire that did succeed (its answer was lost with
        the connection, e.g. a replica that died after COMMIT): the task is then acquired by
        this pid but runs nowhere.  Give it back at once rather than after its lease."""
        if id in self.held or id in self._acquiring:
            return  # held, or another execute's acquire is answering right now
        try:
            answer = await self.env.network.request("task.get", {"id": id})
            task = answer.data.get("task") if answer.status == 200 else None
            if task and task.get("state") == "acquired" and task.get("pid") == self.env.pid:
                log.info("releasing %s: acquired by an answer this process never got", id)
                data = {"id": id, "version": task["version"]}
                await self.env.network.request("task.release", data)
        except NetworkStopped:
            return

    async def _execute(
        self, task: dict[str, Any], promise: dict[str, Any], preload: list[Any],
        acquired_slot: bool,
    ) -> None:  # fmt: skip
        try:
            if acquired_slot:
                record = await run_task(self.env, task, promise, preload)
            else:
                slots = self._slots
                assert slots is not None
                if not slots.take_now():
                    await slots.take()
                try:
                    record = await run_task(self.env, task, promise, preload)
                finally:
                    slots.give()
        finally:
            self.held.pop(task["id"], None)
            self._leased.pop(task["id"], None)
        if record is not None:
            self.waits.settled(record)
            if self._on_settled is not None:
                self._on_settled(record)
        elif self._on_unsettled is not None:
            self._on_unsettled(task["id"])

    async def _heartbeat(self) -> None:
        pause = max(self.env.ttl_ms / 3000, 0.05)
        # The lease is on the store's clock: in embedded mode that is this very clock.
        clock = self.env.clock
        refresh_at = clock.now() + REFRESH_SECONDS * 1000
        while True:
            # Housekeeping (runtime/clock.py): a virtual clock does not stop every ttl/3 for
            # it, so a test's leases must outlast its jumps (sustain.testing's do).
            await clock.background_sleep(pause)
            if clock.now() >= refresh_at:
                refresh_at = clock.now() + REFRESH_SECONDS * 1000
                self.waits.refresh()
            now = clock.now()
            fresh = now - pause * 500  # leases set in the last ttl/6: see the module header
            leased = self._leased
            held: list[dict[str, Any]] = [
                {"id": id, "version": version}
                for id, version in list(self.held.items())
                if leased.get(id, 0) <= fresh
            ]
            if not held:
                continue
            # One request for the held tasks, whatever their origin, as the official SDKs
            # send it (Sustain accepts it: docs/decisions.md, relaxed validation rules), or
            # several of HEARTBEAT_TASKS: a server bounds the tasks of one heartbeat
            # (limits.max_heartbeat_tasks, 10,000 by default).
            beats: list[dict[str, Any]] = [
                {"pid": self.env.pid, "tasks": held[i : i + HEARTBEAT_TASKS]}
                for i in range(0, len(held), HEARTBEAT_TASKS)
            ]
            answers = await asyncio.gather(
                *(self.env.network.request("task.heartbeat", beat) for beat in beats),
                return_exceptions=True,
            )
            for beat, answer in zip(beats, answers, strict=True):
                if isinstance(answer, NetworkStopped):
                    return
                if isinstance(answer, asyncio.CancelledError):
                    raise answer
                if isinstance(answer, BaseException):
                    # A failed beat is retried at the next tick; the lease is ttl.
                    log.warning("heartbeat failed", exc_info=answer)
                elif answer.status == 200:
                    for task in beat["tasks"]:
                        if task["id"] in leased:  # still held: not ended during the beat
                            leased[task["id"]] = now

    def hurry(self) -> None:
        """End the wait of a ``stop()`` in progress now (thread-safe through the loop)."""
        if self._hurry is None:
            self._hurry = asyncio.Event()
        self._hurry.set()

    async def stop(self, grace: float = 30.0) -> None:
        """Take no new work; wait up to ``grace`` seconds (or until ``hurry()``) for running
        tasks to fulfill, suspend or release, then cancel the rest and release their tasks."""
        self._stopping = True
        self.env.stopping.set()  # tasks waiting on another origin's promise are released
        if self._hurry is None:
            self._hurry = asyncio.Event()
        hurry = asyncio.ensure_future(self._hurry.wait())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            while self._running and not hurry.done():
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait(
                    [*self._running, hurry], timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            hurry.cancel()
        if self._running:
            # Cancelling a pass loses its lease silently (the held map empties as the passes
            # end): what it held is taken from before the cancel and given back explicitly.
            held = dict(self.held)
            for task in self._running:
                task.cancel()
            await asyncio.wait(list(self._running))
            await self._release(held)
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        self.waits.cancel_all()

    async def _release(self, held: dict[str, int]) -> None:
        """Give these tasks back to their groups now; a 409 (settled meanwhile) is fine."""
        requests = [
            self.env.network.request("task.release", {"id": id, "version": version})
            for id, version in held.items()
        ]
        answers = await asyncio.gather(*requests, return_exceptions=True)
        released = sum(1 for a in answers if not isinstance(a, BaseException) and a.status == 200)
        if held:
            log.info("released %d of %d unfinished task(s)", released, len(held))
