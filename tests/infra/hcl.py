"""Reading the Terraform tree with python-hcl2 (7.x output: expressions as "${...}" strings)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

from tests.infra.fakes import REPO

INFRA = REPO / "infra"
ENVS = ("stage", "prod")
MODULES = INFRA / "modules"
META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}
REF_VAR = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
# module.x.y, module.x[0].y and module.x[*].y
REF_MODULE_OUT = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?\.([A-Za-z_][\w-]*)")


@cache
def load_dir(directory: Path) -> dict[str, list[Any]]:
    """Every *.tf file of one Terraform module directory, merged by block type (read-only)."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            for block_type, items in hcl2.load(handle).items():
                merged.setdefault(block_type, []).extend(items)
    return merged


def named(doc: dict[str, list[Any]], block_type: str) -> dict[str, Any]:
    """{name: body} of single-label blocks (variable, output, module)."""
    out: dict[str, Any] = {}
    for item in doc.get(block_type, []):
        for name, body in item.items():
            assert name not in out, f"duplicate {block_type} {name!r}"
            out[name] = body
    return out


def resources(doc: dict[str, list[Any]]) -> dict[tuple[str, str], Any]:
    """{(type, name): body} of resource blocks."""
    out: dict[tuple[str, str], Any] = {}
    for item in doc.get("resource", []):
        for rtype, by_name in item.items():
            for rname, body in by_name.items():
                out[(rtype, rname)] = body
    return out


def of_type(doc: dict[str, list[Any]], rtype: str) -> list[Any]:
    return [body for (t, _), body in resources(doc).items() if t == rtype]


def locals_of(doc: dict[str, list[Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in doc.get("locals", []):
        merged.update(item)
    return merged


def strings(node: Any) -> Iterator[str]:
    """Every string anywhere in a parsed structure (expressions are strings)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def env_doc(env: str) -> dict[str, list[Any]]:
    return load_dir(INFRA / "environments" / env)


def module_calls(env: str) -> dict[str, tuple[Any, Path]]:
    """{call name: (arguments, module directory)} of an environment's local module calls."""
    env_dir = INFRA / "environments" / env
    return {
        name: (body, (env_dir / body["source"]).resolve())
        for name, body in named(env_doc(env), "module").items()
    }


def module_dirs() -> list[Path]:
    return sorted(p for p in MODULES.iterdir() if p.is_dir())
