"""A JSON Schema of ``config/*.yml``, generated from :data:`deployer.schema.SCHEMA`, so
editors complete keys and flag mistakes as they are typed.

YAML editors read it through a modeline at the top of each file (``init`` writes both):
``# yaml-language-server: $schema=deployer.schema.json``. One schema serves the
defaults file and the stage files alike: each may set any key, and keys required on the
merged configuration are required only inside list items (a list replaces, never
merges, so each item must be complete in one file).

    python3 -m deployer schema > config/deployer.schema.json
"""

from __future__ import annotations

import json
from typing import Any

from .schema import SCHEMA
from .shapes import AnyMap, Bool, CountOrShare, Enum, Int, List, Map, Node, Number, Str

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MODELINE = "# yaml-language-server: $schema=deployer.schema.json"


def _shape(node: Node) -> dict[str, Any]:
    """The JSON Schema keywords for one node's own shape."""
    if isinstance(node, Str):
        if node.pattern:
            return {"type": "string", "pattern": f"^(?:{node.pattern})$"}
        return {"type": "string", **({"pattern": r"\S"} if node.non_empty else {})}
    if isinstance(node, Bool):
        return {"type": "boolean"}
    if isinstance(node, Int):
        bounds = {"minimum": node.minimum, "maximum": node.maximum}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}
    if isinstance(node, Number):
        key = "minimum" if node.zero_ok else "exclusiveMinimum"
        return {"type": "number", key: node.minimum}
    if isinstance(node, Enum):
        return {"enum": list(node.choices)}
    if isinstance(node, CountOrShare):
        return {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^(100|[1-9][0-9]?)%$"},
            ]
        }
    if isinstance(node, List):
        return {"type": "array", "items": to_json_schema(node.item, in_list=True)}
    if isinstance(node, AnyMap):
        return {"type": "object"}
    raise TypeError(f"no JSON Schema for {type(node).__name__}")


def to_json_schema(node: Node, in_list: bool = False) -> dict[str, Any]:
    """One node with its description and default; mappings reject unknown keys."""
    if isinstance(node, Map):
        found: dict[str, Any] = {
            "type": "object",
            "properties": {key: to_json_schema(child) for key, child in node.fields.items()},
            "additionalProperties": False,
        }
        if in_list and node.required:
            found["required"] = list(node.required)
    else:
        found = _shape(node)
    if node.doc:
        found["description"] = node.doc
    if node.default is not None:
        found["default"] = node.default
    return found


def document() -> dict[str, Any]:
    return {"$schema": DRAFT, "title": "deployer configuration (config/*.yml)", **to_json_schema(SCHEMA)}


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"
