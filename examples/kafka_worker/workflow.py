"""The durable workflow one Kafka message starts: delete a record's rows in batches.

``workflow(ctx, record_id, offset)`` runs ``delete_batch`` until it reports that nothing is
left, with a durable ``ctx.sleep`` between batches, then ``enqueue`` produces
``{"id", "offset"}`` to the topic of deleted records.  Each batch is a checkpoint: after a
crash, another worker of the group replays the finished batches from the store and goes on
with the next one.  ``delete_batch`` is flaky on purpose (about one call in four raises) and
its failures are retried with exponential backoff; the workflow itself never re-runs.

The simulation is seeded by the record id, so a record's story is the same in every process
and every run: ``batches_needed(id)`` says how many batches it takes (about one batch in
three is the last), and ``fails(id, batch, attempt)`` which attempts raise.  That is what the
end-to-end test checks the real executions against.

Environment: ``SUSTAIN_URL`` (``http://127.0.0.1:8001``), ``KAFKA_BOOTSTRAP``
(``localhost:9092``), ``KAFKA_WORKER_GROUP`` (the worker group, ``deletors``),
``KAFKA_WORKER_SLEEP`` (seconds between batches, 5), ``KAFKA_WORKER_BATCH_SECONDS`` (the time
one batch takes, 0.5), ``KAFKA_WORKER_RETRY_DELAY`` (first retry pause, 1 s, doubling),
``KAFKA_WORKER_TTL`` (the task lease, 10 s), ``KAFKA_WORKER_LOG`` (a file every executed
batch and completion is appended to; the test counts them there).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from sustain import Context, Exponential, Sustain

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = os.environ.get("KAFKA_WORKER_TOPIC", "records_to_be_deleted")
DONE_TOPIC = os.environ.get("KAFKA_WORKER_DONE_TOPIC", "records_that_were_deleted")
GROUP = os.environ.get("KAFKA_WORKER_GROUP", "deletors")
SLEEP = float(os.environ.get("KAFKA_WORKER_SLEEP", "5"))
BATCH_SECONDS = float(os.environ.get("KAFKA_WORKER_BATCH_SECONDS", "0.5"))
RETRY = Exponential(delay=float(os.environ.get("KAFKA_WORKER_RETRY_DELAY", "1")))
LOG = os.environ.get("KAFKA_WORKER_LOG")

FAIL_CHANCE = 0.25  # per call of delete_batch
LAST_CHANCE = 1 / 3  # per successful batch: about one call in four ends the loop
MAX_BATCHES = 50

sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    group=GROUP,
    ttl=float(os.environ.get("KAFKA_WORKER_TTL", "10")),
)


# -- the seeded simulation ------------------------------------------------------------------
def _chance(*parts: object) -> float:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def batches_needed(record_id: str) -> int:
    for batch in range(1, MAX_BATCHES):
        if _chance(record_id, batch, "last") < LAST_CHANCE:
            return batch
    return MAX_BATCHES


def fails(record_id: str, batch: int, attempt: int) -> bool:
    return _chance(record_id, batch, attempt, "fail") < FAIL_CHANCE


def record(event: str, record_id: str, batch: int = 0, attempt: int = 0) -> None:
    """One step of the story: printed, and appended to ``KAFKA_WORKER_LOG`` (if set) as
    ``event id batch attempt unix-time pid`` for the test to count."""
    if event in ("batch", "fail", "done"):
        print(f"[{os.getpid()}] {event} {record_id} {batch or ''}".rstrip(), flush=True)
    if LOG:  # one O_APPEND write per line: lines from many processes never interleave
        line = f"{event} {record_id} {batch} {attempt} {time.time():.3f} {os.getpid()}\n"
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


# -- the steps and the workflow -------------------------------------------------------------
def delete_batch(ctx: Context, record_id: str, batch: int) -> bool:
    """Delete one batch of the record's rows; True while rows are left."""
    attempt = ctx.info.attempt
    record("start", record_id, batch, attempt)
    time.sleep(BATCH_SECONDS)  # the work (a plain function runs in a thread)
    if fails(record_id, batch, attempt):
        record("fail", record_id, batch, attempt)
        raise RuntimeError(f"batch {batch} of {record_id} failed (attempt {attempt})")
    record("batch", record_id, batch, attempt)
    return batch < batches_needed(record_id)


async def enqueue(ctx: Context, record_id: str, offset: int) -> None:
    """Announce the deletion on the topic of deleted records."""
    record("enqueue", record_id)
    value = json.dumps({"id": record_id, "offset": offset}).encode()
    # a producer per completion: one connection on a short-lived step, and nothing left
    # running on the SDK's loop when the process stops
    async with AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all") as producer:
        await producer.send_and_wait(DONE_TOPIC, value, key=record_id.encode())
    record("done", record_id)


@sustain.register
def workflow(ctx: Context, record_id: str, offset: int) -> Any:
    batch = 1
    while (yield ctx.options(retry=RETRY).run(delete_batch, record_id, batch)):
        yield ctx.sleep(SLEEP)  # durable: a crash here loses nothing
        batch += 1
    yield ctx.run(enqueue, record_id, offset)
    return {"id": record_id, "batches": batch}


async def ensure_topics() -> None:
    """Create the two topics (one partition each, as in the scenario) if they are missing."""
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        for name in (TOPIC, DONE_TOPIC):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
