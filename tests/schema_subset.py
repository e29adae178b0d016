"""A small, strict validator for the subset of JSON Schema ``events.schema.json`` uses.

``jsonschema`` is not among the test dependencies; this checks ``$ref`` (local
``#/$defs/...``), ``oneOf``, ``type``, ``const``, ``enum``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``minimum`` and ``format:
date-time``.  Any other keyword is an error: the schema cannot use one silently.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["SchemaError", "validate"]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
_CHECKED = {
    "$ref",
    "oneOf",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "format",
}
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


class SchemaError(AssertionError):
    """``instance`` does not match the schema (or the schema uses an unknown keyword)."""


def _is(kind: str, value: object) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def validate(instance: object, schema: dict[str, Any], root: dict[str, Any] | None = None) -> None:
    """Raise ``SchemaError`` unless ``instance`` matches ``schema``."""
    _check(instance, schema, root or schema, "$")


def _check(value: object, schema: dict[str, Any], root: dict[str, Any], where: str) -> None:
    unknown = set(schema) - _ANNOTATIONS - _CHECKED
    if unknown:
        raise SchemaError(f"unsupported keywords {sorted(unknown)} at {where}")
    if "$ref" in schema:
        ref: str = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise SchemaError(f"unsupported $ref {ref!r}")
        _check(value, root["$defs"][ref.removeprefix("#/$defs/")], root, where)
    if "oneOf" in schema:
        matched = 0
        for option in schema["oneOf"]:
            try:
                _check(value, option, root, where)
            except SchemaError:
                continue
            matched += 1
        if matched != 1:
            raise SchemaError(f"{where}: {value!r} matches {matched} of oneOf, not 1")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(kind, value) for kind in kinds):
            raise SchemaError(f"{where}: {value!r} is not of type {kinds}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        raise SchemaError(f"{where}: {value!r} is less than {schema['minimum']}")
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise SchemaError(f"{where}: {value!r} is not a date-time") from None
    if isinstance(value, dict):
        _check_object(value, schema, root, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check(item, schema["items"], root, f"{where}[{index}]")


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], where: str
) -> None:
    missing = set(schema.get("required", ())) - set(value)
    if missing:
        raise SchemaError(f"{where}: missing {sorted(missing)}")
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], root, f"{where}.{key}")
        elif extra is False:
            raise SchemaError(f"{where}: unexpected key {key!r}")
        elif isinstance(extra, dict):
            _check(item, extra, root, f"{where}.{key}")
