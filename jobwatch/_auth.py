"""Authentication for Huawei Cloud APIs as :class:`httpx.Auth` implementations.

Two schemes are supported:

* :class:`TokenAuth` sends an IAM token in ``X-Auth-Token``.
* :class:`AKSKAuth` signs each request with ``SDK-HMAC-SHA256``, byte for byte as the official
  ``huaweicloudsdkcore`` signer does:

  1. canonical request = ``METHOD``, canonical URI (the path is percent-decoded once, split on
     ``/``, every segment re-encoded with ``quote(segment, safe="~")``, and a trailing ``/``
     added), canonical query (decoded ``(key, value)`` pairs sorted, each pair encoded as
     ``quote(k, safe="~")=quote(v, safe="~")`` and joined by ``&``), canonical headers
     (``name:stripped-value\\n`` for every signed header), the signed header names joined by
     ``;``, and the hex SHA-256 of the body; the six parts are joined by ``\\n``;
  2. string to sign = ``SDK-HMAC-SHA256\\n{X-Sdk-Date}\\n{hex sha256(canonical request)}``;
  3. signature = hex HMAC-SHA256 keyed with the secret key over the string to sign, sent as
     ``Authorization: SDK-HMAC-SHA256 Access={ak}, SignedHeaders={names}, Signature={sig}``.

  Unlike the SDK, which signs whatever headers it holds, we sign an explicit set: ``host``,
  ``x-sdk-date``, and ``content-type`` / ``x-project-id`` / ``x-security-token`` when present
  (the SDK sends and signs ``X-Project-Id``, which resources in sub-projects require).  The
  query is read from the URL httpx will send (``+`` decodes to a space, as httpx encodes
  spaces that way).

:func:`verify_signature` is the server-side check used by the simulator; it shares the pure
functions below with :class:`AKSKAuth`.  Secrets never appear in ``repr`` or error messages.
"""

import hashlib
import hmac
import os
from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Self
from urllib.parse import parse_qsl, quote, unquote

import httpx

__all__ = [
    "ALGORITHM",
    "AKSKAuth",
    "SignatureError",
    "TokenAuth",
    "project_id_from_env",
    "verify_signature",
]

ALGORITHM = "SDK-HMAC-SHA256"
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_ENV_AK = "HUAWEICLOUD_SDK_AK"
_ENV_SK = "HUAWEICLOUD_SDK_SK"
_ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a variable name
_ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
# Headers AKSKAuth signs when the request carries them; host and x-sdk-date are always present.
_SIGNABLE_HEADERS = ("content-type", "host", "x-project-id", "x-sdk-date", "x-security-token")
_REQUIRED_SIGNED = ("host", "x-sdk-date")


class SignatureError(ValueError):
    """An AK/SK signature did not verify; the message never includes secrets."""


# --- pure computation, shared by the signer and the verifier ------------------------------------


def _encode(text: str) -> str:
    return quote(text, safe="~")


def _canonical_uri(raw_path: str) -> str:
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    return path if path.endswith("/") else path + "/"


def _canonical_query(raw_query: str) -> str:
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def _canonical_request(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body: bytes,
) -> str:
    """Build the canonical request; ``headers`` maps lowercase names to values."""
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        (
            method.upper(),
            _canonical_uri(raw_path),
            _canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        )
    )


def _signature(secret_key: bytes, sdk_date: str, canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    return hmac.new(secret_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _parse_date(value: str) -> datetime | None:
    """Parse a strict ``X-Sdk-Date`` value (``20200608T023900Z``) as an aware UTC datetime."""
    try:
        parsed = datetime.strptime(value, _DATE_FORMAT)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.strftime(_DATE_FORMAT) == value else None


def _authorization(ak: str, signed_headers: Iterable[str], signature: str) -> str:
    names = ";".join(signed_headers)
    return f"{ALGORITHM} Access={ak}, SignedHeaders={names}, Signature={signature}"


def _parse_authorization(value: str) -> tuple[str, list[str], str]:
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError("unsupported signing algorithm")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, field = part.strip().partition("=")
        if not sep or not field or key in fields:
            raise SignatureError("malformed Authorization header")
        fields[key] = field
    if fields.keys() != {"Access", "SignedHeaders", "Signature"}:
        raise SignatureError("malformed Authorization header")
    signed = fields["SignedHeaders"].split(";")
    if signed != sorted(set(signed)) or any(
        not name or name != name.lower() or "_" in name for name in signed
    ):
        raise SignatureError("malformed SignedHeaders")
    return fields["Access"], signed, fields["Signature"]


def verify_signature(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    now: datetime | None = None,
    max_skew: float = 900.0,
) -> str:
    """Check an ``SDK-HMAC-SHA256`` request and return its access key.

    ``raw_path`` and ``query`` are as sent on the wire (still percent-encoded), ``headers`` has
    lowercase names and ``secrets`` maps access keys to secret keys.  A naive ``now`` is taken
    as UTC.  Raises :class:`SignatureError` with a short, secret-free reason on any failure.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization")
    if authorization is None:
        raise SignatureError("missing Authorization header")
    ak, signed, given = _parse_authorization(authorization)
    for name in _REQUIRED_SIGNED:
        if name not in signed:
            raise SignatureError(f"{name} is not a signed header")
    if "x-security-token" in lowered and "x-security-token" not in signed:
        raise SignatureError("x-security-token is not a signed header")
    if any(name not in lowered for name in signed):
        raise SignatureError("a signed header is missing from the request")
    sdk_date = lowered["x-sdk-date"]
    signed_at = _parse_date(sdk_date)
    if signed_at is None:
        raise SignatureError("malformed X-Sdk-Date")
    now = datetime.now(UTC) if now is None else now
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    if abs((now - signed_at).total_seconds()) > max_skew:
        raise SignatureError("X-Sdk-Date is outside the allowed clock skew")
    secret_key = secrets.get(ak)
    if secret_key is None:
        raise SignatureError("unknown access key")
    canonical = _canonical_request(
        method=method,
        raw_path=raw_path,
        query=query,
        headers=lowered,
        signed_headers=signed,
        body=body,
    )
    expected = _signature(secret_key.encode("utf-8"), sdk_date, canonical)
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
        raise SignatureError("signature mismatch")
    return ak


# --- httpx.Auth implementations -----------------------------------------------------------------


class TokenAuth(httpx.Auth):
    """Authenticate with an IAM token sent as ``X-Auth-Token``."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = self._token
        yield request

    def headers(self) -> dict[str, str]:
        """The header this authentication adds (for HTTP stacks other than httpx)."""
        return {"X-Auth-Token": self._token}

    def __repr__(self) -> str:
        return "TokenAuth(token=<redacted>)"


class AKSKAuth(httpx.Auth):
    """Sign requests with an access key / secret key pair (``SDK-HMAC-SHA256``)."""

    __slots__ = ("_ak", "_security_token", "_sk")
    requires_request_body = True  # the body hash is part of the signature

    def __init__(self, ak: str, sk: str, security_token: str | None = None) -> None:
        if not ak or any(char.isspace() or char in ",=" for char in ak):
            raise ValueError("ak must be non-empty and contain no whitespace, ',' or '='")
        if not sk:
            raise ValueError("sk must be a non-empty string")
        if security_token is not None and not security_token:
            raise ValueError("security_token must be None or a non-empty string")
        self._ak = ak
        self._sk = sk.encode("utf-8")
        self._security_token = security_token

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read ``HUAWEICLOUD_SDK_AK``/``_SK`` and the optional ``_SECURITY_TOKEN``."""
        env = os.environ if environ is None else environ
        ak = env.get(_ENV_AK)
        if not ak:
            raise ValueError(f"environment variable {_ENV_AK} is not set")
        sk = env.get(_ENV_SK)
        if not sk:
            raise ValueError(f"environment variable {_ENV_SK} is not set")
        try:
            return cls(ak, sk, env.get(_ENV_SECURITY_TOKEN) or None)
        except ValueError:
            raise ValueError(f"environment variable {_ENV_AK} is not a valid access key") from None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = request.headers
        sdk_date = headers.get("X-Sdk-Date")
        if sdk_date is None:
            sdk_date = datetime.now(UTC).strftime(_DATE_FORMAT)
            headers["X-Sdk-Date"] = sdk_date
        elif _parse_date(sdk_date) is None:
            raise ValueError("X-Sdk-Date must look like 20200608T023900Z")
        if self._security_token is not None:
            headers["X-Security-Token"] = self._security_token
        if "Host" not in headers:
            headers["Host"] = request.url.netloc.decode("ascii")
        signed = [name for name in _SIGNABLE_HEADERS if name in headers]
        canonical = _canonical_request(
            method=request.method,
            raw_path=request.url.raw_path.partition(b"?")[0].decode("ascii"),
            query=request.url.query.decode("ascii"),
            headers={name: headers[name] for name in signed},
            signed_headers=signed,
            body=request.content,
        )
        signature = _signature(self._sk, sdk_date, canonical)
        headers["Authorization"] = _authorization(self._ak, signed, signature)
        yield request

    def __repr__(self) -> str:
        token = "None" if self._security_token is None else "<redacted>"
        return f"AKSKAuth(ak={self._ak[:4] + '…'!r}, sk=<redacted>, security_token={token})"


def secrets_of(auth: object) -> tuple[str, ...]:
    """The secret strings ``auth`` sends (to be kept out of error messages)."""
    if isinstance(auth, TokenAuth):
        return (auth._token,)
    if isinstance(auth, AKSKAuth):
        found = (auth._sk.decode("utf-8", "replace"), auth._security_token)
        return tuple(secret for secret in found if secret)
    return ()


def project_id_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Return ``HUAWEICLOUD_SDK_PROJECT_ID`` (``None`` when unset or empty)."""
    env = os.environ if environ is None else environ
    return env.get(_ENV_PROJECT_ID) or None
