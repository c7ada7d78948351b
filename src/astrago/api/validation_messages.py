"""Request validation errors said the way a person would say them, with the field, the value given and
what is allowed (the real pattern, the real choices), plus a did-you-mean for a mistyped field name.

Pydantic's own wording (`String should match pattern '...'`, `Extra inputs are not permitted`) is correct
but names neither what was given nor what would have been accepted; this module keeps every fact of it
and adds those."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from astrago.domain.suggest import did_you_mean

# Patterns people meet, in words; the pattern itself is always shown too.
PATTERN_WORDS = {
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": "lowercase letters, digits and '-', at most 63 characters, "
    "starting and ending with a letter or digit",
    r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$": "letters, digits, '.', '_' and '-', at most 64 characters, "
    "starting with a letter or digit",
}
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": "≥",
    "less_than": "<",
    "less_than_equal": "≤",
}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}
_KINDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "the request"


def human_message(error: dict[str, Any], body_model: type[BaseModel] | None = None) -> str:
    loc = tuple(error.get("loc", ()))
    where = field_path(loc)
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    given = error.get("input")
    shown = _shown(given)
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return _unknown_field(loc, body_model)
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        words = PATTERN_WORDS.get(pattern)
        described = f" ({words})" if words else ""
        return f"{where} must match the pattern {pattern}{described}, not {shown}"
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        guess = did_you_mean(str(given), choices) if isinstance(given, str) else ""
        return f"{where} must be one of {', '.join(choices)}, not {shown}{guess}"
    if kind in _BOUNDS:
        return f"{where} must be {_BOUNDS[kind]} {ctx.get(_BOUND_KEYS[kind])}, not {shown}"
    if kind in ("string_too_short", "too_short"):
        return f"{where} must have at least {ctx.get('min_length')} characters or items, not {shown}"
    if kind in ("string_too_long", "too_long"):
        return f"{where} must have at most {ctx.get('max_length')} characters or items"
    if kind in _KINDS:
        return f"{where} must be {_KINDS[kind]}, not {shown}"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{where}: {message}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_field(loc: tuple[Any, ...], body_model: type[BaseModel] | None) -> str:
    name = str(loc[-1]) if loc else "?"
    parent = field_path(loc[:-1])
    where = "" if parent == "the request" else f" in {parent}"
    path = [p for p in loc[:-1] if p != "body"]
    fields = _fields_at(body_model, path) if body_model else None
    if not fields:
        return f"{name} is not a field{where}"
    home = next((f for f in fields if name in (_fields_at(body_model, [*path, f]) or ())), None)
    hint = f" (it belongs under {home})" if home else did_you_mean(name, fields)
    return f"{name} is not a field{where}{hint}; the fields are: {', '.join(fields)}"


def _fields_at(model: type[BaseModel] | None, path: list[Any]) -> list[str] | None:
    """The field names of the (nested) model at `path` of the body."""
    for part in path:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType, list):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None
