"""API dialects: one module per API, each with its references, its parsing and its kind.

Importing this package registers every kind (``jobwatch._kinds``).  The pydantic
models a dialect validates its bodies with live in its ``_*_wire`` module, imported
at the first validation (``_common.WireModel``) or by ``import_wire_models``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from jobwatch._dialects import (  # noqa: F401 - each registers its kind
    _bms,
    _cce,
    _dcs,
    _deh,
    _ecs,
    _engine,
    _evs,
    _evs_v2,
    _ges,
    _ims,
    _rds,
    _sdrs,
    _vpc,
)
from jobwatch._dialects._common import decode_json, raise_for_error_body
from jobwatch._dialects._engine import MAX_LIMIT, EnginePage
from jobwatch._kinds import kind_of

if TYPE_CHECKING:
    from jobwatch._refs import JobRef
    from jobwatch._snapshot import JobSnapshot

__all__ = [
    "MAX_LIMIT",
    "EnginePage",
    "decode_json",
    "import_wire_models",
    "parse_engine_page",
    "parse_snapshot",
    "raise_for_error_body",
]

parse_engine_page = _engine.parse_page

#: The modules of the dialects' wire models (see ``_common.WireModel``).
WIRE_MODULES = ("_cce_wire", "_engine_wire", "_family_wire", "_ges_wire", "_rds_wire")


def import_wire_models() -> None:
    """Import every dialect's wire models now, so that no first validation pays for them."""
    for name in WIRE_MODULES:
        importlib.import_module(f"{__name__}.{name}")


def parse_snapshot(ref: JobRef, data: object) -> JobSnapshot:
    """Read one answer of ``ref``'s status request into its snapshot.

    For an engine job that is one page of its graph's job list
    (``JobNotFound`` when the job is not on it).
    """
    return kind_of(ref).parse(ref, data)
