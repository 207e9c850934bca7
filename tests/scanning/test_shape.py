"""How much of a text is code, and how many rows of data it holds."""

from __future__ import annotations

import orjson

from cerberus.scanning.shape import code_chars, json_rows, table_rows

PYTHON = "def add(a, b):\n    total = a + b\n    return total\n\nclass Box:\n    pass\n"
JS = "function f(x) {\n  const y = x * 2;\n  return y;\n}\n"


def test_code_lines_in_runs_are_counted() -> None:
    assert code_chars(JS) == len(JS)
    assert code_chars(PYTHON) > 0


def test_fenced_blocks_count_whole() -> None:
    text = "Here is the fix:\n```\nx = 1\nprint(x)\n```\nThanks."
    assert code_chars(text) == len("x = 1\nprint(x)\n")


def test_prose_with_punctuation_is_not_code() -> None:
    prose = (
        "The meeting is at noon; bring the report.\n"
        "We discussed costs, timelines and risks.\n"
        "Next steps: review the draft -> send it to legal.\n"
    )
    assert code_chars(prose) == 0


def test_limit_stops_counting_early_but_still_exceeds() -> None:
    assert code_chars(JS * 10_000, limit=100) > 100


def test_csv_markdown_html_and_json_rows() -> None:
    csv = "id,name,email\n" + "".join(f"{i},n{i},e{i}\n" for i in range(50))
    assert table_rows(csv) == 51
    markdown = "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 20
    assert table_rows(markdown) == 22
    html = "<table>" + "<tr><td>1</td></tr>" * 30 + "</table>"
    assert table_rows(html) == 30
    records = orjson.dumps([{"id": i} for i in range(40)]).decode()
    assert table_rows(records) == 40
    assert json_rows({"page": 1, "items": [[1], [2], [3]]}) == 3


def test_prose_is_not_a_table() -> None:
    text = "Dear team,\nthe launch moved to Monday.\nRegards, Ana"
    assert table_rows(text) <= 2
