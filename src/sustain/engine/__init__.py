"""The pure protocol engine: every operation of PROTOCOL.md §2 over a ``Tx``."""

from sustain.engine.context import EngineConfig, Outcome
from sustain.engine.dispatch import Engine

__all__ = ["Engine", "EngineConfig", "Outcome"]
