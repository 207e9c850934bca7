#!/usr/bin/env python3
"""Print checkov's JSON result briefly; fail on parsing errors, which checkov itself ignores."""

# ruff: noqa: T201  (a command-line check reports by printing)

import json
import sys

with open(sys.argv[1]) as handle:
    data = json.load(handle)
reports = data if isinstance(data, list) else [data]
bad = 0
for report in reports:
    summary = report.get("summary", {})
    print(report.get("check_type"), summary)
    for failed in report.get("results", {}).get("failed_checks", []):
        print(f"  {failed['check_id']} {failed['resource']} {failed['file_path']}")
    bad += summary.get("parsing_errors", 0)
sys.exit(1 if bad else 0)
