"""The region table against the official SDK's region lists, its overrides, its errors,
and ``Client.for_region`` making a working client."""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import jobwatch
from jobwatch import (
    AKSKAuth,
    Client,
    EvsJob,
    GesEngineJob,
    GesJob,
    JobState,
    JobwatchError,
    TokenAuth,
    UnknownRegion,
    UnknownService,
    endpoint_for,
)
from jobwatch._client import check_endpoint
from jobwatch._regions import (
    SDK_VERSION,
    check_service,
    env_variable,
    regions_of,
    services,
)
from jobwatch.airflow._connection import BadConnection, target_from_connection
from jobwatch.sim import ManualClock, SimAuth, Simulator

P = "proj-1"
AK, SK = "AKIDREGION0000001", "region-SECRET-do-not-print"

#: jobwatch's API name -> the official SDK's region classes for it (module:class).
SDK_REGIONS = {
    "evs": ["huaweicloudsdkevs.v2.region.evs_region:EvsRegion"],
    "evs-v2": ["huaweicloudsdkevs.v2.region.evs_region:EvsRegion"],
    "ecs": ["huaweicloudsdkecs.v2.region.ecs_region:EcsRegion"],
    "bms": ["huaweicloudsdkbms.v1.region.bms_region:BmsRegion"],
    "vpc": [
        "huaweicloudsdkvpc.v2.region.vpc_region:VpcRegion",
        "huaweicloudsdkvpc.v3.region.vpc_region:VpcRegion",
    ],
    "ims": ["huaweicloudsdkims.v2.region.ims_region:ImsRegion"],
    "ims-cloudimages": ["huaweicloudsdkims.v2.region.ims_region:ImsRegion"],
    "deh": ["huaweicloudsdkdeh.v1.region.deh_region:DeHRegion"],
    "sdrs": ["huaweicloudsdksdrs.v1.region.sdrs_region:SdrsRegion"],
    "dcs": ["huaweicloudsdkdcs.v2.region.dcs_region:DcsRegion"],
    "cce": [
        "huaweicloudsdkcce.v3.region.cce_region:CceRegion",
        "huaweicloudsdkcce.v5.region.cce_region:CceRegion",
    ],
    "rds": ["huaweicloudsdkrds.v3.region.rds_region:RdsRegion"],
    "ges": [
        "huaweicloudsdkges.v1.region.ges_region:GesRegion",
        "huaweicloudsdkges.v2.region.ges_region:GesRegion",
    ],
    "ges-v1": ["huaweicloudsdkges.v1.region.ges_region:GesRegion"],
    "ges-v2": ["huaweicloudsdkges.v2.region.ges_region:GesRegion"],
}

#: Every host of the table off Huawei's pattern https://{service}.{region}.myhuaweicloud.com,
#: each as the SDK lists it (and nothing else may be off it).
OFF_PATTERN = {
    # EU-Dublin on Huawei Cloud Europe's domain: so the SDK for these; EVS, ECS, VPC,
    # IMS and DCS list eu-west-101 on myhuaweicloud.com.
    ("cce", "eu-west-101"): "cce.eu-west-101.myhuaweicloud.eu",
    ("rds", "eu-west-101"): "rds.eu-west-101.myhuaweicloud.eu",
    ("ges", "eu-west-101"): "ges.eu-west-101.myhuaweicloud.eu",
    ("ges-v1", "eu-west-101"): "ges.eu-west-101.myhuaweicloud.eu",
    ("ges-v2", "eu-west-101"): "ges.eu-west-101.myhuaweicloud.eu",
    # The SDK (every language's) sends SDRS of AP-Bangkok to Singapore's host; SDRS's
    # "BRS Endpoints" page (sdrs_ad_0003) lists sdrs.ap-southeast-2: the SDK's is kept.
    ("sdrs", "ap-southeast-2"): "sdrs.ap-southeast-3.myhuaweicloud.com",
}
HOST_LABEL = {"evs-v2": "evs", "ims-cloudimages": "ims", "ges-v1": "ges", "ges-v2": "ges"}


def sdk_class(spec: str) -> Any:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def sdk_cases() -> list[tuple[str, str]]:
    return [(service, spec) for service, specs in SDK_REGIONS.items() for spec in specs]


@pytest.fixture(autouse=True)
def _no_sdk_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No override of the machine running the tests leaks in: no HUAWEICLOUD_SDK_REGION_*
    variable, a HOME without a regions file."""
    import os

    for name in list(os.environ):
        if name.startswith("HUAWEICLOUD_SDK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_the_table_was_checked_against_the_installed_sdk() -> None:
    for service in SDK_REGIONS:
        package = SDK_REGIONS[service][0].split(".", 1)[0]
        assert version(package) == SDK_VERSION, f"{package}: update the table and SDK_VERSION"


def test_every_api_with_a_regional_endpoint_is_compared_with_the_sdk() -> None:
    assert set(services()) == set(SDK_REGIONS)


@pytest.mark.parametrize(("service", "spec"), sdk_cases())
def test_the_table_gives_the_sdk_endpoint_in_every_region_the_sdk_lists(
    service: str, spec: str
) -> None:
    fields = sdk_class(spec).static_fields
    missing = set(fields) - regions_of(service)
    assert not missing, f"the SDK lists {service} in {sorted(missing)}, the table does not"
    extra = regions_of(service) - set(fields)
    assert not extra, f"the table lists {service} in {sorted(extra)}, the SDK does not"
    for region_id, region in fields.items():
        assert region.endpoints == [endpoint_for(service, region_id, environ={})], region_id


def test_the_hosts_off_the_pattern_are_exactly_the_documented_ones() -> None:
    off = {}
    for service in services():
        for region in regions_of(service):
            host = check_endpoint(endpoint_for(service, region, environ={})).host
            label = HOST_LABEL.get(service, service)
            if host != f"{label}.{region}.myhuaweicloud.com":
                off[service, region] = host
    assert off == OFF_PATTERN


@pytest.mark.parametrize(("service", "spec"), sdk_cases())
def test_the_override_variable_is_the_one_the_sdk_reads(
    service: str, spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Side by side with the SDK's own EnvRegionProvider (through ``XxxRegion.value_of``)."""
    cls = sdk_class(spec)
    for region in ("cn-north-4", "my-kualalumpur-1", "eu-west-101", "cn-private-9"):
        variable = env_variable(service, region)
        monkeypatch.setenv(variable, f"https://{service}-{region}.override.example")
        sdk = cls.value_of(region).endpoints
        assert sdk == [f"https://{service}-{region}.override.example"], variable
        assert endpoint_for(service, region) == sdk[0]
        monkeypatch.delenv(variable)


def test_the_variable_names_follow_the_sdk_rules() -> None:
    assert env_variable("evs", "cn-north-4") == "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4"
    assert env_variable("evs-v2", "cn-north-4") == "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4"
    assert env_variable("deh", "ap-southeast-1") == "HUAWEICLOUD_SDK_REGION_DEH_AP_SOUTHEAST_1"
    assert env_variable("ges-v1", "eu-west-101") == "HUAWEICLOUD_SDK_REGION_GES_EU_WEST_101"


def test_an_override_wins_over_the_table_and_names_a_region_it_lacks() -> None:
    env = {
        "HUAWEICLOUD_SDK_REGION_ECS_CN_NORTH_4": "https://ecs.internal.example:8443/",
        "HUAWEICLOUD_SDK_REGION_ECS_RU_NORTHWEST_2": "https://ecs.ru.example",
    }
    assert endpoint_for("ecs", "cn-north-4", environ=env) == "https://ecs.internal.example:8443"
    assert endpoint_for("ecs", "ru-northwest-2", environ=env) == "https://ecs.ru.example"
    # Another service's variable is not this one's.
    assert (
        endpoint_for("evs", "cn-north-4", environ=env) == "https://evs.cn-north-4.myhuaweicloud.com"
    )
    # Case matters, as to the SDK's os.getenv on POSIX.
    lower = {"huaweicloud_sdk_region_ecs_cn_north_4": "https://wrong.example"}
    assert endpoint_for("ecs", "cn-north-4", environ=lower).endswith("myhuaweicloud.com")


def test_a_list_of_endpoints_gives_the_first_as_the_sdk_tries_it_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    EvsRegion = sdk_class(SDK_REGIONS["evs"][0])

    monkeypatch.setenv(
        "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4", "https://a.example,https://b.example"
    )
    assert EvsRegion.value_of("cn-north-4").endpoints == ["https://a.example", "https://b.example"]
    assert endpoint_for("evs", "cn-north-4") == "https://a.example"


def test_an_empty_variable_is_no_override_as_for_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    EvsRegion = sdk_class(SDK_REGIONS["evs"][0])

    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4", "")
    assert EvsRegion.value_of("cn-north-4").endpoints == [endpoint_for("evs", "cn-north-4")]


@pytest.mark.parametrize(
    "value",
    ["evs.example.com", "ftp://evs.example", "https://AKX:pasted-SECRET@evs.example", "https://"],
)
def test_a_bad_override_is_refused_naming_the_variable_not_the_value(value: str) -> None:
    env = {"HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4": value}
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4") as caught:
        endpoint_for("evs", "cn-north-4", environ=env)
    assert "pasted-SECRET" not in str(caught.value)


# -- the SDK's profile file -------------------------------------------------------------

REGIONS_YAML = """
evs:
  - id: cn-north-4
    endpoint: https://evs.profile.example
  - id: cn-private-1
    endpoints:
      - https://first.profile.example
      - https://second.profile.example
    endpoint: https://last.profile.example
  - endpoint: https://no-id.example
GES:
  - id: eu-west-101
    endpoint: https://ges.profile.eu.example
"""


def profile(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "regions.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(path))
    return path


def test_the_profile_file_is_read_as_the_sdk_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huaweicloudsdkcore.region.cache import ProfileRegionCache

    profile(tmp_path, REGIONS_YAML, monkeypatch)
    sdk = ProfileRegionCache._resolve_profile()  # what the SDK's singleton would hold
    cases = [("evs", "EVS", "cn-north-4"), ("evs", "EVS", "cn-private-1")]
    cases += [("ges-v2", "GES", "eu-west-101")]
    for service, sdk_name, region in cases:
        assert endpoint_for(service, region) == sdk[sdk_name + region].endpoints[0]
    assert endpoint_for("evs", "cn-private-1") == "https://first.profile.example"
    # Regions the file does not name come from the table.
    assert endpoint_for("evs", "cn-north-1") == "https://evs.cn-north-1.myhuaweicloud.com"


def test_the_file_in_home_is_read_when_no_variable_names_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".huaweicloud").mkdir(parents=True)
    (home / ".huaweicloud" / "regions.yaml").write_text(REGIONS_YAML, encoding="utf-8")
    assert endpoint_for("evs", "cn-north-4") == "https://evs.profile.example"


def test_the_variable_wins_over_the_profile_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile(tmp_path, REGIONS_YAML, monkeypatch)
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4", "https://evs.env.example")
    assert endpoint_for("evs", "cn-north-4") == "https://evs.env.example"


@pytest.mark.parametrize(
    "text",
    [
        "evs: [\n",  # not YAML
        "- a list\n",
        "evs: {id: cn-north-4}\n",
        "evs:\n  - just a string\n",
        "evs:\n  - id: cn-north-4\n    endpoints: https://not-a-list.example\n",
        "evs:\n  - id: cn-north-4\n    endpoint: 5\n",
        "evs:\n  - id: cn-north-4\n    endpoint: not-a-url\n",
    ],
)
def test_a_bad_profile_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    profile(tmp_path, text, monkeypatch)
    with pytest.raises(ValueError, match="regions file"):
        endpoint_for("evs", "cn-north-4")


def test_a_profile_file_without_pyyaml_is_said_not_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile(tmp_path, REGIONS_YAML, monkeypatch)
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    with pytest.raises(ValueError, match="needs PyYAML"):
        endpoint_for("evs", "cn-north-4")


# -- unknown names ------------------------------------------------------------------------


def test_an_unknown_service_names_it_and_its_close_matches() -> None:
    with pytest.raises(UnknownService) as caught:
        endpoint_for("evz", "cn-north-4")
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, JobwatchError)
    assert error.service == "evz"
    assert error.suggestions == ("evs",)
    assert "'evz'" in str(error)
    assert "did you mean evs" in str(error)
    assert "known: bms, cce" in str(error)
    with pytest.raises(UnknownService, match="did you mean ecs\\?"):
        endpoint_for("ECS", "cn-north-4")


def test_ges_engine_has_no_regional_endpoint_and_says_so() -> None:
    with pytest.raises(UnknownService, match="graph's own access address"):
        endpoint_for("ges-engine", "cn-north-4")
    assert check_service("ges-engine") == "ges-engine"


def test_an_unknown_region_names_the_service_suggestions_and_the_variable() -> None:
    with pytest.raises(UnknownRegion) as caught:
        endpoint_for("ges-v2", "cn-nort-4")
    error = caught.value
    assert (error.service, error.region) == ("ges-v2", "cn-nort-4")
    assert "cn-north-4" in error.suggestions
    text = str(error)
    assert "ges-v2 is not known in region 'cn-nort-4'" in text
    assert "did you mean cn-north-4" in text
    assert "HUAWEICLOUD_SDK_REGION_GES_CN_NORT_4" in text
    assert "known regions of ges-v2: ap-southeast-1" in text


def test_a_region_of_another_service_is_unknown_for_this_one() -> None:
    assert endpoint_for("evs", "ru-northwest-2", environ={})
    with pytest.raises(UnknownRegion, match="ecs is not known in region 'ru-northwest-2'"):
        endpoint_for("ecs", "ru-northwest-2", environ={})


def test_a_region_in_upper_case_is_refused_with_the_right_one_suggested() -> None:
    with pytest.raises(UnknownRegion) as caught:
        endpoint_for("evs", "CN-NORTH-4")
    assert caught.value.suggestions == ("cn-north-4",)


@pytest.mark.parametrize("region", ["", " cn-north-4", "cn-north-4\n", "cn/north", "\x1b[31m"])
def test_a_malformed_region_is_refused_and_shown_escaped(region: str) -> None:
    with pytest.raises(UnknownRegion) as caught:
        endpoint_for("evs", region)
    assert "\x1b" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_long_hostile_name_is_cut_short_in_the_message() -> None:
    with pytest.raises(UnknownRegion) as caught:
        endpoint_for("evs", "cn-" + "x" * 100_000)
    assert len(str(caught.value)) < 2000


KNOWN = sorted({*services(), "ges-engine"})


@given(
    service=st.one_of(st.sampled_from(KNOWN), st.text(max_size=30)),
    region=st.one_of(
        st.sampled_from(sorted(regions_of("evs"))),
        st.from_regex(r"[a-z]{2}(-[a-z0-9]{1,8}){1,3}", fullmatch=True),
        st.text(max_size=40),
    ),
)
def test_any_strings_give_an_endpoint_or_a_typed_error(service: str, region: str) -> None:
    result = outcome(service, region)
    if isinstance(result, UnknownService):
        assert result.service == service
        assert service not in services()
    elif isinstance(result, UnknownRegion):
        assert (result.service, result.region) == (service, region)
        assert region not in regions_of(service)
    else:
        url = check_endpoint(result)
        assert url.scheme == "https"
        assert region in url.host
        assert region in regions_of(service)


def outcome(service: str, region: str) -> str | UnknownService | UnknownRegion:
    try:
        return endpoint_for(service, region, environ={})
    except (UnknownService, UnknownRegion) as exc:
        return exc


@given(value=st.one_of(st.integers(), st.none(), st.binary(max_size=8), st.lists(st.text())))
def test_names_that_are_not_strings_are_typed_errors(value: Any) -> None:
    with pytest.raises(UnknownService):
        endpoint_for(value, "cn-north-4", environ={})
    with pytest.raises(UnknownRegion):
        endpoint_for("evs", value, environ={})


def test_the_names_are_exported() -> None:
    for name in ("endpoint_for", "UnknownRegion", "UnknownService"):
        assert name in jobwatch.__all__


# -- Client.for_region ----------------------------------------------------------------


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", P)


@pytest.mark.anyio
@pytest.mark.usefixtures("sdk_env")
async def test_for_region_makes_a_working_client_signed_for_the_regions_host() -> None:
    sim = Simulator(clock=ManualClock(), auth=SimAuth(credentials={AK: SK}))
    sim.add_evs_job(P, "job-1", [(0, "RUNNING"), (1, "SUCCESS")])
    sim.add_ges_job(P, "graph-1", "job-2", [(0, "success")])
    sim.clock.advance(2)
    async with Client.for_region("ecs", "ap-southeast-1", transport=sim.transport()) as client:
        assert client.endpoint == "https://ecs.ap-southeast-1.myhuaweicloud.com"
        assert client.project_id == P
        snapshot = await client.fetch(EvsJob("job-1"))
    assert snapshot.state is JobState.SUCCEEDED
    async with Client.for_region("ges-v2", "eu-west-101", transport=sim.transport()) as client:
        assert client.endpoint == "https://ges.eu-west-101.myhuaweicloud.eu"
        snapshot = await client.fetch(GesJob("graph-1", "job-2"))
    assert snapshot.state is JobState.SUCCEEDED
    hosts = [request.headers["host"] for request in sim.requests]
    assert hosts == ["ecs.ap-southeast-1.myhuaweicloud.com", "ges.eu-west-101.myhuaweicloud.eu"]
    assert all(request.status_code == 200 for request in sim.requests)  # signatures accepted


@pytest.mark.usefixtures("sdk_env")
def test_for_region_takes_the_sdks_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_CCE_CN_NORTH_4", "https://cce.vpcep.example")
    assert Client.for_region("cce", "cn-north-4").endpoint == "https://cce.vpcep.example"


@pytest.mark.usefixtures("sdk_env")
def test_an_explicit_endpoint_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4", "https://evs.env.example")
    given = "https://evs.mine.example"
    assert Client.for_region("evs", "cn-north-4", endpoint=given).endpoint == given
    assert Client.for_region("evs", "not-in-the-table-1", endpoint=given).endpoint == given
    engine = Client.for_region("ges-engine", "cn-north-4", endpoint="https://10.0.0.7")
    assert engine.endpoint == "https://10.0.0.7"
    with pytest.raises(UnknownService, match="did you mean evs"):
        Client.for_region("evz", "cn-north-4", endpoint=given)


def test_an_unknown_region_or_service_is_an_error_before_credentials_are_read() -> None:
    # No AK/SK or project in the environment: the region is what is reported.
    with pytest.raises(UnknownRegion):
        Client.for_region("evs", "cn-nowhere-1")
    with pytest.raises(UnknownService):
        Client.for_region("ges-engine", "cn-north-4")


def test_for_region_reads_project_and_credentials_as_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        Client.for_region("evs", "cn-north-4")
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_AK"):
        Client.for_region("evs", "cn-north-4", "p-given")
    # An auth given needs no AK/SK in the environment (from_env alike).
    client = Client.for_region("evs", "cn-north-4", "p-given", auth=TokenAuth("t"))
    assert client.project_id == "p-given"
    assert Client.from_env("https://evs.example", "p-given", auth=TokenAuth("t"))
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "p-env")
    client = Client.for_region("evs", "cn-north-4")
    assert client.project_id == "p-env"
    assert repr(client._auth) == repr(AKSKAuth(AK, SK))
    assert SK not in repr(client)


# -- the Airflow connection -------------------------------------------------------------


class Conn:
    """An Airflow connection's fields, as ``target_from_connection`` reads them."""

    def __init__(self, region: str) -> None:
        self.conn_id = "hw"
        self.login: str | None = AK
        self.password: str | None = SK
        self._extra = {"project_id": P, "region": region}

    @property
    def extra_dejson(self) -> Any:
        return self._extra


def test_the_airflow_connection_takes_its_endpoint_from_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert target_from_connection(Conn("eu-west-101"), GesJob("g", "j")).endpoint == (
        "https://ges.eu-west-101.myhuaweicloud.eu"
    )
    assert target_from_connection(Conn("cn-north-4"), EvsJob("j")).endpoint == (
        "https://evs.cn-north-4.myhuaweicloud.com"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4", "https://evs.env.example")
    assert target_from_connection(Conn("cn-north-4"), EvsJob("j")).endpoint == (
        "https://evs.env.example"
    )
    with pytest.raises(BadConnection, match="did you mean cn-north-4"):
        target_from_connection(Conn("cn-nort-4"), EvsJob("j"))
    with pytest.raises(BadConnection, match="graph's own access address"):
        target_from_connection(Conn("cn-north-4"), GesEngineJob("graph", "j"))
