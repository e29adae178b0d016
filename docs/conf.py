"""Sphinx configuration of jobwatch's API reference (``make docs``; warnings are errors)."""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import inspect, logging
from sphinx.util.docutils import SphinxDirective

import jobwatch

logger = logging.getLogger(__name__)

project = "jobwatch"
author = "jobwatch developers"
copyright = "jobwatch developers"
release = version = jobwatch.__version__

extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "requirements.txt"]
html_theme = "furo"
html_title = f"jobwatch {release}"

# Every cross-reference must resolve: -n (nitpicky) with -W makes a broken one fail the build.
nitpicky = True
# Without network access there is no intersphinx inventory: names from other packages
# and from the standard library stay plain text (the builtins are never reported).
nitpick_ignore_regex = [
    (r"py:.*", r"(httpx|anyio|pydantic|sniffio|pytest|_pytest|uvicorn|airflow)(\..*)?"),
    (r"py:.*", r"(opentelemetry|prometheus_client)(\..*)?"),
    (r"py:.*", r"(TracerProvider|MeterProvider|CollectorRegistry)"),
    (r"py:.*", r"(collections|typing|typing_extensions|types|datetime|enum|os|pathlib)\..*"),
    (r"py:.*", r"(asyncio|contextlib|logging|ssl|json|concurrent|socket|abc|random)\..*"),
    (r"py:.*", r"(Path|PathLike|AsyncIterator|Iterator|Mapping|Sequence|Callable|Awaitable)"),
    (r"py:.*", r"(datetime|timedelta|TracebackType|Self|Literal|Any|TypeAlias|Generic)"),
    # Internal: what Watcher.as_completed returns, documented there as an async iterator.
    ("py:class", "jobwatch._outcomes.Gather"),
    # Internal: the base of the EVS-style family's references (each is documented).
    ("py:class", "jobwatch._dialects._family.FamilyJob"),
    # Internal: the base of the references one job ID makes (CceJob, RdsJob, FamilyJob).
    ("py:class", "jobwatch._dialects._common.OneIdJob"),
]

# jobwatch.airflow's modules import Airflow, which this virtualenv does not install.
autodoc_mock_imports = ["airflow"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_preserve_defaults = True
autoclass_content = "both"

# The README is included as the guide: its "#section" links become heading anchors.
myst_heading_anchors = 4

# The public modules, in the order a private name is looked for in them.
_PUBLIC = [
    "jobwatch",
    "jobwatch.sim",
    "jobwatch.testing",
    "jobwatch.airflow",
    "jobwatch.otel",
    "jobwatch.prometheus",
]


def _public_target(target: str) -> str | None:
    """``jobwatch._refs.JobRef`` -> ``jobwatch.JobRef``: annotations name the defining module."""
    parts = target.split(".")
    private = [i for i, part in enumerate(parts[:-1]) if part.startswith("_")]
    if parts[0] != "jobwatch" or not private:
        return None
    rest = parts[private[-1] + 1 :]
    for module in _PUBLIC:
        if rest[0] in getattr(importlib.import_module(module), "__all__", ()):
            return ".".join([module, *rest])
    return None


def _missing_reference(
    app: Sphinx, env: Any, node: Any, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    target = _public_target(node["reftarget"])
    if target is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(  # type: ignore[no-any-return]
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


class ExceptionTree(SphinxDirective):
    """The hierarchy of jobwatch's exceptions, made from the classes themselves."""

    def run(self) -> list[nodes.Node]:
        errors = [
            obj
            for name in jobwatch.__all__
            if isinstance(obj := getattr(jobwatch, name), type)
            and issubclass(obj, jobwatch.JobwatchError)
        ]
        lines: list[str] = []

        def walk(cls: type, depth: int) -> None:
            lines.append(f"{'  ' * depth}- :exc:`~jobwatch.{cls.__name__}`")
            lines.append("")
            for sub in errors:
                if cls in sub.__bases__:
                    walk(sub, depth + 1)

        walk(jobwatch.JobwatchError, 0)
        container = nodes.container()
        self.state.nested_parse(StringList(lines), self.content_offset, container)
        return container.children


def _signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    ret: str | None,
) -> tuple[str | None, str | None]:
    # A dataclass field's default_factory shows as "<factory>", which does not parse as
    # Python, and Sphinx then splits the signature at every comma.
    if signature is not None:
        signature = signature.replace("= <factory>", "= ...")
    # A subclass of a mocked Airflow class gets the mock's (*args, **kwargs): show its own.
    if what in {"class", "exception"} and any(
        getattr(base, "__sphinx_mock__", False) for base in obj.__mro__[1:]
    ):
        init = inspect.signature(obj.__init__, bound_method=True)
        signature = inspect.stringify_signature(
            init, show_return_annotation=False, unqualified_typehints=True
        )
    return signature, ret


def _docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    # A type alias or a constant has no docstring of its own: autodoc would show its
    # type's (types.UnionType's, TypeVar's, PollPolicy's).  The page says what it is.
    if what in {"data", "attribute"} and obj.__doc__ == type(obj).__doc__:
        lines.clear()
        return
    # The PYTEST_DONT_REWRITE marker (a paragraph of the module docstring) is for pytest.
    for i, line in enumerate(lines):
        if line.startswith("PYTEST_DONT_REWRITE"):
            end = lines.index("", i) if "" in lines[i:] else len(lines)
            del lines[i:end]
            break


def _check_exports(app: Sphinx, env: Any) -> None:
    """Warn (an error under -W) about an exported name that no page documents."""
    documented = set(env.get_domain("py").objects)
    for module in _PUBLIC:
        for name in importlib.import_module(module).__all__:
            if f"{module}.{name}" in documented:
                continue
            # jobwatch.airflow's lazy names are documented in the submodule defining them.
            if any(o.startswith(f"{module}.") and o.endswith(f".{name}") for o in documented):
                continue
            logger.warning("%s.%s is exported but not in the API reference", module, name)


def setup(app: Sphinx) -> None:
    app.connect("env-check-consistency", _check_exports)
    app.connect("autodoc-process-signature", _signature)
    app.connect("autodoc-process-docstring", _docstring)
    app.connect("missing-reference", _missing_reference)
    app.add_directive("jobwatch-exception-tree", ExceptionTree)
