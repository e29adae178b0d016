"""``--jobs FILE``: every line checked before any request, each error naming its line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jobwatch
from jobwatch._apis import api_word, api_words
from jobwatch._cli._errors import CliError
from jobwatch._cli._jobsfile import Defaults, JobLine, Place, read_jobs
from jobwatch._refs import ref_from_dict, ref_to_dict

PLACES = {("ecs", "cn-north-4"): "https://ecs.cn-north-4.example"}


def locate(api: str, region: str) -> str:
    try:
        return PLACES[api, region]
    except KeyError:
        raise ValueError(f"unknown region {region!r} for {api}") from None


def read(*lines: Any, defaults: Defaults | None = None) -> list[Any]:
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    return read_jobs(text, "jobs.jsonl", defaults or Defaults(project_id="p1"), locate)


def test_every_api_word_makes_its_reference() -> None:
    words = api_words()
    assert {"evs", "ges-v1", "ges-v2", "ges-engine"} <= set(words)
    assert "ges" not in words  # the management plane is named by its version
    builtin = [word for word in words.values() if not word.word.startswith("test-")]
    assert [word.word for word in builtin][:3] == ["evs", "ecs", "bms"]  # the --help order
    assert len(builtin) == 15
    for word in builtin:  # (test_kinds registers a kind of its own)
        graph = "g1" if word.graph_key else None
        ref = word.ref("job-1", graph)
        assert ref_from_dict(ref_to_dict(ref)) == ref
    assert api_word("ges-v1").ref("j", "g").version == "v1.0"  # type: ignore[union-attr]


def test_mixed_lines_each_on_its_place() -> None:
    jobs = read(
        {"api": "evs", "job_id": "a", "endpoint": "https://evs.example/"},
        "",
        {"api": "ecs", "job_id": "b", "region": "cn-north-4", "project_id": "p2"},
        {"api": "ges-engine", "graph": "movies", "job_id": "7", "endpoint": "http://10.0.0.5:80"},
        {"api": "ges-v1", "graph": "g-id", "job_id": "9", "endpoint": "https://ges.example"},
    )
    assert [str(job.ref) for job in jobs] == [
        "evs:a",
        str(jobs[1].ref),
        str(jobs[2].ref),
        str(jobs[3].ref),
    ]
    assert jobs[0].place == Place("https://evs.example", "p1")
    assert jobs[1].place == Place("https://ecs.cn-north-4.example", "p2")
    assert jobs[2].ref == jobwatch.GesEngineJob("movies", "7")
    assert jobs[3].ref == jobwatch.GesJob("g-id", "9", "v1.0")
    assert [job.line for job in jobs] == [1, 3, 4, 5]


def test_command_line_defaults_and_line_values_win() -> None:
    defaults = Defaults(api="evs", endpoint="https://evs.example", project_id="p1")
    jobs = read(
        {"job_id": "a"},
        {"job_id": "b", "project_id": "p9"},
        {"api": "ecs", "job_id": "c", "region": "cn-north-4"},  # its region beats --endpoint
        defaults=defaults,
    )
    assert [job.place for job in jobs] == [
        Place("https://evs.example", "p1"),
        Place("https://evs.example", "p9"),
        Place("https://ecs.cn-north-4.example", "p1"),
    ]


def test_repeats_are_one_job_unless_their_places_differ() -> None:
    line = {"api": "evs", "job_id": "a", "endpoint": "https://evs.example"}
    assert len(read(line, line)) == 1
    with pytest.raises(CliError, match=r"jobs.jsonl:2: job evs:a is on line 1"):
        read(line, {**line, "endpoint": "https://evs.other"})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ({"job_id": "a", "endpoint": "https://e.x"}, 'no "api"'),
        ({"api": "nope", "job_id": "a"}, "unknown api 'nope'"),
        ({"api": "evs", "endpoint": "https://e.x"}, 'no "job_id"'),
        ({"api": "evs", "job_id": "../x", "endpoint": "https://e.x"}, "job_id"),
        ({"api": "evs", "job_id": 5, "endpoint": "https://e.x"}, "must be a string"),
        (
            {"api": "evs", "job_id": "a", "endpoint": "https://e.x", "grpah": "g"},
            "unknown key 'grpah'",
        ),
        (
            {"api": "evs", "job_id": "a", "graph": "g", "endpoint": "https://e.x"},
            '"graph" is not used',
        ),
        (
            {"api": "ges-engine", "job_id": "a", "endpoint": "https://e.x"},
            'needs "graph" \\(the graph name\\)',
        ),
        ({"api": "evs", "job_id": "a"}, 'no "endpoint" or "region"'),
        ({"api": "evs", "job_id": "a", "endpoint": "https://e.x/v1"}, "ends in an API version"),
        ({"api": "evs", "job_id": "a", "endpoint": "ftp://e.x"}, "http"),
        ({"api": "ecs", "job_id": "a", "region": "mars-1"}, "unknown region 'mars-1'"),
        (
            {"api": "evs", "job_id": "a", "endpoint": "https://e.x", "project_id": "a b"},
            "project_id",
        ),
    ],
)
def test_a_bad_line_is_a_usage_error_naming_its_number(line: Any, message: str) -> None:
    good = {"api": "evs", "job_id": "ok", "endpoint": "https://e.x"}
    with pytest.raises(CliError, match=rf"^jobs.jsonl:3: .*{message}") as caught:
        read(good, "   ", line, good)
    assert caught.value.exit_code == 2


def test_no_project_and_no_jobs() -> None:
    with pytest.raises(CliError, match=r'jobs.jsonl:1: no "project_id"'):
        read({"api": "evs", "job_id": "a", "endpoint": "https://e.x"}, defaults=Defaults())
    with pytest.raises(CliError, match="no jobs"):
        read("", "  ")


def test_a_huge_line_is_refused_without_parsing() -> None:
    with pytest.raises(CliError, match="characters long"):
        read(json.dumps({"api": "evs", "job_id": "a" * 100_000}))


LINE_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.none(),
    st.sampled_from(["evs", "ecs", "ges-engine", "cn-north-4", "mars-1", "https://e.x", "a.b"]),
)
JSON_LINES = st.dictionaries(
    st.sampled_from(["api", "job_id", "graph", "region", "endpoint", "project_id", "x"]),
    LINE_VALUES,
    max_size=5,
).map(json.dumps)


@given(st.lists(st.one_of(st.text(max_size=80), JSON_LINES), max_size=6))
def test_any_text_is_jobs_or_a_usage_error(lines: list[str]) -> None:
    defaults = Defaults(api="evs", endpoint="https://e.x", project_id="p")
    outcome: list[JobLine] | CliError
    try:
        outcome = read_jobs(lines, "f", defaults, locate)
    except CliError as exc:  # the only error there may be, and it names the file
        outcome = exc
    if isinstance(outcome, CliError):
        assert str(outcome).startswith("f:")
    else:
        assert outcome
        assert all(job.place.project_id for job in outcome)
