"""JWT authentication and per-prefix authorization (PROTOCOL.md §7.1, §0 items 9-10, §0.1 item 14).

Real keys are generated here with cryptography and real tokens are signed with PyJWT.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from sustain.server.auth import AuthConfig, Authenticator, AuthKeyError

NOW = 1_800_000_000.0
EXP = int(NOW) + 3600


def _public_pem(private: Any) -> bytes:
    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ec384_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _auth(tmp_path: Path, private: Any, **kw: str) -> Authenticator:
    path = tmp_path / "key.pem"
    path.write_bytes(_public_pem(private))
    return Authenticator(AuthConfig(publickey=str(path), **kw))


def _unsigned(**kw: str) -> Authenticator:
    return Authenticator(AuthConfig(publickey="none", **kw))


def _raw_b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _b64(obj: object) -> str:
    return _raw_b64(json.dumps(obj))


# -- key loading ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_key_accepts_every_rsa_algorithm(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, alg: str
) -> None:
    auth = _auth(tmp_path, rsa_key)
    token = jwt.encode({"exp": EXP, "sub": "u"}, rsa_key, algorithm=alg)
    assert auth.authenticate(token, NOW) == {"exp": EXP, "sub": "u"}


def test_ec_p256_key_accepts_es256(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    auth = _auth(tmp_path, ec_key)
    assert auth.authenticate(jwt.encode({"exp": EXP}, ec_key, algorithm="ES256"), NOW) is not None


def test_ec_p384_key_accepts_es384(tmp_path: Path, ec384_key: ec.EllipticCurvePrivateKey) -> None:
    auth = _auth(tmp_path, ec384_key)
    token = jwt.encode({"exp": EXP}, ec384_key, algorithm="ES384")
    assert auth.authenticate(token, NOW) is not None


def test_ed25519_key_accepts_eddsa(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    auth = _auth(tmp_path, ed_key)
    assert auth.authenticate(jwt.encode({"exp": EXP}, ed_key, algorithm="EdDSA"), NOW) is not None


def test_certificate_file_is_accepted(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sustain-test")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(ec_key, hashes.SHA256())
    )
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    auth = Authenticator(AuthConfig(publickey=str(path)))
    assert auth.authenticate(jwt.encode({"exp": EXP}, ec_key, algorithm="ES256"), NOW) is not None


def test_missing_key_file_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(AuthKeyError, match="Cannot use auth public key") as info:
        Authenticator(AuthConfig(publickey=str(tmp_path / "absent.pem")))
    assert info.value.path.endswith("absent.pem")


def test_garbage_key_file_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("hello")
    with pytest.raises(AuthKeyError, match="not a PEM public key"):
        Authenticator(AuthConfig(publickey=str(path)))


def test_unsupported_key_type_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(AuthKeyError, match="unsupported key type"):
        _auth(tmp_path, ed448.Ed448PrivateKey.generate())


# A DSA public key made once with `openssl dsaparam -genkey 1024 | openssl dsa -pubout`: a
# fixed file, because cryptography deprecates generating DSA keys (and will drop DSA).
DSA_PUBLIC_PEM = b"""-----BEGIN PUBLIC KEY-----
MIIBwDCCATQGByqGSM44BAEwggEnAoGBAOxIsAHbrxs+D07s4HUjB4MfWXNVVTRm
HLDAchb6Y8Ed9YEaICIXW0U2ui/hY7Dr6erB26Z+kqhSPUgdEsV3HE7R4Hp/Lm7a
UzBE7OoEtTmaz7TuiqJ8uwRdAZ5fcS+BfSRGAJe9wyfAdSqEILYx0qJ9K9rNGrHn
p530Dov7r1IxAh0AjfwMh9OuNFNYh+U34eyJP43eALWeo3SU/VCD1QKBgQDglt57
sFEuu+YDygd2JmmX/biTStZK8yoWhDhUXAAFJ8mFrOe1pvu/rqAdSazglwX0imX2
PMb8vJBh/tXGJax+hvskCan2pxxJ+sisbvjJYfOnm1+gkHDzn2nNG9v68Io7VU8p
HDYIxkTcuDMbXGzvVnD5CX8BCrX10DQG8kLfdgOBhQACgYEA6FkCEgiRKzkffi9f
8ZwhEjR9wSfDtvmo1g6WvrgXZkBxI9OUe1upGqSYp05E96w77R0sjQqDls9v/PF5
sG+J5YKJqOmYm9NR2epPrE4SB14D1rYTH/7kBI7eHLuyoijY6kff4egj7kJHSxkt
DHLqE+lcr18G7pnxJk/fFRbAJ4M=
-----END PUBLIC KEY-----
"""


def test_dsa_key_is_a_startup_error(tmp_path: Path) -> None:
    path = tmp_path / "dsa.pem"
    path.write_bytes(DSA_PUBLIC_PEM)
    with pytest.raises(AuthKeyError, match="unsupported key type"):
        Authenticator(AuthConfig(publickey=str(path)))


# -- signature and algorithm ------------------------------------------------------------------


def test_wrong_key_signature_rejected(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    auth = _auth(tmp_path, rsa_key)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert auth.authenticate(jwt.encode({"exp": EXP}, other, algorithm="RS256"), NOW) is None


def test_algorithm_outside_key_family_rejected(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    auth = _auth(tmp_path, rsa_key)
    assert auth.authenticate(jwt.encode({"exp": EXP}, ec_key, algorithm="ES256"), NOW) is None


def test_hmac_with_public_key_as_secret_rejected(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the public PEM.
    auth = _auth(tmp_path, rsa_key)
    pem = _public_pem(rsa_key)
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"exp": EXP})
    import hashlib
    import hmac

    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    assert auth.authenticate(token, NOW) is None


def test_alg_none_rejected_when_a_key_is_configured(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = _auth(tmp_path, rsa_key)
    assert auth.authenticate(jwt.encode({"exp": EXP}, None, algorithm="none"), NOW) is None


def test_tampered_payload_rejected(tmp_path: Path, ed_key: ed25519.Ed25519PrivateKey) -> None:
    auth = _auth(tmp_path, ed_key)
    header, _, sig = jwt.encode({"exp": EXP, "role": "user"}, ed_key, algorithm="EdDSA").split(".")
    forged = f"{header}.{_b64({'exp': EXP, 'role': 'admin'})}.{sig}"
    assert auth.authenticate(forged, NOW) is None


# -- unsigned mode ----------------------------------------------------------------------------


def test_unsigned_mode_accepts_alg_none() -> None:
    token = jwt.encode({"exp": EXP, "prefix": "a"}, None, algorithm="none")
    assert _unsigned().authenticate(token, NOW) == {"exp": EXP, "prefix": "a"}


def test_unsigned_mode_accepts_any_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode({"exp": EXP}, rsa_key, algorithm="RS256")
    header, payload, _ = token.split(".")
    assert _unsigned().authenticate(f"{header}.{payload}.Z2FyYmFnZQ", NOW) == {"exp": EXP}


def test_unsigned_mode_still_enforces_exp() -> None:
    token = jwt.encode({"exp": int(NOW) - 61}, None, algorithm="none")
    assert _unsigned().authenticate(token, NOW) is None
    assert _unsigned().authenticate(jwt.encode({}, None, algorithm="none"), NOW) is None


def test_unsigned_mode_honours_nbf() -> None:
    token = jwt.encode({"exp": EXP, "nbf": int(NOW) + 120}, None, algorithm="none")
    assert _unsigned().authenticate(token, NOW) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "!!!.???.x",
        f"{_b64([1, 2])}.{_b64({'exp': EXP})}.",  # header not an object
        f"{_b64({'alg': 'none'})}.{_b64([1])}.",  # payload not an object
        f"{_b64({'alg': 'none'})}.bm90IGpzb24.",  # payload not JSON
        _b64({"alg": "none"}) + "." + _raw_b64('{"a":' * 100_000 + "1" + "}" * 100_000) + ".",
        f"{_raw_b64('[' * 100_000 + ']' * 100_000)}.{_b64({'exp': EXP})}.",
    ],
)
def test_unsigned_mode_rejects_malformed_tokens(token: str) -> None:
    assert _unsigned().authenticate(token, NOW) is None


def test_missing_token_rejected() -> None:
    assert _unsigned().authenticate(None, NOW) is None


# -- claims -----------------------------------------------------------------------------------


def _none_token(claims: dict[str, Any]) -> str:
    # Built by hand: PyJWT refuses to *encode* some of the bad claims we must reject.
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _claims(auth: Authenticator, claims: dict[str, Any], now: float = NOW) -> dict[str, Any] | None:
    return auth.authenticate(_none_token(claims), now)


def test_exp_leeway_is_60_seconds(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    auth = _auth(tmp_path, rsa_key)
    exp = int(NOW)
    token = jwt.encode({"exp": exp}, rsa_key, algorithm="RS256")
    assert auth.authenticate(token, exp + 59) is not None
    assert auth.authenticate(token, exp + 60) is None


def test_exp_required_and_numeric() -> None:
    auth = _unsigned()
    assert _claims(auth, {"sub": "x"}) is None
    assert _claims(auth, {"exp": str(EXP)}) is None
    assert _claims(auth, {"exp": True}) is None
    assert _claims(auth, {"exp": float(EXP)}) is not None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_exp_or_nbf_rejected(literal: str) -> None:
    header = _b64({"alg": "none"})
    exp_token = header + "." + _raw_b64('{"exp": ' + literal + "}") + "."
    nbf_token = header + "." + _raw_b64('{"exp": ' + str(EXP) + ', "nbf": ' + literal + "}") + "."
    assert _unsigned().authenticate(exp_token, NOW) is None
    assert _unsigned().authenticate(nbf_token, NOW) is None


def test_nbf_with_leeway() -> None:
    auth = _unsigned()
    assert _claims(auth, {"exp": EXP, "nbf": int(NOW) + 60}) is not None
    assert _claims(auth, {"exp": EXP, "nbf": int(NOW) + 61}) is None
    assert _claims(auth, {"exp": EXP, "nbf": "soon"}) is None


def test_iss_checked_when_configured() -> None:
    auth = _unsigned(iss="me")
    assert _claims(auth, {"exp": EXP, "iss": "me"}) is not None
    assert _claims(auth, {"exp": EXP, "iss": "you"}) is None
    assert _claims(auth, {"exp": EXP}) is None


def test_iss_not_required_when_not_configured() -> None:
    assert _claims(_unsigned(), {"exp": EXP, "iss": "anyone"}) is not None


@pytest.mark.parametrize("name", ["iss", "role"])
@pytest.mark.parametrize("value", [1, None, ["admin"], {"a": 1}, True])
def test_non_string_iss_or_role_rejected(name: str, value: object) -> None:
    assert _claims(_unsigned(), {"exp": EXP, name: value}) is None


def test_aud_string_or_list() -> None:
    auth = _unsigned(aud="api")
    assert _claims(auth, {"exp": EXP, "aud": "api"}) is not None
    assert _claims(auth, {"exp": EXP, "aud": ["x", "api"]}) is not None
    assert _claims(auth, {"exp": EXP, "aud": "other"}) is None
    assert _claims(auth, {"exp": EXP, "aud": ["x"]}) is None
    assert _claims(auth, {"exp": EXP, "aud": ["api", 1]}) is None
    assert _claims(auth, {"exp": EXP, "aud": 5}) is None
    assert _claims(auth, {"exp": EXP}) is None


def test_aud_ignored_when_not_configured() -> None:
    assert _claims(_unsigned(), {"exp": EXP, "aud": "whatever"}) is not None


def test_signed_token_with_iss_and_aud(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    auth = _auth(tmp_path, ec_key, iss="issuer", aud="api")
    good = jwt.encode({"exp": EXP, "iss": "issuer", "aud": ["api"]}, ec_key, algorithm="ES256")
    bad = jwt.encode({"exp": EXP, "iss": "issuer", "aud": ["web"]}, ec_key, algorithm="ES256")
    assert auth.authenticate(good, NOW) is not None
    assert auth.authenticate(bad, NOW) is None


# -- authorization (the table itself: tests/unit/test_access.py) ---------------------------------


def _allowed(claims: dict[str, Any], kind: str, data: dict[str, Any]) -> bool:
    return _unsigned().authorize(claims, kind, data)


@pytest.mark.parametrize("role", ["admin", "ADMIN", "Admin"])
def test_admin_role_allows_everything(role: str) -> None:
    claims = {"role": role, "prefix": "zzz"}
    assert _allowed(claims, "promise.search", {})
    assert _allowed(claims, "debug.reset", {})
    assert _allowed(claims, "promise.get", {"id": "a"})


def test_other_role_uses_prefix() -> None:
    assert not _allowed({"role": "user", "prefix": "a"}, "promise.get", {"id": "b"})
    assert _allowed({"role": "user", "prefix": "a"}, "promise.get", {"id": "a.b"})


@pytest.mark.parametrize("claims", [{}, {"prefix": None}, {"prefix": 1}, {"prefix": ["a"]}])
def test_absent_or_non_string_prefix_forbidden(claims: dict[str, Any]) -> None:
    assert not _allowed(claims, "promise.get", {"id": "a"})


def test_empty_prefix_allows_everything() -> None:
    assert _allowed({"prefix": ""}, "promise.search", {})
    assert _allowed({"prefix": ""}, "debug.snap", {})
    assert _allowed({"prefix": ""}, "promise.get", {"id": "x"})
