"""``UiServices``: the parts of the process runtime the UI uses, and the authenticator."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from sustain.runtime.apply import Applier
    from sustain.runtime.clock import Clock
    from sustain.runtime.poll import PollRegistry
    from sustain.server.auth import Authenticator
    from sustain.store.base import Store


class UiServices(NamedTuple):
    store: Store  # read-only queries (ui/queries.py)
    clock: Clock  # "now" of the pages and of token expiry
    registry: PollRegistry  # the open poll connections of GET /workers
    applier: Applier  # the two writes, applied like the API's
    authenticator: Authenticator | None  # None when auth is off
