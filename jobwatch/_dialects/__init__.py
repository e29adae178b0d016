"""API dialects: one module per API, each with its references, its parsing and its kind.

Importing this package registers every kind (``jobwatch._kinds``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwatch._dialects import (  # noqa: F401 - each registers its kind
    _bms,
    _dcs,
    _deh,
    _ecs,
    _engine,
    _evs,
    _evs_v2,
    _ges,
    _ims,
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
    "parse_engine_page",
    "parse_snapshot",
    "raise_for_error_body",
]

parse_engine_page = _engine.parse_page


def parse_snapshot(ref: JobRef, data: object) -> JobSnapshot:
    """Read one answer of ``ref``'s status request into its snapshot.

    For an engine job that is one page of its graph's job list
    (``JobNotFound`` when the job is not on it).
    """
    return kind_of(ref).parse(ref, data)
