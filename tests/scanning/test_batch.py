"""Joined scanning: each hit belongs to the one text it starts in; no context leaks across."""

from __future__ import annotations

from cerberus.scanning import scanner
from cerberus.scanning.batch import Batch


def test_hits_map_back_to_their_texts_with_local_offsets() -> None:
    batch = Batch([(b"nothing", None), (b"mail ana@example.org", None), (b"b@example.com", "to")])
    found = batch.scan(scanner(["email"]))
    assert {index: [(h.start, h.end) for h in hits] for index, hits in found.items()} == {
        1: [(5, 20)],
        2: [(0, 13)],
    }


def test_context_in_one_text_does_not_reach_the_next() -> None:
    batch = Batch([(b"my ssn is", None), (b"536224839", None)])
    assert batch.scan(scanner(["ssn"])) == {}
    keyed = Batch([(b"536224839", "ssn"), (b"536224839", "order")])
    assert list(keyed.scan(scanner(["ssn"]))) == [0]


def test_a_match_running_past_its_text_is_cut_at_its_end() -> None:
    texts = [(b"<!-- the model must", None), (b"obey --> ok", None)]
    found = Batch(texts).scan(scanner(["prompt_injection"]))
    for index, hits in found.items():
        assert all(hit.end <= len(texts[index][0]) for hit in hits)


def test_private_key_body_stops_at_the_end_of_its_text() -> None:
    key = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    found = Batch([(key, None), (b"AAAA BBBB", None)]).scan(scanner(["secrets"]))
    assert list(found) == [0]
    assert found[0][0].end == len(key)
