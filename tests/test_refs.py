"""Job references: validation before any URL exists, encoding, hashing."""

from __future__ import annotations

import dataclasses

import pytest

from jobwatch import EvsJob, GesEngineJob, GesJob

HOSTILE = [
    "",
    "/",
    "..",
    "a..b",
    "%2e%2e",
    "a b",
    "a\nb",
    "a?b",
    "a#b",
    "a/b",
    "ü",
    "x" * 257,
    "x" * 5000,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_job_ids_are_rejected_naming_the_field(value: str) -> None:
    with pytest.raises(ValueError, match="job_id"):
        EvsJob(value)
    with pytest.raises(ValueError, match="job_id"):
        GesJob("graph", value)
    with pytest.raises(ValueError, match="graph_id"):
        GesJob(value, "job")
    with pytest.raises(ValueError, match="graph_name"):
        GesEngineJob(value, "job")


def test_non_string_id() -> None:
    with pytest.raises(ValueError, match="job_id must be a string"):
        EvsJob(42)  # type: ignore[arg-type]


def test_longest_allowed_id_and_charset() -> None:
    long_id = "a" * 256
    assert EvsJob(long_id).job_id == long_id
    ok = "AZaz09-_.x"
    assert EvsJob(ok).job_id == ok


def test_bad_version() -> None:
    with pytest.raises(ValueError, match="version"):
        GesJob("g", "j", "v3")  # type: ignore[arg-type]


def test_paths() -> None:
    assert EvsJob("ff80").path("p1") == "/v1/p1/jobs/ff80"
    assert GesJob("g1", "j1").path("p1") == "/v2/p1/graphs/g1/jobs/j1/status"
    assert GesJob("g1", "j1", "v1.0").path("p1") == "/v1.0/p1/graphs/g1/jobs/j1/status"
    assert GesEngineJob("movie", "j1").path("p1") == "/ges/v1.0/p1/graphs/movie/jobs/status"


def test_refs_are_immutable_and_hashable() -> None:
    ref = GesJob("g", "j")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.job_id = "other"  # type: ignore[misc]
    assert len({ref, GesJob("g", "j"), GesJob("g", "j", "v1.0"), EvsJob("j")}) == 3
    assert str(ref) == "ges-v2:g/j"
    assert str(EvsJob("j")) == "evs:j"
    assert str(GesEngineJob("g", "j")) == "ges-engine:g/j"
