"""Result tables as text: CSV with a header, Markdown tables, and mean ± sd over seeds."""

from __future__ import annotations

import csv
import io

import pytest

from cifarlab.tables import csv_rows_text, csv_text, markdown_table, mean_sd, mean_sd_cell


def test_csv_text_writes_columns_in_order_none_empty_and_extra_keys_ignored():
    text = csv_text([{"b": 2, "a": None, "extra": 9}, {"a": "x,y"}], ["a", "b"])
    assert text == 'a,b\r\n,2\r\n"x,y",\r\n'


def test_csv_rows_text_writes_list_rows_under_a_header_with_newline_line_ends():
    text = csv_rows_text(["true\\pred", "cat", 'a"b'], [["cat", 5, None], ("dog, big", 1, 2)])
    assert text == 'true\\pred,cat,"a""b"\ncat,5,\n"dog, big",1,2\n'
    assert list(csv.reader(io.StringIO(text)))[2] == ["dog, big", "1", "2"]


def test_csv_rows_text_of_no_rows_is_the_header_alone():
    assert csv_rows_text(("id", "label"), []) == "id,label\n"


def test_markdown_table_has_heading_separator_and_one_line_per_row():
    assert markdown_table(["a", "b"], [["1", "2"], [3, 4.5]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4.5 |\n"


def test_markdown_table_without_rows_is_heading_and_separator():
    assert markdown_table(["only"], []) == "| only |\n|---|\n"


def test_markdown_table_writes_pipes_in_cells_as_given():
    # No escaping: existing reports write class and run names unchanged.
    assert markdown_table(["name"], [["b|c"]]).splitlines()[2] == "| b|c |"


def test_markdown_none_cell_is_bare_and_empty_string_is_padded():
    table = markdown_table([None, None], [["ECE", None], ["tuned", ""]])
    assert table.splitlines() == ["| | |", "|---|---|", "| ECE | |", "| tuned |  |"]


def test_markdown_alignment_per_column_and_default_for_the_rest():
    table = markdown_table(["m", "r", "c", "l", "x"], [], align=[None, "right", "center", "left"])
    assert table.splitlines()[1] == "|---|---:|:---:|:---|---|"


def test_markdown_alignment_of_an_unknown_name_is_refused():
    with pytest.raises(KeyError):
        markdown_table(["a"], [], align=["middle"])


def test_mean_sd_of_an_empty_list_is_none_none():
    assert mean_sd([]) == (None, None)


def test_mean_sd_of_only_missing_values_is_none_none():
    assert mean_sd([None, ""]) == (None, None)


def test_mean_sd_of_one_value_has_no_sd():
    assert mean_sd([2]) == (2.0, None)


def test_mean_sd_is_the_sample_sd_of_the_values_present():
    mean, sd = mean_sd([1, None, "3", "", 5.0])
    assert mean == pytest.approx(3.0)
    assert sd == pytest.approx(2.0)  # sample (n - 1) standard deviation of 1, 3, 5


def test_mean_sd_cell_formats_mean_and_sd_with_the_same_decimals():
    assert mean_sd_cell(93.456, 0.1234, 2) == "93.46 ± 0.12"
    assert mean_sd_cell(12.0, None, 1) == "12.0"
    assert mean_sd_cell(None, 0.5, 2) == "-"
