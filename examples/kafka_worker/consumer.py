"""The consumer: ``python examples/kafka_worker/consumer.py``.

Consumes ``records_to_be_deleted`` in the consumer group ``record_consumer_group`` and, for
each message, begins ``workflow(record_id, offset)`` under the promise id ``record_id`` (the
message key) with ``sustain.integrations.kafka``: it never waits for a workflow, and commits
an offset only once the workflow's promise exists, so a message delivered again (after a
crash, or produced twice) finds its promise and starts nothing new.

This process is also a worker of the group (its ``Sustain`` has the workflow registered),
like the scenario's ``record-deletor``; ``sustain worker`` processes add capacity.
Environment: as ``workflow.py``, plus ``KAFKA_CONSUMER_GROUP`` and
``KAFKA_SESSION_TIMEOUT_MS`` (10000: how long the group waits for a silent member).
"""

from __future__ import annotations

import asyncio
import logging
import os

from workflow import BOOTSTRAP, TOPIC, ensure_topics, sustain, workflow

from sustain.integrations.kafka import Message, WorkflowConsumer


def arguments(message: Message, record_id: str) -> tuple[str, int]:
    return (record_id, message.offset)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    asyncio.run(ensure_topics())
    WorkflowConsumer(
        sustain,
        workflow,
        topics=TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=os.environ.get("KAFKA_CONSUMER_GROUP", "record_consumer_group"),
        arguments=arguments,
        consumer_options={
            "session_timeout_ms": int(os.environ.get("KAFKA_SESSION_TIMEOUT_MS", "10000")),
            "heartbeat_interval_ms": 1000,
        },
    ).serve()
