"""One durable workflow per Kafka message: a consumer loop that never waits for the work.

``WorkflowConsumer`` consumes topics in a Kafka consumer group (aiokafka; install
``sustain[kafka]``) and, for each message, starts one durable workflow whose promise id is
the message's id: by default its key, or whatever ``message_id(message)`` returns (a header,
a field of the value).  It starts the workflow with ``begin_rpc`` (fire and forget: a worker
of the target group runs it, and that may be this very process, whose ``Sustain`` is started
first and serves its group even while the consumer group gives it no partition) and moves
on; a slow message never holds up the ones behind it.

Delivery guarantees, and why:

* **Offsets are committed only after the workflow's promise exists.**  ``begin_rpc`` sends
  the ``promise.create``; the consumer then reads the promise back (``promise.get``, retried
  while it answers 404) and only once the server has it, on disk, since the server answers
  a write only after its fsync, is the offset past that message committed.  The consumer
  waits for that round trip, never for the workflow.  A consumer that dies before its commit
  has its messages delivered again to another member of the group.
* **A message delivered again does no new work.**  Its id is the promise id, and creating an
  existing promise returns the existing one: a pending workflow goes on where it is (another
  worker re-claims it once the dead process's lease lapses), a finished one keeps its stored
  result and nothing runs.  So each message id starts *exactly one* workflow execution, even
  though Kafka delivers at least once.  The same holds for a message produced twice with the
  same id.
* **Inside the workflow**, every step is checkpointed: a finished step never runs again.  A
  step whose process dies after its side effect but before its checkpoint runs once more
  (at-least-once per step); a side effect that must not repeat needs its own idempotency
  key, for which the step's promise id (``ctx.id``) is the natural choice.
* **Nothing is skipped.**  When the server cannot be reached or refuses a create, the offset
  is not committed; the partition is rewound to the first message not yet started, and
  tried again after a growing pause.  The one exception is a message that can never start:
  when ``message_id`` or ``arguments`` raises, or the id is not a valid root id (empty,
  containing ``.`` or ``:``), the message is logged and skipped, because retrying it would
  block its partition forever.
* **No order** between messages: their workflows run concurrently, and finish in any order.

Shutdown: ``stop()`` (``serve()`` wires it to SIGTERM and SIGINT) ends the fetch loop.  The
batch in hand is committed if its promises are confirmed within ``STOP_GRACE`` seconds, and
otherwise left uncommitted (it is delivered again, at no cost).  The consumer leaves the
group, which rebalances at once rather than after a session timeout, and ``serve()`` stops
the ``Sustain`` gracefully (running tasks of this process finish or suspend), giving up after
``STOP_TIMEOUT`` seconds when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

try:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
    from aiokafka.errors import IllegalStateError, KafkaError
except ImportError as exc:  # an optional dependency: say which extra brings it
    raise ImportError(
        "sustain.integrations.kafka needs aiokafka: pip install 'sustain[kafka]'"
    ) from exc

from sustain.errors import InvalidIdError, ServerError
from sustain.sdk.client import Sustain

log = logging.getLogger(__name__)

MAX_RECORDS = 500  # per fetch: bounds the promises begun before the next commit
MAX_PAUSE = 10.0  # seconds: the longest wait before a failed start is tried again
CREATED_DEADLINE = 60.0  # seconds a begun promise may take to appear before we call it failed
STOP_GRACE = 5.0  # seconds the batch in hand gets to start once stop() is called
STOP_TIMEOUT = 20.0  # seconds serve() waits for the Sustain's graceful stop


class Message(Protocol):
    """What ``message_id`` and ``arguments`` receive: aiokafka's ``ConsumerRecord``."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


class SkipMessage(Exception):
    """Raised by ``message_id`` for a message that starts no workflow (it is committed)."""


def key_id(message: Message) -> str:
    """The default id: the message's key, as UTF-8 text."""
    if message.key is None:
        raise SkipMessage("the message has no key")
    return message.key.decode()


def header_id(name: str) -> Callable[[Message], str]:
    """An id taken from the header ``name`` (UTF-8 text)."""

    def from_header(message: Message) -> str:
        for key, value in message.headers:
            if key == name:
                return value.decode()
        raise SkipMessage(f"the message has no header {name!r}")

    return from_header


def id_only(message: Message, id: str) -> Sequence[Any]:
    """The default arguments of the workflow: the message id alone."""
    return (id,)


class WorkflowConsumer:
    """Consume ``topics`` in ``group_id`` and begin ``function`` once per message id.

    ``function`` is a function registered on ``sustain`` (or its name, run by the workers
    of ``target``, default the Sustain's own group).  ``arguments(message, id)`` gives its
    positional arguments.  ``consumer_options`` go to ``AIOKafkaConsumer`` as they are
    (``session_timeout_ms``, security settings, ...); auto-commit is always off, since
    commits are what this class is about.
    """

    def __init__(
        self,
        sustain: Sustain,
        function: Callable[..., Any] | str,
        *,
        topics: str | Iterable[str],
        bootstrap_servers: str,
        group_id: str,
        message_id: Callable[[Message], str] = key_id,
        arguments: Callable[[Message, str], Sequence[Any]] = id_only,
        target: str | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._sustain = sustain.options(target=target) if target else sustain
        self._function = function
        self._topics = [topics] if isinstance(topics, str) else list(topics)
        self._message_id = message_id
        self._arguments = arguments
        options: dict[str, Any] = {"auto_offset_reset": "earliest", **(consumer_options or {})}
        options["enable_auto_commit"] = False
        self._options = {"bootstrap_servers": bootstrap_servers, "group_id": group_id, **options}
        self._stopping = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = 0  # messages whose workflow promise was confirmed (new or existing)

    def stop(self) -> None:
        """End ``run()``: the batch in hand is committed if its workflows start within
        ``STOP_GRACE`` seconds, else left to be delivered again (thread-safe)."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopping.set)
        else:
            self._stopping.set()

    async def run(self) -> None:
        """Consume until ``stop()``."""
        self._loop = asyncio.get_running_loop()
        # start the Sustain first: this process serves its group as a worker even while
        # the consumer group gives it no partition
        await self._sustain.start()
        consumer = AIOKafkaConsumer(**self._options)
        await consumer.start()
        try:
            consumer.subscribe(self._topics, listener=_LogAssignments())
            pause = 0.0
            while not self._stopping.is_set():
                batch = await self._fetch(consumer)
                if await self._start_and_commit(consumer, batch):
                    pause = 0.0
                else:  # something could not be started: back off, then take it again
                    pause = min(MAX_PAUSE, pause * 2 or 0.2)
                    await self._sleep(pause)
        finally:
            await consumer.stop()  # leaves the group: its partitions move on at once

    async def _fetch(self, consumer: AIOKafkaConsumer) -> dict[Any, list[Any]]:
        fetch = asyncio.ensure_future(consumer.getmany(timeout_ms=1000, max_records=MAX_RECORDS))
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([fetch, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not fetch.done():
            # only on stop: nothing is committed after this, so whatever the cancelled fetch
            # had read is delivered again
            fetch.cancel()
            return {}
        result: dict[Any, list[Any]] = fetch.result()
        return result

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _start_and_commit(
        self, consumer: AIOKafkaConsumer, batch: Mapping[Any, list[Any]]
    ) -> bool:
        """Begin every message of the batch, commit each partition up to its first failure
        and rewind it there; False when any message failed."""
        records = [(tp, message) for tp, messages in batch.items() for message in messages]
        if not records:
            return True
        outcomes = await self._confirmed(message for _, message in records)
        if outcomes is None:  # stopping: commit nothing, the batch is delivered again
            return False
        commit: dict[TopicPartition, int] = {}
        failed: dict[TopicPartition, int] = {}
        for (tp, message), outcome in zip(records, outcomes, strict=True):
            if tp in failed:
                continue
            if isinstance(outcome, BaseException):
                log.warning("could not start the workflow of %s@%d, will retry: %r",
                            tp, message.offset, outcome)  # fmt: skip
                failed[tp] = message.offset
            else:
                commit[tp] = message.offset + 1
        if commit:
            try:
                await consumer.commit(commit)
            except KafkaError as exc:
                # a rebalance took the partition away: its new owner receives the messages
                # again and starts nothing new (the promises exist)
                log.warning("commit failed (%r); the messages will be delivered again", exc)
        for tp, offset in failed.items():
            with contextlib.suppress(IllegalStateError):  # no longer ours: nothing to rewind
                consumer.seek(tp, offset)
        return not failed

    async def _confirmed(self, messages: Iterable[Message]) -> list[Any] | None:
        """Each message's outcome (None, or the exception that kept it from starting); None
        when ``stop()`` came and the begins did not finish within ``STOP_GRACE``."""
        begins: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(self._begin(m) for m in messages), return_exceptions=True)
        )
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([begins, stop], return_when=asyncio.FIRST_COMPLETED)
        if not begins.done():  # stopping: a little time to finish, since most are quick
            await asyncio.wait([begins], timeout=STOP_GRACE)
        stop.cancel()
        if not begins.done():
            begins.cancel()
            await asyncio.wait([begins])
            if not begins.cancelled():
                begins.exception()  # retrieved: the cancellation is expected, not an error
            return None
        outcomes: list[Any] = begins.result()
        return outcomes

    async def _begin(self, message: Message) -> None:
        try:
            id = self._message_id(message)
            args = self._arguments(message, id)
            handle = self._sustain.begin_rpc(id, self._function, *args)
        except (SkipMessage, InvalidIdError) as exc:
            log.error("skipping %s[%d]@%d: %s", message.topic, message.partition,
                      message.offset, exc)  # fmt: skip
            return
        except Exception:  # a bug in message_id or arguments: retrying cannot fix it
            log.exception("skipping %s[%d]@%d", message.topic, message.partition,
                          message.offset)  # fmt: skip
            return
        await self._created(id, handle)
        self.started += 1
        log.info("begun %s (%s[%d]@%d)", id, message.topic, message.partition, message.offset)

    async def _created(self, id: str, handle: Any) -> None:
        """Return once the promise ``id`` is in the store (not when the workflow ends).

        ``begin_rpc`` sends the create at once; its handle only tells us about the end of the
        workflow, so the promise is read back: a 404 means the create has not been answered
        yet (the two requests may cross on the wire), anything else means it is durable.
        """
        pause = 0.005
        deadline = asyncio.get_running_loop().time() + CREATED_DEADLINE
        while True:
            finished = handle.done()  # read before the get: see below
            try:
                await self._sustain.promises.get(id)
                return
            except ServerError as exc:
                if exc.status != 404:
                    raise
            if finished:  # the handle ended before the promise existed: the create failed
                await handle  # raises the create's error
                raise RuntimeError(f"the promise {id!r} was not created")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the promise {id!r} was not created")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT, then leave the group and stop the Sustain."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            await self.run()
        finally:
            try:
                await asyncio.wait_for(self._sustain.astop(), STOP_TIMEOUT)
            except TimeoutError:
                # a begun create still retrying against an unreachable server: exit
                # anyway, nothing unconfirmed was committed
                log.warning("the Sustain did not stop within %.0f s; exiting", STOP_TIMEOUT)


class _LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Logs which partitions this consumer holds (operators, and the tests, read it)."""

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        log.info("partitions revoked: %s", _names(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("partitions assigned: %s", _names(assigned))


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)) or "none"
