"""Metadata that the UI renders as Markdown shows a learner's text as text."""

from __future__ import annotations

import pandas as pd

from engagement_assets.platform.metadata import counts_table, markdown_text, preview

FORGED = "a | b ![x](http://evil/x.png) [click](http://evil) <img src=x> **bold** `code` ~~gone~~\nnext | row"


def test_text_cannot_end_a_cell_or_make_a_link_image_or_html():
    text = markdown_text(FORGED)
    assert "\n" not in text
    for raw in ("|", "[", "]", "<", ">", "`", "!"):
        assert all(text[i - 1] == "\\" for i, char in enumerate(text) if char == raw), raw


def test_a_preview_keeps_its_columns_whatever_the_text_and_numbers_as_they_are():
    shown = preview(pd.DataFrame({"response_text": [FORGED, "fine"], "accuracy": [12.5, -3.0]})).value
    lines = shown.splitlines()
    assert len(lines) == 4  # header, rule, two rows: the text's newline and pipes made none of their own
    assert all(line.replace("\\|", "").count("|") == 3 for line in lines)
    assert "12.5" in shown and "-3" in shown and "](http" not in shown.replace("\\](http", "")


def test_count_tables_escape_their_labels_and_keep_identifiers_as_written():
    table = counts_table({FORGED: 2, "not_english": 1}).value
    assert "| not_english | 1 |" in table
    assert all(line.replace("\\|", "").count("|") == 3 for line in table.splitlines())
