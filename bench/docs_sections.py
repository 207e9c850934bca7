"""Fill the generated tables of docs/benchmarks.md from one results file.

The page's prose is written by hand; its tables come from the run it describes, pasted
between markers so a new run replaces them without touching the text around them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import orjson

from bench import report

DOC = Path(__file__).parent.parent / "docs" / "benchmarks.md"
RESULTS = Path(__file__).parent / "results"


def replace(text: str, name: str, content: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"docs/benchmarks.md has no {begin} ... {end} section")
    return pattern.sub(lambda _: f"{begin}\n{content.strip()}\n{end}", text)


def experiments_table(path: Path) -> str:
    if not path.exists():
        return "(not run)"
    data = orjson.loads(path.read_bytes())
    lines = [
        "| variant | c=1 req/s | c=1 p50 ms | c=1 CPU ms/req | c=32 req/s | c=32 CPU ms/req "
        "| RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in data["variants"].items():
        one, many = m["c1"], m["c32"]
        lines.append(
            f"| {name} | {one['rps']:.0f} | {one['p50_ms']:.2f} | {one['gateway_cpu_ms']:.3f} "
            f"| {many['rps']:.0f} | {many['gateway_cpu_ms']:.3f} | {m.get('rss_mib', '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="?", default=str(RESULTS / "latest.json"))
    args = parser.parse_args()
    results = orjson.loads(Path(args.results).read_bytes())
    full = report.render(results).split("\n", 1)[1]  # without its title
    full = re.sub(r"^## ", "### ", full, flags=re.M)
    text = DOC.read_text()
    text = replace(text, "summary", report.compact(results))
    text = replace(text, "experiments", experiments_table(RESULTS / "experiments.json"))
    text = replace(text, "full-report", full)
    DOC.write_text(text)


if __name__ == "__main__":
    main()
