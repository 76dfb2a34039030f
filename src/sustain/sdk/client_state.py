"""``ClientState``: what every options-view of one ``Sustain`` shares, and its lifecycle.

The network, registry, worker and handle subscriptions of one facade; ``ensure`` starts them
once (the first request, or ``start()``), recovery of a previous incarnation's tasks runs at
start (recovery.py), and ``stop`` drains in the order that loses nothing: flush the calls in
flight, stop listening, let the worker finish or release, then close the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from sustain.runtime.clock import Clock
from sustain.sdk.handles import Subscriptions
from sustain.sdk.local import LocalNetwork
from sustain.sdk.loop import LoopThread
from sustain.sdk.network import Network, NetworkStopped
from sustain.sdk.recovery import release_held
from sustain.sdk.registry import Registry
from sustain.sdk.remote import RemoteNetwork
from sustain.sdk.replay import WorkerState
from sustain.sdk.worker import Worker

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0  # re-register listeners of pending handles (unblocks are best effort)
STREAM_WAIT = 10.0  # seconds a restarted worker waits for its stream before releasing anyway


def network_for(store: str | None, url: str | None, token: str | None, clock: Clock) -> Network:
    """``Sustain(store=, url=, token=)``'s network: remote with a URL (or ``SUSTAIN_URL`` /
    ``RESONATE_URL`` when neither is given), else embedded on the store."""
    if url is None and store is None:
        url = os.environ.get("SUSTAIN_URL") or os.environ.get("RESONATE_URL")
    if url:
        token = token or os.environ.get("SUSTAIN_TOKEN") or os.environ.get("RESONATE_TOKEN")
        return RemoteNetwork(url, token=token)
    return LocalNetwork(store or "sustain.db", clock=clock)


class ClientState:
    """What every options-view of one ``Sustain`` shares."""

    def __init__(  # noqa: PLR0917 - the Sustain's own arguments
        self, network: Network, group: str, pid: str, ttl_ms: int, max_tasks: int, clock: Clock,
        *, stable_pid: bool = False,
    ) -> None:  # fmt: skip
        self.network = network
        # A pid given by the user names this process across restarts: at start it takes
        # back what its previous incarnation held (recovery.py).  A random one held nothing.
        self.stable_pid = stable_pid
        self._recovery: asyncio.Future[None] | None = None
        self.registry = Registry()
        self.env = WorkerState(network, self.registry, group, pid, ttl_ms, clock=clock)
        self.subs = Subscriptions(network, network.unicast(group, pid))
        self.worker = Worker(
            self.env, max_tasks, on_settled=self.subs.settled, on_unsettled=self.subs.listen
        )
        self.thread: LoopThread | None = None
        self._thread_lock = threading.Lock()
        self._starting: asyncio.Future[None] | None = None
        self._refresh: asyncio.Future[None] | None = None
        self.started = False
        self.ready = False  # started successfully: requests need not go through ensure()
        self.stopped = False
        # Calls whose creating request is not answered yet: stop() waits for them, so a
        # fire-and-forget begin_rpc made just before stop() still reaches the store.
        self.sending: set[asyncio.Future[None]] = set()

    def loop(self) -> LoopThread:
        with self._thread_lock:  # callers on several threads must share one loop
            if self.thread is None:
                self.thread = LoopThread()
            return self.thread

    async def ensure(self) -> Network:
        starting = self._starting
        if starting is None:
            self.started = True
            starting = self._starting = asyncio.ensure_future(self._start())
        elif starting.done():  # every request after the start: no shield (a future) per call
            starting.result()  # a failed start raises for every caller, as the shield did
            return self.network
        await asyncio.shield(starting)
        return self.network

    async def _start(self) -> None:
        registry = self.env.registry
        self.network.listen(self.env.group, self.env.pid, self._dispatch, registry.versions)
        self.network.on_reconnect(self.subs.refresh)
        await self.network.start()
        self.worker.start()
        if isinstance(self.network, LocalNetwork):
            # The file lock says every task still acquired in the file is a dead process's:
            # released before the first call, so a run() of the same id finds it pending.
            await release_held(self.network, None, self.worker.holds)
        elif self.stable_pid:
            self._recovery = asyncio.ensure_future(self._take_back())
        refresh = self.subs.refresh_every(REFRESH_SECONDS, self.env.clock)
        self._refresh = asyncio.ensure_future(refresh)
        self.ready = True

    async def _take_back(self) -> None:
        """Release what this pid's previous incarnation held, once this process's stream is
        up: the executes the releases send then reach this worker too, not only the others
        of the group (and are not dropped when it is the only member)."""
        listening = getattr(self.network, "listening", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_WAIT
        while callable(listening) and not listening(self.env.group, self.env.pid):
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        try:
            await release_held(self.network, self.env.pid, self.worker.holds)
        except NetworkStopped:
            return
        except Exception:  # recovery then waits for the leases: never fatal for the worker
            log.exception("taking back the tasks of pid %s failed", self.env.pid)

    def reannounce(self) -> None:
        """A function registered after the start: a remote stream announces the versions
        again (an in-process subscriber reads the registry at each delivery)."""
        reannounce = getattr(self.network, "reannounce", None)
        if self.ready and not self.stopped and callable(reannounce):
            self.loop().loop.call_soon_threadsafe(reannounce)

    def _dispatch(self, message: dict[str, Any]) -> None:
        self.worker.on_message(message)
        self.subs.on_message(message)

    async def flush(self) -> None:
        """Wait for every call's creating request made so far (see ``sending``)."""
        if self.sending:
            await asyncio.wait(list(self.sending))

    async def stop(self, grace: float = 30.0) -> None:
        if self.started and not self.stopped:
            self.stopped = True
            if self._recovery is not None:
                self._recovery.cancel()
            await self.flush()
            # No new work reaches a stopping worker: an execute delivered to it now would
            # wait out the task retry timeout, while the group's other members could run it.
            await self.network.unlisten(self.env.group, self.env.pid)
            await self.worker.stop(grace)
            if self._refresh is not None:
                self._refresh.cancel()
            self.subs.cancel_all()
            await self.network.stop()
