"""The table of references (bids_stroke.citations): complete entries, rendered the same way
as text and as BibTeX."""

from __future__ import annotations

import re

import pytest

from bids_stroke.citations import BIBLIOGRAPHY, CITATIONS, author_year, bibtex

#: Fields BibTeX needs for each entry type the table uses (beside author, title and year).
VENUE_FIELD = {"article": "journal", "inproceedings": "booktitle", "misc": "howpublished"}

_ENTRY = re.compile(r"@(\w+)\{([\w-]+),\n((?:  \w+ = \{.*\},?\n)+)\}\n")
_FIELD = re.compile(r"^  (\w+) = \{(.*)\},?$", flags=re.MULTILINE)


def parse_bibtex(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Key -> (entry type, field -> value) of BibTeX entries written one field a line."""
    entries = {}
    for kind, key, body in _ENTRY.findall(text):
        assert key not in entries, f"{key} twice"
        entries[key] = (kind, dict(_FIELD.findall(body)))
    return entries


@pytest.mark.parametrize("key", list(BIBLIOGRAPHY))
def test_every_reference_is_a_complete_bibtex_entry(key):
    text = bibtex(key)
    (parsed_key, (kind, fields)), = parse_bibtex(text).items()
    reference = BIBLIOGRAPHY[key]
    assert parsed_key == key and kind == reference["kind"]
    for name in ("author", "title", "year", VENUE_FIELD[kind]):
        assert fields.get(name), f"{key}: no {name}"
    assert fields["year"] == str(reference["year"]) and fields["title"] == "{" + reference["title"] + "}"
    assert fields["author"].split(",")[0] == reference["authors"][0].rpartition(" ")[0]
    if reference.get("doi"):
        assert re.fullmatch(r"10\.\d{4,9}/\S+", reference["doi"]) and fields["doi"] == reference["doi"]
    for name in ("volume", "number", "pages"):
        assert fields.get(name) == reference.get(name)
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize("key", list(BIBLIOGRAPHY))
def test_text_citations_render_the_same_fields(key):
    reference, text = BIBLIOGRAPHY[key], CITATIONS[key]
    assert text.startswith(reference["authors"][0]) and reference["title"] in text
    assert str(reference["year"]) in text and author_year(key).endswith(f", {reference['year']}")
    assert author_year(key).startswith(reference["authors"][0].rpartition(" ")[0])
    for name in ("volume", "pages", "doi", "note"):
        if reference.get(name):
            assert reference[name] in text, f"{key}: {name}"


def test_the_parser_sees_a_broken_entry():
    """The check above reads what BibTeX would: an entry without a closing brace is lost."""
    broken = bibtex("delong").rstrip("}\n") + "\n"
    assert parse_bibtex(broken) == {} and list(parse_bibtex(bibtex("delong"))) == ["delong"]
