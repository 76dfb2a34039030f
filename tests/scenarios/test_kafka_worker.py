"""Scenario 6 (SCENARIOS.md §6): one durable workflow per Kafka message, a consumer killed.

Real parts only: a ``tansu`` broker (``kafka_broker``), ``sustain serve``, two consumer
processes (``examples/kafka_worker/consumer.py``, each also a worker of the group, as the
scenario's ``record-deletor``) in one Kafka consumer group, and a ``sustain worker`` of the
same group.  Every step of every workflow appends a line to one file (``KAFKA_WORKER_LOG``):
``start``/``batch``/``fail`` per attempt of a batch, ``enqueue``/``done`` around the
completion message.  The example's simulation is seeded by the record id, so the test knows
how many batches each id needs (``batches_needed``) and which attempts raise (``fails``).

The acceptance test, step by step: 25 ids are produced; once at least 5 workflows have done
2 batches but not finished, and the consumer holding the partition (the leading deletor) is
in the middle of a batch, it is SIGKILLed.  Every id then completes exactly once: one
completion message on the output topic, its batches executed as scripted (a batch the crash
interrupted, or finished without its checkpoint, runs once more elsewhere), its promise
resolved.  Five ids are produced again and do no new work; a 20-batch id produced before a
1-batch id finishes after it (no head-of-line blocking); failed attempts were retried.
Durations are shortened through the example's environment (sleeps, batch time, retry
delay, lease, Kafka session timeout) and the server's ``--retry-timeout``.

The second test checks the integration's commit rule on its own: with the server down, a
consumer skips (and commits) messages that can never start a workflow but commits nothing
it could not create a promise for; SIGKILLed, it leaves those messages to the next consumer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from examples.kafka_worker.workflow import batches_needed, fails

from tests.scenarios.kafka_broker import Broker, kafka_broker_fixture  # noqa: F401
from tests.scenarios.processes import (
    SUSTAIN,
    Proc,
    Store,
    scenario_server,
    sustain_worker,
    wait_until,
)
from tests.servers import ServerProcess, start_server, unique

CONSUMER = "examples/kafka_worker/consumer.py"
PRODUCER = "examples/kafka_worker/producer.py"
APP = "examples.kafka_worker.workflow:sustain"
GROUP = "deletors"
BATCH_SECONDS = 0.3
SLEEP = 0.1
SESSION_TIMEOUT_MS = 3000  # how long the consumer group waits for a killed member


@dataclass(frozen=True)
class Line:
    event: str
    id: str
    batch: int
    attempt: int
    at: float
    pid: int


def story(log: Path) -> list[Line]:
    """Every complete line of the side-effect log, in the order written."""
    if not log.exists():
        return []
    complete = log.read_text().split("\n")[:-1]  # a line still being written has no "\n"
    lines = []
    for text in complete:
        event, id, batch, attempt, at, pid = text.split()
        lines.append(Line(event, id, int(batch), int(attempt), float(at), int(pid)))
    return lines


def record_ids(count: int, accept: Callable[[str], bool], start: int) -> list[str]:
    """The first ``count`` deterministic hex ids from ``start`` on that ``accept`` takes."""
    found: list[str] = []
    n = start
    while len(found) < count:
        id = hashlib.sha1(f"kafka-worker-{n}".encode()).hexdigest()[:32]
        n += 1
        if accept(id):
            found.append(id)
    return found


def choose_ids() -> list[str]:
    """25 ids: long enough that several are mid-flight at the kill, a few failing at once."""
    ids = record_ids(6, lambda id: batches_needed(id) == 6, 0)
    ids += record_ids(4, lambda id: batches_needed(id) == 8, 10_000)
    ids += record_ids(15, lambda id: batches_needed(id) <= 5, 20_000)
    assert len(set(ids)) == 25
    assert sum(fails(id, 1, 1) for id in ids) >= 3  # step 7: first calls that raise
    return ids


def holder(consumer: Proc, topic: str) -> bool:
    """Does this consumer hold the topic's partition (its latest rebalance line says so)?"""
    events = [line for line in consumer.output().splitlines() if "partitions " in line]
    return bool(events) and f"partitions assigned: {topic}[0]" in events[-1]


def joined(consumer: Proc) -> bool:
    return "partitions assigned" in consumer.output()


def open_batches(lines: list[Line], pid: int) -> list[Line]:
    """Batches ``pid`` started and has not finished (no ``batch``/``fail`` line yet)."""
    ended = {(x.id, x.batch, x.attempt) for x in lines if x.pid == pid and x.event != "start"}
    started = [x for x in lines if x.pid == pid and x.event == "start"]
    return [x for x in started if (x.id, x.batch, x.attempt) not in ended]


def in_flight_past_two(lines: list[Line]) -> int:
    """Workflows with at least 2 finished batches and no completion yet."""
    done = {x.id for x in lines if x.event == "enqueue"}
    batches = Counter(x.id for x in lines if x.event == "batch")
    return sum(1 for id, n in batches.items() if n >= 2 and id not in done)


def completions(bootstrap: str, topic: str) -> list[str]:
    """The ids on the output topic, in order (read from the start, no consumer group)."""

    async def read() -> list[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            end = (await consumer.end_offsets([partition]))[partition]
            await consumer.seek_to_beginning(partition)
            ids: list[str] = []
            while await consumer.position(partition) < end:
                batch = await consumer.getmany(partition, timeout_ms=1000)
                ids += [json.loads(m.value)["id"] for m in batch.get(partition, [])]
            return ids
        finally:
            await consumer.stop()

    return asyncio.run(read())


def produce(tmp: Path, env: dict[str, str], ids: list[str], tag: str) -> None:
    producer = Proc([PRODUCER, *ids], tmp / f"producer-{tag}.log", env)
    assert producer.wait(60) == 0, producer.output()


def begun(consumer: Proc, id: str, topic: str, offset: int) -> bool:
    return f"begun {id} ({topic}[0]@{offset})" in consumer.output()


def check_record(lines: list[Line], id: str, victim: int) -> None:
    """The scripted batches ran once each (one crash may repeat one of them), in order."""
    need = batches_needed(id)
    ok = [x for x in lines if x.id == id and x.event == "batch"]
    per_batch = Counter(x.batch for x in ok)
    assert sorted(per_batch) == list(range(1, need + 1)), (id, need, ok)
    repeated = [n for n, c in per_batch.items() if c > 1]
    assert len(repeated) <= 1 and all(per_batch[n] == 2 for n in repeated), (id, ok)
    for n in repeated:  # only a batch the killed process finished without its checkpoint
        first = next(x for x in ok if x.batch == n)
        assert first.pid == victim, (id, n, ok)
    for x in (x for x in lines if x.id == id and x.event == "fail"):
        assert fails(id, x.batch, x.attempt), x  # only the scripted attempts raise


def test_kafka_worker(tmp_path: Path, kafka_broker: Broker, store: Store) -> None:
    server = scenario_server(tmp_path, "--retry-timeout", "2000", store=store)
    try:
        run_scenario(tmp_path, kafka_broker, server)
    finally:
        server.stop()


def environment(tmp: Path, broker: Broker, url: str) -> dict[str, str]:
    """The example's knobs: fresh topics and consumer group, short sleeps and leases."""
    return {
        "SUSTAIN_URL": url,
        "KAFKA_BOOTSTRAP": broker.bootstrap,
        "KAFKA_WORKER_TOPIC": unique("records"),
        "KAFKA_WORKER_DONE_TOPIC": unique("deleted"),
        "KAFKA_CONSUMER_GROUP": unique("record-consumers"),
        "KAFKA_WORKER_GROUP": GROUP,
        "KAFKA_WORKER_SLEEP": str(SLEEP),
        "KAFKA_WORKER_BATCH_SECONDS": str(BATCH_SECONDS),
        "KAFKA_WORKER_RETRY_DELAY": "0.1",
        "KAFKA_WORKER_TTL": "2",
        "KAFKA_WORKER_LOG": str(tmp / "effects.log"),
        "KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
    }


def run_scenario(tmp: Path, broker: Broker, server: ServerProcess) -> None:
    env = environment(tmp, broker, server.url)
    topic, done_topic = env["KAFKA_WORKER_TOPIC"], env["KAFKA_WORKER_DONE_TOPIC"]
    log = Path(env["KAFKA_WORKER_LOG"])
    ids = choose_ids()

    # two deletors in one Resonate group and one Kafka consumer group, plus a plain worker
    consumers = [Proc([CONSUMER], tmp / f"consumer-{i}.log", env) for i in range(2)]
    worker = sustain_worker(APP, GROUP, tmp / "worker.log", env)
    wait_until(lambda: all(joined(c) for c in consumers)
               and sum(holder(c, topic) for c in consumers) == 1, 90,
               "both consumers in the group, one holding the partition")  # fmt: skip
    produce(tmp, env, ids, "25")

    # kill the leading deletor mid-batch once >= 5 workflows are past 2 batches, unfinished
    leader = next(c for c in consumers if holder(c, topic))
    survivor = next(c for c in consumers if c is not leader)

    def ready_to_kill() -> bool:
        lines = story(log)
        fresh = [x for x in open_batches(lines, leader.pid)
                 if time.time() - x.at < BATCH_SECONDS / 2]  # fmt: skip
        return in_flight_past_two(lines) >= 5 and bool(fresh)

    wait_until(ready_to_kill, 60, ">= 5 workflows past 2 batches and a batch in the leader")
    leader.kill9()
    at_kill = story(log)
    interrupted = open_batches(at_kill, leader.pid)
    assert in_flight_past_two(at_kill) >= 5

    # every id completes, though the leader died holding some of them
    wait_until(lambda: {x.id for x in story(log) if x.event == "done"} >= set(ids), 90,
               "every workflow's completion")  # fmt: skip
    lines = story(log)
    for x in interrupted:  # what the crash interrupted ran again in another process
        assert any(y.id == x.id and y.batch == x.batch and y.pid != leader.pid
                   and y.event in ("batch", "fail") for y in lines), (x, lines)  # fmt: skip
    assert interrupted, "the leader was killed while no batch was running in it"

    # dedup: 5 ids produced again start nothing (the survivor takes the partition over)
    again = ids[:5]
    produce(tmp, env, again, "again")
    wait_until(lambda: all(begun(survivor, id, topic, 25 + i) for i, id in enumerate(again)), 90,
               "the survivor confirming the re-produced ids")  # fmt: skip

    # no head-of-line blocking: a 20-batch id, then a 1-batch id behind it
    long = record_ids(1, lambda id: batches_needed(id) == 20, 30_000)[0]
    short = record_ids(1, lambda id: batches_needed(id) == 1 and not fails(id, 1, 1), 40_000)[0]
    produce(tmp, env, [long, short], "hol")
    wait_until(lambda: {long, short} <= {x.id for x in story(log) if x.event == "done"}, 90,
               "the long and the short workflow to complete")  # fmt: skip
    final = story(log)
    done_order = [x.id for x in final if x.event == "done"]
    assert done_order.index(short) < done_order.index(long)
    on_topic = completions(broker.bootstrap, done_topic)
    assert on_topic.index(short) < on_topic.index(long)

    # exactly one completion per id; scripted batches only; promises resolved
    assert lines == final[: len(lines)]
    assert [x for x in final[len(lines) :] if x.id in ids] == [], "re-produced ids did work"
    for id in [*ids, long, short]:
        check_record(final, id, leader.pid)
        enqueued = [x for x in final if x.id == id and x.event == "enqueue"]
        victim_enqueued = any(x.pid == leader.pid for x in enqueued)
        most = 2 if victim_enqueued else 1  # a crash between the send and its checkpoint
        assert 1 <= on_topic.count(id) <= most, (id, on_topic.count(id), enqueued)
        assert 1 <= sum(x.event == "done" for x in final if x.id == id) <= most
        record = server.ok("promise.get", {"id": id})["promise"]
        assert record["state"] == "resolved", record
        value = json.loads(base64.b64decode(record["value"]["data"]))
        assert value == {"id": id, "batches": batches_needed(id)}, value
    assert sorted(set(on_topic)) == sorted([*ids, long, short])
    for id in (id for id in ids if fails(id, 1, 1)):  # step 7: the first call raised, retried
        assert any(x.event == "fail" and x.id == id and (x.batch, x.attempt) == (1, 1)
                   for x in final), id  # fmt: skip

    # the CLI shows a workflow promise resolved, with its result
    cli = Proc([SUSTAIN, "-S", server.url, "--json", "promises", "get", ids[0]],
               tmp / "cli.log")  # fmt: skip
    assert cli.wait(60) == 0, cli.output()
    shown = json.loads(cli.output())["promise"]
    assert shown["state"] == "resolved", shown

    # SIGTERM: the consumer leaves the group and stops, the worker stops, both cleanly
    assert survivor.stop() == 0, survivor.output()
    assert worker.stop() == 0, worker.output()


def committed(bootstrap: str, group: str, topic: str) -> int | None:
    """The consumer group's committed offset on the topic's partition (None: never).

    Read by a consumer of the group with a manual assignment: it fetches the group's
    offsets without joining the group (no rebalance of the real members)."""

    async def read() -> int | None:
        partition = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                    enable_auto_commit=False)  # fmt: skip
        await consumer.start()
        try:
            consumer.assign([partition])
            offset = await consumer.committed(partition)
        finally:
            await consumer.stop()
        return None if offset is None or offset < 0 else int(offset)

    return asyncio.run(read())


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that starts later: no
    outgoing connection of another test can take it as its local port meanwhile."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")  # Linux; elsewhere a guess
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def produce_unstartable(bootstrap: str, topic: str) -> None:
    """Two messages no workflow can start from: no key, and a key that is no root id."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b'"keyless"')
            await producer.send_and_wait(topic, b'"dotted"', key=b"not.a.root.id")
        finally:
            await producer.stop()

    asyncio.run(send())


def test_offsets_are_committed_only_once_the_promises_exist(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    """Two messages that can never start a workflow are skipped and committed.  Then a
    consumer that fetched three messages but could not create their promises (the server is
    down) commits none of them; killed, it leaves them to the next consumer, which starts
    each workflow once the server is up, and commits only then."""
    port = quiet_port()  # no server there yet
    env = environment(tmp_path, kafka_broker, f"http://127.0.0.1:{port}")
    topic, group = env["KAFKA_WORKER_TOPIC"], env["KAFKA_CONSUMER_GROUP"]
    log = Path(env["KAFKA_WORKER_LOG"])
    first = Proc([CONSUMER], tmp_path / "consumer-first.log", env)
    wait_until(lambda: holder(first, topic), 90, "the first consumer holding the partition")
    produce_unstartable(kafka_broker.bootstrap, topic)  # offsets 0 and 1
    wait_until(lambda: committed(kafka_broker.bootstrap, group, topic) == 2, 60,
               "the unstartable messages skipped and committed")  # fmt: skip
    assert first.output().count("skipping") == 2, first.output()
    ids = choose_ids()[:3]
    produce(tmp_path, env, ids, "3")  # offsets 2, 3, 4
    # the creates are tried alone or together in one sustain.batch (the SDK coalesces them)
    creates = re.compile(
        rf"(promise\.create|sustain\.batch of \d+) to http://127\.0\.0\.1:{port} failed, retrying"
    )
    wait_until(lambda: len(creates.findall(first.output())) >= 3, 60, "the creates being tried")
    assert committed(kafka_broker.bootstrap, group, topic) == 2  # nothing past them
    first.kill9()

    server = start_server(tmp_path, "--retry-timeout", "2000", port=port)
    try:
        second = Proc([CONSUMER], tmp_path / "consumer-second.log", env)
        wait_until(lambda: all(begun(second, id, topic, 2 + n) for n, id in enumerate(ids)),
                   90, "the second consumer starting the re-delivered messages")  # fmt: skip
        wait_until(lambda: committed(kafka_broker.bootstrap, group, topic) == 5, 30,
                   "the offsets committed")  # fmt: skip
        assert "skipping" not in second.output()  # it resumed after them
        wait_until(lambda: {x.id for x in story(log) if x.event == "done"} >= set(ids), 60,
                   "the three workflows to complete")  # fmt: skip
        final = story(log)
        for id in ids:
            check_record(final, id, victim=-1)  # the first consumer ran no step at all
            assert sum(x.event == "done" for x in final if x.id == id) == 1
            record = server.ok("promise.get", {"id": id})["promise"]
            assert record["state"] == "resolved", record
        assert second.stop() == 0, second.output()
    finally:
        server.stop()
