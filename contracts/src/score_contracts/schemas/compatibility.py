"""Whether a newly generated schema may replace a committed one within the same major version.

DESIGN.md's rule: adding an optional property is a minor change; anything else needs a new
major version. Both directions matter. Consumers still on the committed schema receive what
the new model produces (so a removed property, a widened enum, or a looser length breaks
them), and consumers on the new model replay what the old one produced (so a new required
property, a narrowed type, or a tighter pattern breaks them). Hence every validation keyword
of an existing property must stay as it was; only annotations (titles, descriptions,
defaults, examples) may change, and only optional properties may be added.
"""

from __future__ import annotations

import json
from typing import Any, Final

JsonSchema = dict[str, Any]

# Keywords that describe and do not validate: changing them is harmless.
_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
# Keywords holding subschemas, compared by walking into them.
_STRUCTURE: Final = frozenset(
    {"$ref", "properties", "required", "items", "prefixItems", "anyOf", "oneOf", "allOf"}
)
_ALTERNATIVES: Final = ("anyOf", "oneOf", "allOf")
_ABSENT: Final = object()


def incompatibilities(committed: JsonSchema, generated: JsonSchema) -> list[str]:
    """Why `generated` may not be published under the same major version as `committed`.

    An empty list means compatible. Each entry names the place (`data.workforce.women`) and
    the change. Local `$ref`s (`#/$defs/…`) are followed in each schema's own document.
    """
    return _Comparison(committed, generated).compare(committed, generated, "", ())


class _Comparison:
    def __init__(self, committed: JsonSchema, generated: JsonSchema) -> None:
        self._old_root = committed
        self._new_root = generated

    def compare(
        self,
        old: JsonSchema,
        new: JsonSchema,
        where: str,
        following: tuple[tuple[str, str], ...],
    ) -> list[str]:
        old, old_ref = _resolve(old, self._old_root)
        new, new_ref = _resolve(new, self._new_root)
        if old_ref or new_ref:
            pair = (old_ref, new_ref)
            if pair in following:  # a recursive definition, already being compared
                return []
            following = (*following, pair)
        return [
            *self._keywords(old, new, where),
            *self._properties(old, new, where, following),
            *self._alternatives(old, new, where, following),
            *self._items(old, new, where, following),
        ]

    def _keywords(self, old: JsonSchema, new: JsonSchema, where: str) -> list[str]:
        keywords = sorted((old.keys() | new.keys()) - _ANNOTATIONS - _STRUCTURE)
        return [
            f"{_place(where)}: {keyword} changed from {_show(before)} to {_show(after)}"
            for keyword in keywords
            if (before := old.get(keyword, _ABSENT)) != (after := new.get(keyword, _ABSENT))
        ]

    def _properties(
        self,
        old: JsonSchema,
        new: JsonSchema,
        where: str,
        following: tuple[tuple[str, str], ...],
    ) -> list[str]:
        old_properties: dict[str, JsonSchema] = old.get("properties", {})
        new_properties: dict[str, JsonSchema] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        problems: list[str] = []
        for name, before in old_properties.items():
            place = _join(where, name)
            if name not in new_properties:
                problems.append(f"{place}: removed (consumers of the committed schema read it)")
                continue
            if name in old_required and name not in new_required:
                problems.append(f"{place}: no longer required (consumers rely on its presence)")
            if name not in old_required and name in new_required:
                problems.append(f"{place}: now required (events without it were valid)")
            problems.extend(self.compare(before, new_properties[name], place, following))
        for name in sorted(new_required - old_properties.keys()):
            problems.append(
                f"{_join(where, name)}: new required property (events without it were valid)"
            )
        return problems

    def _alternatives(
        self,
        old: JsonSchema,
        new: JsonSchema,
        where: str,
        following: tuple[tuple[str, str], ...],
    ) -> list[str]:
        problems: list[str] = []
        for keyword in _ALTERNATIVES:
            before: list[JsonSchema] = old.get(keyword, [])
            after: list[JsonSchema] = new.get(keyword, [])
            if len(before) != len(after):
                problems.append(
                    f"{_place(where)}: {keyword} changed from {len(before)} to "
                    f"{len(after)} alternatives"
                )
                continue
            for number, (one, other) in enumerate(zip(before, after, strict=True)):
                place = (
                    f"{where} ({keyword} {number + 1})" if where else f"({keyword} {number + 1})"
                )
                problems.extend(self.compare(one, other, place, following))
        return problems

    def _items(
        self,
        old: JsonSchema,
        new: JsonSchema,
        where: str,
        following: tuple[tuple[str, str], ...],
    ) -> list[str]:
        problems: list[str] = []
        before, after = old.get("items", _ABSENT), new.get("items", _ABSENT)
        if isinstance(before, dict) and isinstance(after, dict):
            problems.extend(self.compare(before, after, f"{where}[]", following))
        elif before != after:
            problems.append(
                f"{_place(where)}: items changed from {_show(before)} to {_show(after)}"
            )
        old_tuple: list[JsonSchema] = old.get("prefixItems", [])
        new_tuple: list[JsonSchema] = new.get("prefixItems", [])
        if len(old_tuple) != len(new_tuple):
            problems.append(
                f"{_place(where)}: prefixItems changed from {len(old_tuple)} to "
                f"{len(new_tuple)} positions"
            )
        else:
            for number, (one, other) in enumerate(zip(old_tuple, new_tuple, strict=True)):
                problems.extend(self.compare(one, other, f"{where}[{number}]", following))
        return problems


def _resolve(schema: JsonSchema, root: JsonSchema) -> tuple[JsonSchema, str]:
    """`schema` with its `$ref` replaced by the definition, and the reference followed.

    Keywords beside a `$ref` (pydantic puts a field's description there) apply too.
    """
    followed: list[str] = []
    while "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ValueError(f"only local references can be compared, not {ref!r}")
        if ref in followed:
            raise ValueError(f"circular reference {ref!r}")
        followed.append(ref)
        beside = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**_pointer(root, ref), **beside}
    return schema, followed[0] if followed else ""


def _pointer(root: JsonSchema, ref: str) -> JsonSchema:
    target: Any = root
    for token in ref.removeprefix("#").split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or token not in target:
            raise ValueError(f"unresolvable reference {ref!r}")
        target = target[token]
    if not isinstance(target, dict):
        raise ValueError(f"reference {ref!r} does not name a schema")
    return target


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _place(where: str) -> str:
    return where or "(root)"


def _show(value: object) -> str:
    return "(none)" if value is _ABSENT else json.dumps(value, ensure_ascii=False)
