"""JWT authentication and per-prefix authorization (PROTOCOL.md §7.1, §0 items 9-10, §0.1 item 14).

Theory of operation
-------------------
``Authenticator`` is built once at start-up from ``AuthConfig``.  ``publickey`` is either the
path of a PEM public key (or X.509 certificate) or the literal ``"none"``:

* a key file fixes the accepted ``alg`` set by its type: RSA → RS256/384/512 + PS256/384/512,
  EC → ES256/ES384, Ed25519 → EdDSA.  PyJWT verifies the signature and that the token's
  ``alg`` is in that set;
* ``"none"`` is *unsigned mode*: any well-formed JWT is accepted without checking its
  signature, ``alg: none`` included (§0 item 9).

The claims are then checked here rather than by PyJWT so that "now" is an argument (tests and
the server's monotonic clock decide it, not the library's wall clock) and so the rules are the
protocol's, in one place:

* ``exp`` is required and numeric; the token is expired when ``exp <= now - 60`` (60 s leeway,
  the reference library's default);
* ``nbf``, when present, must be numeric and ``nbf <= now + 60``;
* ``iss`` / ``role`` present but not a string → reject, whatever is configured (§0.1 item 14);
* ``iss`` configured → the claim must equal it;
* ``aud`` configured → the claim must be that string or a list of strings containing it
  (§0 item 10).  When ``aud`` is not configured the claim is not looked at.

``authenticate`` answers the claims, or ``None`` for any failure (the server answers 401
``Unauthorized``).  ``authorize`` applies the table of ``access`` (False → 403 ``Forbidden``):
§7.1 extended to every id, tag and poll group an operation touches, by whole segments.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

import jwt
import msgspec
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.utils import CryptographyDeprecationWarning

from sustain.errors import SustainError
from sustain.server import access

UNSIGNED = "none"
LEEWAY_SECONDS = 60

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_ALGORITHMS = ("ES256", "ES384")
ED25519_ALGORITHMS = ("EdDSA",)

PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey


class AuthConfig(msgspec.Struct, frozen=True):
    """The ``auth`` section of the configuration; present ⇒ auth is on."""

    publickey: str
    iss: str | None = None
    aud: str | None = None


class AuthKeyError(SustainError, ValueError):
    """The configured public key cannot be used (unreadable file, not PEM, unsupported type).

    Raised at start-up, so the server refuses to run rather than accept every token or none.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Cannot use auth public key {path!r}: {reason}")
        self.path = path
        self.reason = reason


def load_public_key(path: str) -> tuple[PublicKey, tuple[str, ...]]:
    """Read a PEM public key (or certificate) and answer it with the algorithms it accepts."""
    try:
        pem = Path(path).read_bytes()
    except OSError as err:
        raise AuthKeyError(path, err.strerror or str(err)) from err
    key: object
    try:
        # A DSA key loads with a deprecation warning today and will not load at all once
        # cryptography drops it; either way it is refused below with a message that says what
        # to use, so the library's warning adds nothing for the operator.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            if b"-----BEGIN CERTIFICATE-----" in pem:
                key = x509.load_pem_x509_certificate(pem).public_key()
            else:
                key = load_pem_public_key(pem)
    except UnsupportedAlgorithm as err:
        raise AuthKeyError(path, "unsupported key type (use RSA, EC or Ed25519)") from err
    except (ValueError, TypeError) as err:
        raise AuthKeyError(path, "not a PEM public key or certificate") from err
    if isinstance(key, RSAPublicKey):
        return key, RSA_ALGORITHMS
    if isinstance(key, EllipticCurvePublicKey):
        return key, EC_ALGORITHMS
    if isinstance(key, Ed25519PublicKey):
        return key, ED25519_ALGORITHMS
    raise AuthKeyError(path, f"unsupported key type {type(key).__name__} (use RSA, EC or Ed25519)")


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer <jwt>`` header (poll streams, ``/metrics``)."""
    token = None
    for key, value in headers:
        if key == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                token = text[7:].strip()
    return token


def _is_number(value: object) -> TypeGuard[float]:
    # bool is an int subclass; a JSON ``true`` is not a timestamp.  Python's JSON parser
    # accepts NaN and Infinity, and ``NaN <= t`` is always False: an ``exp`` of NaN would
    # never expire, so only finite numbers count.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


class Authenticator:
    """Checks request tokens and what their claims allow."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._key: PublicKey | None = None
        self._algorithms: tuple[str, ...] = ()
        if config.publickey != UNSIGNED:
            self._key, self._algorithms = load_public_key(config.publickey)

    @property
    def unsigned(self) -> bool:
        return self._key is None

    def authenticate(self, token: str | None, now: float) -> dict[str, Any] | None:
        """The token's claims when it is acceptable at ``now`` (seconds), else ``None``."""
        if not isinstance(token, str) or not token:
            return None
        claims = self._decode(token)
        if claims is None or not self._claims_valid(claims, now):
            return None
        return claims

    def _decode(self, token: str) -> dict[str, Any] | None:
        # Claims are validated by _claims_valid; PyJWT only parses (and verifies the signature).
        options: dict[str, Any] = {
            "verify_signature": self._key is not None,
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": False,
            "verify_iss": False,
            "verify_sub": False,
            "verify_jti": False,
            "require": [],
        }
        try:
            decoded = jwt.decode_complete(
                token,
                key=self._key if self._key is not None else "",
                algorithms=list(self._algorithms) if self._key is not None else None,
                options=options,  # type: ignore[arg-type]
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            # Any malformed, badly signed or wrongly typed token is simply unauthenticated.
            return None
        payload = decoded.get("payload")
        return payload if isinstance(payload, dict) else None

    def _claims_valid(self, claims: dict[str, Any], now: float) -> bool:
        exp = claims.get("exp")
        if not _is_number(exp) or exp <= now - LEEWAY_SECONDS:
            return False
        if "nbf" in claims:
            nbf = claims["nbf"]
            if not _is_number(nbf) or nbf > now + LEEWAY_SECONDS:
                return False
        for name in ("iss", "role"):
            if name in claims and not isinstance(claims[name], str):
                return False
        if self.config.iss is not None and claims.get("iss") != self.config.iss:
            return False
        if self.config.aud is not None:
            aud = claims.get("aud")
            if isinstance(aud, str):
                return aud == self.config.aud
            if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
                return self.config.aud in aud
            return False
        return True

    def authorize(self, claims: dict[str, Any], kind: str, data: dict[str, Any]) -> bool:
        """Whether ``claims`` allow the operation ``kind`` on ``data`` (``access.allows``)."""
        return access.allows(claims, kind, data)
