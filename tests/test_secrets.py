"""No token, secret key or security token in any repr, str, log line or error message."""

from __future__ import annotations

import logging

import anyio
import pytest

from jobwatch import (
    AKSKAuth,
    Client,
    EvsJob,
    JobwatchError,
    PollPolicy,
    RetryDetails,
    RetryPolicy,
    TokenAuth,
    Watcher,
)
from jobwatch.sim import Fault, SimAuth, Simulator

pytestmark = pytest.mark.anyio

P = "p"
AK = "AKIDPUBLIC0000000001"
SK = "sk-VERY-SECRET-0123456789"
SECURITY_TOKEN = "st-TEMPORARY-SECRET-abcdef"
TOKEN = "iam-TOKEN-SECRET-xyz"
SECRETS = (SK, SECURITY_TOKEN, TOKEN)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def test_nothing_leaks_through_a_full_run(caplog: pytest.LogCaptureFixture) -> None:
    sim = Simulator(auth=SimAuth(tokens=frozenset({TOKEN}), credentials={AK: SK}))
    sim.add_evs_job(P, "ok", [(0, "INIT"), (0.05, "SUCCESS")])
    sim.add_evs_job(
        P, "flaky", [(0, "RUNNING"), (0.1, "FAIL")], faults=[Fault("http_500", count=2)]
    )
    texts: list[str] = []
    retries: list[RetryDetails] = []
    policy = PollPolicy(wait_initial=0.02, wait_max=0.05, not_found_grace=0.1)
    retry = RetryPolicy(wait_initial=0.001, wait_max=0.002)
    auths = [
        AKSKAuth(AK, SK, security_token=SECURITY_TOKEN),
        TokenAuth(TOKEN),
        AKSKAuth(AK, "wrong-" + SK),  # refused: the error path
        TokenAuth(TOKEN + "-wrong"),
    ]
    with caplog.at_level(logging.DEBUG):  # every logger, httpx and httpcore included
        for auth in auths:
            texts += [repr(auth), str(auth)]
            async with (
                Client(
                    "http://sim.test",
                    P,
                    auth=auth,
                    transport=sim.transport(),
                    retry=retry,
                    on_retry=retries.append,
                ) as client,
                Watcher(client, policy=policy) as watcher,
            ):
                texts += [repr(client), str(client), repr(watcher)]
                watcher.watch_many([EvsJob("ok"), EvsJob("flaky"), EvsJob("missing")])
                with anyio.fail_after(10):
                    async for event in watcher.events():
                        texts += [repr(event), str(event)]
                        error = getattr(event, "error", None)
                        if error is not None:
                            texts += [repr(error), str(error), repr(error.__cause__)]
                try:
                    await client.fetch(EvsJob("missing"))
                except JobwatchError as exc:
                    texts += [repr(exc), str(exc)]
                texts.append(repr(watcher.statistics()))
    texts += [repr(d) for d in retries]
    assert any("AuthenticationError" in t for t in texts)  # the error paths were taken
    assert retries
    assert caplog.records
    for text in texts:
        assert_clean(text)
    assert_clean(caplog.text)
    for record in caplog.records:
        assert_clean(repr(record.args))
    # the secrets did reach the wire, where they belong
    assert any(r.headers.get("x-auth-token") == TOKEN for r in sim.requests)
    assert any(r.headers.get("x-security-token") == SECURITY_TOKEN for r in sim.requests)


def test_constructor_errors_never_echo_a_secret() -> None:
    with pytest.raises(ValueError, match="ak") as info:
        AKSKAuth("", SK)
    assert_clean(str(info.value))
    with pytest.raises(ValueError, match="ak") as info:
        AKSKAuth("AK with space", SK)
    assert_clean(str(info.value))
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_SK"):
        AKSKAuth.from_env({"HUAWEICLOUD_SDK_AK": AK})
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_AK") as info:
        AKSKAuth.from_env({"HUAWEICLOUD_SDK_SK": SK})
    assert_clean(str(info.value))
