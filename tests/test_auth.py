import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwatch._auth import (
    AKSKAuth,
    SignatureError,
    TokenAuth,
    _canonical_request,
    project_id_from_env,
    verify_signature,
)

AK, SK, TOKEN = "AKIDEXAMPLE0001", "sk-very-secret-value", "temporary-security-token"
OTHER_AK = "AKIDOTHER0002"
SECRETS = {AK: SK, OTHER_AK: "another-secret"}
DATE, NOW = "20240102T030405Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
HEX64 = re.compile(r"[0-9a-f]{64}")


def sign(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    return next(auth.sync_auth_flow(request))


def server_view(request: httpx.Request) -> dict[str, Any]:
    """What a server sees: the encoded path and query, lowercase headers and the body."""
    return {
        "method": request.method,
        "raw_path": request.url.raw_path.partition(b"?")[0].decode("ascii"),
        "query": request.url.query.decode("ascii"),
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "body": request.content,
    }


def signed_request(
    method: str = "POST",
    url: str = "https://ges.example.com:8443/v2/p1/jobs/j 1",
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> httpx.Request:
    request = httpx.Request(method, url, headers={**(headers or {}), "X-Sdk-Date": DATE}, **kw)
    return sign(AKSKAuth(AK, SK), request)


def test_sdk_published_vector() -> None:
    request = httpx.Request(
        "GET",
        "https://service.endpoint.myhuaweicloud.com/resources?size=1",
        headers={"X-Sdk-Date": "20200608T023900Z"},
    )
    assert sign(AKSKAuth("AccessKey", "SecretKey"), request).headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
        "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )


def test_canonical_request_layout() -> None:
    canonical = _canonical_request(
        method="post",
        raw_path="/v1/a%20b/~c%2Fd",
        query="z=1&a=x+y&a=%7E&e",
        headers={"host": " h.example.com ", "x-sdk-date": DATE},
        signed_headers=["host", "x-sdk-date"],
        body=b"",
    )
    assert canonical == (
        "POST\n/v1/a%20b/~c/d/\na=x%20y&a=~&e=&z=1\n"
        f"host:h.example.com\nx-sdk-date:{DATE}\n\nhost;x-sdk-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


# How the SDK expects its input (read from huaweicloudsdkcore client.py / signer.py):
# * resource_path is ALREADY percent-encoded: the client substitutes path parameters with
#   quote(str(v), safe="") and the signer unquotes the whole path once before re-encoding each
#   segment, so an encoded "/" (%2F) inside a segment becomes a separator in the canonical URI.
# * query_params are RAW (decoded) (key, value) tuples; the signer sorts the raw tuples and only
#   then encodes them, and builds the wire query with the same quote(safe="~") (space -> %20).
#   httpx instead sends a space as "+", so our signer decodes the URL query (parse_qsl: "+" ->
#   space) before canonicalising; both wire forms give the same signature (checked below).
# * host is the endpoint's netloc, port included; it is signed as the Host header.
# * the SDK signs every header it holds, and for a Content-Type that is not JSON/BSON it adds
#   "X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD" and skips the body hash.  We always hash the body and
#   sign an explicit header set, so the comparison uses JSON content types (or none) and gives
#   the SDK exactly our signed headers.
# * httpx removes "." / ".." path segments before sending, so those are left out here.
_SPECIALS = " ~/?#[]@!$&'()*+,;=%:\"<>\\^`{|}\t\x00éß中😀"
_chars = st.one_of(st.sampled_from(_SPECIALS), st.characters(codec="utf-8"))
_text = st.text(_chars, max_size=10)
_segment = _text.filter(lambda s: s not in {".", ".."})
_key = st.one_of(st.sampled_from(["a", "a b", "~k", "k/", ""]), _text)
_hosts = ["service.endpoint.myhuaweicloud.com", "ges.cn-north-4.example.com:8443", "127.0.0.1:80"]


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    method=st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH"]),
    host=st.sampled_from(_hosts),
    segments=st.lists(_segment, max_size=5),
    params=st.lists(st.tuples(_key, _text), max_size=6),
    body=st.binary(max_size=64),
    content_type=st.sampled_from(["application/json", "application/json;charset=UTF-8"]),
    token=st.one_of(st.none(), st.text("abcXYZ0189+/=", min_size=1, max_size=20)),
    project=st.one_of(st.none(), st.text("abcdef0189", min_size=1, max_size=32)),
    when=st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)),
)
def test_matches_official_sdk_signer(
    method: str,
    host: str,
    segments: list[str],
    params: list[tuple[str, str]],
    body: bytes,
    content_type: str,
    token: str | None,
    project: str | None,
    when: datetime,
) -> None:
    date = when.strftime("%Y%m%dT%H%M%SZ")
    resource_path = "/" + "/".join(quote(segment, safe="") for segment in segments)
    headers = {"X-Sdk-Date": date}
    if project is not None:
        headers["X-Project-Id"] = project  # the SDK sends and signs it
    has_body = method in {"POST", "PUT", "PATCH"}
    if has_body:
        headers["Content-Type"] = content_type
    auth = AKSKAuth(AK, SK, token)
    ours = sign(
        auth,
        httpx.Request(
            method,
            f"https://{host}{resource_path}",
            params=tuple(params),
            headers=headers,
            content=body if has_body else None,
        ),
    )

    sdk_headers = {"Host": host, **headers}
    if token is not None:
        sdk_headers["X-Security-Token"] = token
    sdk = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=resource_path,
        query_params=list(params),
        header_params=sdk_headers,
        body=body if has_body else None,
    )
    Signer(BasicCredentials(AK, SK)).sign(sdk)
    assert ours.headers["Authorization"] == sdk.header_params["Authorization"]

    # The SDK's own wire URI ("%20" for spaces) signs identically with ours, and verifies.
    via_sdk_uri = httpx.Request(
        method, sdk.url, headers=headers, content=body if has_body else None
    )
    assert sign(auth, via_sdk_uri).headers["Authorization"] == ours.headers["Authorization"]
    assert verify_signature(**server_view(ours), secrets=SECRETS, now=when) == AK


def test_space_as_plus_or_percent20_signs_the_same() -> None:
    plus = signed_request("GET", "https://h.example.com/x?q=a+b&r=%2B")
    pct = signed_request("GET", "https://h.example.com/x?r=%2B&q=a%20b")
    assert plus.headers["Authorization"] == pct.headers["Authorization"]


def test_signs_an_explicit_header_set() -> None:
    extra = {"Accept": "*/*", "x_custom": "1", "User-Agent": "t"}
    get = signed_request("GET", headers=extra)
    assert "SignedHeaders=host;x-sdk-date," in get.headers["Authorization"]
    post = signed_request(json={"k": "v"}, headers=extra)
    assert "SignedHeaders=content-type;host;x-sdk-date," in post.headers["Authorization"]
    view = server_view(post)
    view["headers"]["user-agent"] = "changed"  # unsigned headers may change freely
    assert verify_signature(**view, secrets=SECRETS, now=NOW) == AK


def test_the_project_header_is_signed_as_the_sdk_signs_it() -> None:
    request = signed_request("GET", headers={"X-Project-Id": "p1", "Accept": "*/*"})
    assert "SignedHeaders=host;x-project-id;x-sdk-date," in request.headers["Authorization"]
    view = server_view(request)
    assert verify_signature(**view, secrets=SECRETS, now=NOW) == AK
    view["headers"]["x-project-id"] = "p2"  # another project: the signature no longer holds
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_signature(**view, secrets=SECRETS, now=NOW)


def test_security_token_is_sent_and_signed() -> None:
    request = httpx.Request("GET", "https://h.example.com/a", headers={"X-Sdk-Date": DATE})
    signed = sign(AKSKAuth(AK, SK, TOKEN), request)
    assert signed.headers["X-Security-Token"] == TOKEN
    assert "SignedHeaders=host;x-sdk-date;x-security-token," in signed.headers["Authorization"]
    view = server_view(signed)
    assert verify_signature(**view, secrets=SECRETS, now=NOW) == AK
    view["headers"]["x-security-token"] = "other-token"
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_signature(**view, secrets=SECRETS, now=NOW)


def test_date_is_added_when_missing_and_checked_when_given() -> None:
    signed = sign(AKSKAuth(AK, SK), httpx.Request("GET", "https://h.example.com/a"))
    sent = datetime.strptime(signed.headers["X-Sdk-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60
    assert verify_signature(**server_view(signed), secrets=SECRETS) == AK
    bad = httpx.Request("GET", "https://h.example.com/a", headers={"X-Sdk-Date": "2024-01-02"})
    with pytest.raises(ValueError, match="X-Sdk-Date"):
        sign(AKSKAuth(AK, SK), bad)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda view: view.__setitem__(key, value)


def _header(name: str, value: str | None) -> Callable[[dict[str, Any]], None]:
    def tamper(view: dict[str, Any]) -> None:
        if value is None:
            del view["headers"][name]
        else:
            view["headers"][name] = value

    return tamper


def _auth(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def tamper(view: dict[str, Any]) -> None:
        view["headers"]["authorization"] = view["headers"]["authorization"].replace(old, new)

    return tamper


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_set("raw_path", "/v2/p1/jobs/j%202"), "signature mismatch"),
        (_set("query", "limit=10&offset=1"), "signature mismatch"),
        (_set("body", b'{"k": "w"}'), "signature mismatch"),
        (_set("method", "PUT"), "signature mismatch"),
        (_header("x-sdk-date", "20240102T030406Z"), "signature mismatch"),
        (_header("host", "evil.example.com"), "signature mismatch"),
        (_header("x-sdk-date", "20240101T000000Z"), "clock skew"),
        (_header("x-sdk-date", "not-a-date"), "malformed X-Sdk-Date"),
        (_header("x-sdk-date", None), "missing from the request"),
        (_header("authorization", None), "missing Authorization"),
        (_header("x-security-token", "t"), "x-security-token is not a signed header"),
        (_auth(f"Access={AK}", f"Access={OTHER_AK}"), "signature mismatch"),
        (_auth(f"Access={AK}", "Access=NOBODY"), "unknown access key"),
        (_auth("host;", ""), "host is not a signed header"),
        (_auth(";x-sdk-date", ""), "x-sdk-date is not a signed header"),
        (_auth("host;", "host;x_a;"), "malformed SignedHeaders"),
        (_auth("host;x-sdk-date", "x-sdk-date;host"), "malformed SignedHeaders"),
        (_auth("SDK-HMAC-SHA256", "SDK-HMAC-SM3"), "unsupported signing algorithm"),
        (_auth("Signature=", "Sig="), "malformed Authorization"),
        (_auth(", Signature=", ", Access=x, Signature="), "malformed Authorization"),
        (_auth("Signature=", "Signature=é"), "signature mismatch"),
    ],
)
def test_verify_rejects_tampering(tamper: Callable[[dict[str, Any]], None], reason: str) -> None:
    signed = signed_request(params={"limit": "10"}, json={"k": "v"})
    view = server_view(signed)
    assert verify_signature(**view, secrets=SECRETS, now=NOW) == AK
    tamper(view)
    with pytest.raises(SignatureError, match=reason) as info:
        verify_signature(**view, secrets=SECRETS, now=NOW)
    message = str(info.value)
    assert SK not in message
    assert not HEX64.search(message)


@pytest.mark.parametrize(("offset", "ok"), [(900, True), (-900, True), (901, False), (-901, False)])
def test_verify_clock_skew_window(offset: int, ok: bool) -> None:
    view = server_view(signed_request())
    now = (NOW + timedelta(seconds=offset)).replace(tzinfo=None)  # naive now means UTC
    if ok:
        assert verify_signature(**view, secrets=SECRETS, now=now) == AK
    else:
        with pytest.raises(SignatureError, match="clock skew"):
            verify_signature(**view, secrets=SECRETS, now=now)


@pytest.mark.anyio
async def test_token_auth_through_async_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ok = request.headers.get("X-Auth-Token") == TOKEN
        return httpx.Response(200 if ok else 401)

    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, auth=TokenAuth(TOKEN)) as client:
        assert (await client.get("https://h.example.com/v1/jobs")).status_code == 200
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://h.example.com/v1/jobs")).status_code == 401


def _verifying_handler(request: httpx.Request) -> httpx.Response:
    try:
        ak = verify_signature(**server_view(request), secrets=SECRETS)
    except SignatureError as exc:
        return httpx.Response(401, json={"error": str(exc)})
    return httpx.Response(200, json={"ak": ak})


@pytest.mark.anyio
async def test_aksk_auth_through_async_client_verifies_server_side() -> None:
    async def stream() -> AsyncIterator[bytes]:
        yield b'{"graph": '
        yield b'"g 1"}'

    transport = httpx.MockTransport(_verifying_handler)
    async with httpx.AsyncClient(transport=transport, auth=AKSKAuth(AK, SK, TOKEN)) as client:
        url = "https://ges.example.com:8443/v2/p1/graphs/g%201/jobs"
        got = await client.get(url, params={"offset": 0, "q": "a b/~ü"})
        assert got.json() == {"ak": AK}
        posted = await client.post(url, json={"name": "g 1"}, params=[("k", "1"), ("k", "")])
        assert posted.json() == {"ak": AK}
        streamed = await client.post(url, content=stream())  # body read before signing
        assert streamed.json() == {"ak": AK}
    async with httpx.AsyncClient(transport=transport, auth=AKSKAuth(AK, "wrong-sk")) as client:
        rejected = await client.get(url)
        assert rejected.status_code == 401
        assert rejected.json() == {"error": "signature mismatch"}


def test_aksk_auth_through_sync_client() -> None:
    transport = httpx.MockTransport(_verifying_handler)
    with httpx.Client(transport=transport, auth=AKSKAuth(AK, SK)) as client:
        assert client.put("https://h.example.com/a/b/", content=b"\x00\xff").json() == {"ak": AK}


def test_repr_and_str_redact_secrets() -> None:
    for auth in (AKSKAuth(AK, SK, TOKEN), TokenAuth(TOKEN)):
        for text in (repr(auth), str(auth), repr(vars(auth))):
            assert SK not in text
            assert TOKEN not in text
            assert AK not in text
    assert repr(AKSKAuth(AK, SK, TOKEN)) == (
        "AKSKAuth(ak='AKID…', sk=<redacted>, security_token=<redacted>)"
    )
    assert repr(AKSKAuth(AK, SK)) == "AKSKAuth(ak='AKID…', sk=<redacted>, security_token=None)"
    assert repr(TokenAuth(TOKEN)) == "TokenAuth(token=<redacted>)"


@pytest.mark.parametrize(
    "make",
    [
        lambda: TokenAuth(""),
        lambda: AKSKAuth("", SK),
        lambda: AKSKAuth(AK, ""),
        lambda: AKSKAuth(f"{AK}, x", SK),
        lambda: AKSKAuth(AK, SK, ""),
    ],
)
def test_constructor_errors_carry_no_secret(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="must") as info:
        make()
    assert SK not in str(info.value)
    assert AK not in str(info.value)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    assert repr(AKSKAuth.from_env(env)).endswith("security_token=None)")
    with_token = AKSKAuth.from_env({**env, "HUAWEICLOUD_SDK_SECURITY_TOKEN": TOKEN})
    signed = sign(with_token, httpx.Request("GET", "https://h.example.com/"))
    assert signed.headers["X-Security-Token"] == TOKEN
    assert verify_signature(**server_view(signed), secrets=SECRETS) == AK
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "")
    assert repr(AKSKAuth.from_env()) == repr(AKSKAuth(AK, SK))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"HUAWEICLOUD_SDK_SK": SK}, "HUAWEICLOUD_SDK_AK"),
        ({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": ""}, "HUAWEICLOUD_SDK_SK"),
        ({"HUAWEICLOUD_SDK_AK": "bad ak", "HUAWEICLOUD_SDK_SK": SK}, "HUAWEICLOUD_SDK_AK"),
    ],
)
def test_from_env_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ValueError, match=variable) as info:
        AKSKAuth.from_env(env)
    assert not any(value and value in str(info.value) for value in env.values())


def test_project_id_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert project_id_from_env({"HUAWEICLOUD_SDK_PROJECT_ID": "p-123"}) == "p-123"
    assert project_id_from_env({"HUAWEICLOUD_SDK_PROJECT_ID": ""}) is None
    assert project_id_from_env({}) is None
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "p-env")
    assert project_id_from_env() == "p-env"
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID")
    assert project_id_from_env() is None
