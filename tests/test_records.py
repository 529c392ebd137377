"""Records files: the shipped data, and every kind of bad file."""

from __future__ import annotations

import json

import pytest

from labkit import RecordsError, load_records
from labkit.records import generate_records, iter_records, write_records


def test_the_shipped_file_has_100_unique_invented_records(records):
    assert len(records) == 100
    assert len({r.id for r in records}) == 100
    assert all(r.email.endswith("@example.com") for r in records)
    assert all(r.note.strip() for r in records)


def test_generated_records_are_the_same_for_a_seed(tmp_path):
    path = tmp_path / "big.jsonl"
    write_records(generate_records(500, seed=3), path)
    assert load_records(path) == list(generate_records(500, seed=3))
    assert list(generate_records(5, seed=3)) != list(generate_records(5, seed=4))


@pytest.mark.parametrize(
    ("lines", "where", "words"),
    [
        (['{"id": "a", "note": "x"}', "not json"], ":2:", "not valid JSON"),
        (['["a", "b"]'], ":1:", "expected a JSON object, got list"),
        (['{"note": "x"}'], ":1:", "field 'id' must be a non-empty string"),
        (['{"id": "a", "note": ""}'], ":1:", "field 'note'"),
        (['{"id": 7, "note": "x"}'], ":1:", "field 'id'"),
        (['{"id": "a", "note": "x"}', "", '{"id": "a", "note": "y"}'], ":3:",
         "duplicate id 'a'"),
        (['{"id": "CR-\\ud83d", "note": "x"}'], ":1:", "not valid Unicode text"),
        (['{"id": "a", "note": "cut \\udc00"}'], ":1:", "field 'note' is not valid"),
        (["[" * 5000 + "]" * 5000], ":1:", "nested too deeply"),
        (['{"id": "a", "note": "x", "n": ' + "9" * 5000 + "}"], ":1:",
         "not usable JSON"),
    ],
)
def test_a_bad_line_is_refused_naming_file_and_line(tmp_path, lines, where, words):
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordsError) as caught:
        load_records(path)
    assert f"{path}{where}" in str(caught.value)
    assert words in str(caught.value)


def test_a_binary_line_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"id": "a", "note": "x"}\n\xff\xfe\x00garbage\n')
    with pytest.raises(RecordsError, match=r":2: not UTF-8 text"):
        load_records(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a", "note": "x"}\r\n')
    assert [r.id for r in load_records(path)] == ["a"]


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(RecordsError, match="no records"):
        load_records(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(RecordsError, match="cannot read"):
        load_records(tmp_path / "nowhere.jsonl")


def test_records_stream_lazily(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "a", "note": "x"}) + "\nbroken\n")
    stream = iter_records(path)
    assert next(stream).id == "a"  # the bad line is only read when reached
    with pytest.raises(RecordsError, match=":2:"):
        next(stream)
