"""Scenarios: a simulator described as JSON data (the form is documented in ``jobwatch.sim``).

The keys of each job, sub-job and fault are the parameters of ``add_*_job``,
:class:`SubJob` and :class:`Fault`, read from their signatures, so the format
follows the Python API without a second list to keep in step.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from jobwatch.sim._app import SimAuth
from jobwatch.sim._cce import CceSubJob
from jobwatch.sim._clock import Clock, ManualClock, MonotonicClock
from jobwatch.sim._faults import Fault
from jobwatch.sim._jobs import SubJob
from jobwatch.sim._simulator import DEFAULT_EPOCH, Simulator

__all__ = ["build", "load"]

SCENARIO_VERSION = 1
_TOP_KEYS = frozenset(
    {
        "version",
        "seed",
        "clock",
        "epoch",
        "engine_schema",
        "auth",
        "graphs",
        "faults",
        "evs_jobs",
        "ges_jobs",
        "engine_jobs",
        "cce_jobs",
        "rds_jobs",
    }
)
_T = TypeVar("_T")


def load(path: str | PathLike[str]) -> Mapping[str, Any]:
    """Read a JSON scenario file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        raise ValueError(f"scenario {path} must hold a JSON object")
    return data


def build(cls: type[Simulator[Any]], data: Mapping[str, Any], clock: Clock | None) -> Simulator:
    """Make a simulator of class ``cls`` from scenario ``data``."""
    where = "scenario"
    fields = _object(data, where, _TOP_KEYS)
    if fields.get("version", SCENARIO_VERSION) != SCENARIO_VERSION:
        raise ValueError(f"{where}: version must be {SCENARIO_VERSION}")
    auth = fields.get("auth")
    if auth is not None:
        auth_fields = _object(auth, f"{where}.auth", frozenset({"tokens", "credentials"}))
        auth = _call(SimAuth, auth_fields, f"{where}.auth")
    sim = cls(
        clock=_clock(fields.get("clock", "monotonic")) if clock is None else clock,
        auth=auth,
        seed=fields.get("seed", 0),
        epoch=_epoch(fields.get("epoch")),
        engine_schema=fields.get("engine_schema", "2.2.13"),
    )
    for i, graph in enumerate(_list(fields, "graphs")):
        _call(sim.add_graph, graph, f"{where}.graphs[{i}]")
    for i, fault in enumerate(_list(fields, "faults")):
        sim.add_fault(_call(Fault, fault, f"{where}.faults[{i}]"))
    adders: dict[str, Callable[..., None]] = {
        "evs_jobs": sim.add_evs_job,
        "ges_jobs": sim.add_ges_job,
        "engine_jobs": sim.add_engine_job,
        "cce_jobs": sim.add_cce_job,
        "rds_jobs": sim.add_rds_job,
    }
    for key, add in adders.items():
        sub_job: Callable[..., Any] = CceSubJob if key == "cce_jobs" else SubJob
        for i, job in enumerate(_list(fields, key)):
            _call(add, _job(job, f"{where}.{key}[{i}]", sub_job), f"{where}.{key}[{i}]")
    return sim


def _job(raw: object, where: str, sub_job: Callable[..., Any] = SubJob) -> dict[str, Any]:
    """Turn the nested parts of a job (faults, sub-jobs) into their Python objects."""
    job = dict(_object(raw, where, None))
    if "faults" in job:
        job["faults"] = [
            _call(Fault, fault, f"{where}.faults[{i}]")
            for i, fault in enumerate(_list(job, "faults"))
        ]
    if "sub_jobs" in job:
        job["sub_jobs"] = [
            _call(sub_job, _job(sub, f"{where}.sub_jobs[{i}]", sub_job), f"{where}.sub_jobs[{i}]")
            for i, sub in enumerate(_list(job, "sub_jobs"))
        ]
    return job


def _call(target: Callable[..., _T], raw: object, where: str) -> _T:
    """Call ``target`` with the keys of ``raw``, which must be among its parameters."""
    parameters = inspect.signature(target).parameters
    fields = _object(raw, where, frozenset(parameters))
    missing = [
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty and name not in fields
    ]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    try:
        return target(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _object(raw: object, where: str, allowed: frozenset[str] | None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object, not {type(raw).__name__}")
    if allowed is not None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    return raw


def _list(fields: Mapping[str, Any], key: str) -> list[Any]:
    value = fields.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list, not {type(value).__name__}")
    return value


def _clock(name: object) -> Clock:
    if name == "manual":
        return ManualClock()
    if name == "monotonic":
        return MonotonicClock()
    raise ValueError(f"scenario clock must be 'manual' or 'monotonic', not {name!r}")


def _epoch(value: object) -> datetime:
    if value is None:
        return DEFAULT_EPOCH
    if not isinstance(value, str):
        raise ValueError(f"scenario epoch must be an ISO 8601 string, not {value!r}")
    epoch = datetime.fromisoformat(value)
    if epoch.tzinfo is None:
        raise ValueError(f"scenario epoch must carry a timezone (e.g. 'Z'), not {value!r}")
    return epoch
