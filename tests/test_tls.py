"""TLS: certificates are verified unless the caller turns it off, visibly."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from jobwatch import CertificateError, Client, EvsJob, JobState, RetryPolicy
from jobwatch.sim import Simulator, serve

pytestmark = pytest.mark.anyio
P = "p"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_url(ca: trustme.CA, tmp_path: Path) -> Iterator[str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    with serve(sim, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as url:
        yield url


async def test_an_untrusted_certificate_is_refused_by_default(https_url: str) -> None:
    assert https_url.startswith("https://")
    async with Client(https_url, P, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(CertificateError, match=r"certificate failed verification"):
            await client.fetch(EvsJob("j"))


async def test_a_trusted_ca_is_accepted(https_url: str, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with Client(https_url, P, verify=context) as client:
        assert (await client.fetch(EvsJob("j"))).state is JobState.RUNNING


async def test_turning_verification_off_works_and_is_logged(
    https_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobwatch"):
        async with Client(https_url, P, verify=False) as client:
            assert (await client.fetch(EvsJob("j"))).state is JobState.RUNNING
    assert "TLS certificate verification is OFF" in caplog.text
