"""The producer: ``python examples/kafka_worker/producer.py -n 25`` (or given ids).

Writes each record id to ``records_to_be_deleted``: the key is the id (the consumer's
promise id) and the value its JSON encoding, as the scenario's ``record-producer`` does.
Without ids it makes ``-n`` fresh uuid4 hex ids; ids given on the command line are sent as
they are, in order (producing an id twice is how you see that the second does no work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from aiokafka import AIOKafkaProducer
from workflow import BOOTSTRAP, TOPIC, ensure_topics


async def produce(ids: list[str]) -> None:
    await ensure_topics()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        for record_id in ids:
            await producer.send_and_wait(TOPIC, json.dumps(record_id).encode(),
                                         key=record_id.encode())  # fmt: skip
            print(record_id, flush=True)
    finally:
        await producer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=25, help="how many fresh ids (default 25)")
    parser.add_argument("ids", nargs="*", help="ids to produce instead of fresh ones")
    args = parser.parse_args()
    asyncio.run(produce(args.ids or [uuid.uuid4().hex for _ in range(args.n)]))
