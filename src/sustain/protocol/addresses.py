"""Message addresses (PROTOCOL.md §4.1): which strings are valid targets and listeners.

The reference validates with a WHATWG URL parser; this module follows the parts of that
grammar an address can exercise (scheme, userinfo, host, port, path) without being a full
URL parser:

* ``http``/``https`` (special schemes): any number of slashes after the colon, a non-empty
  host without forbidden host code points, an optional numeric port below 65536.
* ``poll://<cast>@<group>[/<id>]``: cast exactly ``uni`` or ``any``, group non-empty, id the
  path after the leading ``/`` (may contain ``/``; empty = no id).  Query and fragment are
  ignored.  Group and id are percent-decoded (§0.1 item 15) so that ``poll://any@g/a%20b``
  and a poll connection ``/poll/g/a b`` meet.
* ``gcps://<project>/<topic>``: non-empty host and non-empty path after ``/``.
* ``bash:...``: any parseable ``bash:`` URL; the backend is chosen at delivery.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote

import msgspec

Scheme = Literal["http", "https", "poll", "gcps", "bash"]

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.DOTALL)
# WHATWG "forbidden host code points" (opaque hosts); domains also forbid '%' and controls.
_FORBIDDEN_OPAQUE = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_OPAQUE | frozenset("%\x7f") | frozenset(map(chr, range(0x20)))
_STRIP = "".join(map(chr, range(0x21)))


class Address(msgspec.Struct, frozen=True):
    """A parsed, valid address.  ``url`` is the original string (the POST target for http)."""

    scheme: Scheme
    url: str
    cast: Literal["uni", "any"] | None = None
    group: str | None = None
    id: str | None = None


def parse_address(s: str) -> Address | None:
    """Parse ``s``; None when it is not a valid address.

    Cached: a deployment has few distinct targets and every create names one (long strings
    bypass the cache so it cannot be made to hold large bodies)."""
    return _parse_cached(s) if len(s) <= _CACHED_LEN else _parse(s)


_CACHED_LEN = 512


@lru_cache(maxsize=4096)
def _parse_cached(s: str) -> Address | None:
    return _parse(s)


def _parse(s: str) -> Address | None:
    cleaned = s.strip(_STRIP).replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME.fullmatch(cleaned)
    if m is None:
        return None
    scheme = m.group(1).lower()
    rest = m.group(2)
    if scheme in ("http", "https"):
        return _parse_http(scheme, s, rest)  # type: ignore[arg-type]
    if scheme not in ("poll", "gcps", "bash"):
        return None
    if not rest.startswith("//"):
        # No authority: only bash accepts a host-less URL.
        return Address(scheme="bash", url=s) if scheme == "bash" else None
    parts = _authority(rest[2:], special=False)
    if parts is None:
        return None
    user, host, path = parts
    if scheme == "bash":
        return Address(scheme="bash", url=s)
    if scheme == "gcps":
        if not host or len(path) < 2:
            return None
        return Address(scheme="gcps", url=s, group=unquote(host), id=unquote(path[1:]))
    if user not in ("uni", "any") or not host:
        return None
    id = unquote(path[1:]) if path.startswith("/") else ""
    cast: Literal["uni", "any"] = "uni" if user == "uni" else "any"
    return Address(scheme="poll", url=s, cast=cast, group=unquote(host), id=id or None)


def _parse_http(scheme: Literal["http", "https"], original: str, rest: str) -> Address | None:
    parts = _authority(rest.lstrip("/\\"), special=True)
    if parts is None or not parts[1]:
        return None
    return Address(scheme=scheme, url=original)


def _authority(s: str, *, special: bool) -> tuple[str, str, str] | None:
    """Split ``user@host:port/path?query#frag`` into (user, host, path); None if invalid."""
    ends = "/\\?#" if special else "/?#"
    cut = len(s)
    for ch in ends:
        i = s.find(ch)
        if i != -1 and i < cut:
            cut = i
    authority, tail = s[:cut], s[cut:]
    for ch in "?#":
        i = tail.find(ch)
        if i != -1:
            tail = tail[:i]
    user = ""
    at = authority.rfind("@")
    if at != -1:
        user = authority[:at].split(":", 1)[0]
        authority = authority[at + 1 :]
    host = authority
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return None
        host, port = authority[: close + 1], authority[close + 1 :]
        if port and not port.startswith(":"):
            return None
        port = port[1:]
    elif ":" in authority:
        host, port = authority.split(":", 1)
    else:
        port = ""
    if port and (not port.isascii() or not port.isdigit() or int(port) > 65535):
        return None
    if not host.startswith("["):
        forbidden = _FORBIDDEN_DOMAIN if special else _FORBIDDEN_OPAQUE
        if any(ch in forbidden for ch in (unquote(host) if special else host)):
            return None
    return user, host, tail
