"""``sustain worker tests.sdk.types_worker:sustain``: types_app's functions, served at
``SUSTAIN_URL`` (the worker's ``--group`` picks the group)."""

from __future__ import annotations

from sustain import Sustain
from tests.sdk import types_app

sustain = Sustain()
types_app.register(sustain)
