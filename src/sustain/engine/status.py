"""``sustain.status.set`` and ``sustain.status.get``: the status record of a promise, a Sustain
extension (protocol/status.py says what it holds and why).

The record belongs to an existing promise (404 otherwise, as ``promise.get``), whatever its
state: a write that races the promise's settle is kept as history, which is what the record
becomes anyway once the promise settles.  ``updatedAt`` is this server's clock.
"""

from __future__ import annotations

import msgspec

from sustain.engine.context import Ctx
from sustain.engine.promises import PROMISE_NOT_FOUND
from sustain.protocol.errors import ProtocolError
from sustain.protocol.status import Status, StatusGet, StatusPage, StatusSet

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Status).decode


def op_set(ctx: Ctx, req: StatusSet) -> tuple[int, object]:
    if ctx.tx.get_promise(req.id) is None:
        raise ProtocolError(404, PROMISE_NOT_FOUND)
    record = msgspec.structs.replace(req.status, updatedAt=ctx.now)
    ctx.tx.put_status(req.id, _encode(record).decode())
    return 200, {"id": req.id, "status": record}


def op_get(ctx: Ctx, req: StatusGet) -> tuple[int, object]:
    found = ctx.tx.get_statuses(sorted(set(req.ids)))
    return 200, StatusPage({id: _decode(text) for id, text in sorted(found.items())})
