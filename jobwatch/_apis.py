"""The services' names (``--api`` words, region-table names), one per service, from the API kinds.

A word is a kind's name (``evs``, ``ecs``, ``cce``, ``ges-engine``...), except
for the GES management plane, one kind with two versions: ``ges-v1`` and
``ges-v2``.  A kind whose jobs live in a graph names the key of the graph in its
JSON form (``graph_key``); the command line's ``--graph`` (and a jobs file's
``"graph"``) fills it.  A new kind is a new word, with nothing to add here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwatch._kinds import ApiKind, kind_of, kinds
from jobwatch._refs import JobRef

__all__ = ["ApiWord", "api_of", "api_word", "api_words", "graph_of"]

# The GES management plane: one kind, the version in the reference.
_VERSIONS = {"ges": (("ges-v1", "v1.0"), ("ges-v2", "v2"))}
# The order of ``--help`` (kinds registered later follow, in their order).
_ORDER = (
    "evs", "ecs", "bms", "vpc", "ims", "ims-cloudimages", "deh", "sdrs", "evs-v2", "dcs",
    "cce", "rds", "ges-v1", "ges-v2", "ges-engine",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ApiWord:
    """One ``--api`` word: its kind, the key of its graph (None: no graph) and fixed fields."""

    word: str
    kind: ApiKind[Any]
    graph_key: str | None
    fixed: Mapping[str, str] = field(default_factory=dict)

    @property
    def graph_label(self) -> str:
        """How the graph is named in messages: "graph name" or "graph ID"."""
        return "graph name" if self.graph_key == "graph_name" else "graph ID"

    def ref(self, job_id: str, graph: str | None) -> JobRef:
        """The reference of ``job_id`` (in ``graph``); ``ValueError`` when it is not one."""
        data: dict[str, Any] = {"api": self.kind.name, **self.fixed, "job_id": job_id}
        if self.graph_key is not None:
            data[self.graph_key] = graph
        ref: JobRef = self.kind.from_dict(data)
        return ref


def api_words() -> dict[str, ApiWord]:
    """Every ``--api`` word: the family's, CCE, RDS, GES, then any other kind's."""
    words: dict[str, ApiWord] = {}
    for kind in kinds():
        versions = _VERSIONS.get(kind.name)
        if versions is None:
            words[kind.name] = ApiWord(kind.name, kind, kind.graph_key)
            continue
        for word, version in versions:
            words[word] = ApiWord(word, kind, kind.graph_key, {"version": version})
    rank = {word: n for n, word in enumerate(_ORDER)}
    return dict(sorted(words.items(), key=lambda item: rank.get(item[0], len(rank))))


def api_word(word: str) -> ApiWord | None:
    """The ``--api`` word ``word``; None when there is none."""
    return api_words().get(word)


def api_of(ref: JobRef) -> str:
    """The service of a job reference, as ``--api``, ``endpoint_for`` and ``ClientPool.client_for``
    name it: ``"evs"``, ``"ecs"``, ``"cce"``, ``"ges-v1"``, ``"ges-engine"``...

    (The ``"api"`` of a reference's JSON form is its kind's name: ``"ges"`` for both
    versions of the GES management plane.)
    """
    kind = kind_of(ref)
    versions = _VERSIONS.get(kind.name)
    if versions is None:
        return kind.name
    version = kind.to_dict(ref).get("version")
    return next((word for word, fixed in versions if fixed == version), kind.name)


def graph_of(ref: JobRef) -> str | None:
    """The graph a reference's job lives in (its ID or name); None for an API without."""
    kind = kind_of(ref)
    key = kind.graph_key
    return None if key is None else kind.to_dict(ref).get(key)
