# ruff: noqa: T201
"""Counts prompt-injection hits in ordinary technical prose: every docstring of the Python
standard library and the installed packages (text written for readers, not models).

Usage: `.venv/bin/python scripts/injection_false_positives.py`; docs/guardrails.md quotes it.
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

from cerberus.scanning import scanner


def docstrings() -> list[tuple[Path, str]]:
    roots = [
        Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    ]
    roots += [Path(p) for p in sys.path if p.endswith("site-packages")]
    found: list[tuple[Path, str]] = []
    for root in roots:
        for path in root.rglob("*.py"):
            try:
                tree = ast.parse(path.read_text(errors="ignore"))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(
                    node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
                ):
                    doc = ast.get_docstring(node)
                    if doc:
                        found.append((path, doc))
    return found


def main() -> None:
    compiled = scanner(["prompt_injection"])
    texts = docstrings()
    flagged = 0
    kinds: collections.Counter[str] = collections.Counter()
    for path, doc in texts:
        data = doc.encode()
        hits = compiled.scan(data)
        flagged += bool(hits)
        for hit in hits:
            kinds[hit.detector] += 1
            context = data[max(0, hit.start - 40) : hit.end + 40].decode(errors="replace")
            print(f"{hit.detector}: {path.name}: {' '.join(context.split())}")
    size = sum(len(doc) for _, doc in texts) / 1e6
    print(f"{len(texts)} docstrings ({size:.1f} M characters): {flagged} flagged {dict(kinds)}")


if __name__ == "__main__":
    main()
