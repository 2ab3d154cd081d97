"""The query language's checks and dates (archiver.querylang): prepare() and date_range()."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.errors import QueryError
from archiver.querylang import FIELDS, MAX_QUERY, Parsed, date_range, prepare

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- prepare: what passes, and what is left for the full-text parser -----------------------

def test_plain_words_pass_through_unchanged():
    assert prepare("  wcit statement  ") == Parsed(text="wcit statement")


@pytest.mark.parametrize("query", [
    '"national delegations"', "itu OR itrs", "wcit AND NOT dubai", "(visa OR hotel) baku",
    "from:joao", "from:jane@civil.example", 'org:"Open Voice"', "subject:baku", "topic:itu-itrs",
    "list:governance", "lang:fr", 'quoted:"Marco Civil"', "polic*",
])
def test_every_documented_form_is_accepted_and_kept(query):
    parsed = prepare(query)
    assert parsed.text == query
    assert parsed.start is None and parsed.end is None


@pytest.mark.parametrize("field", FIELDS)
def test_each_known_field_is_accepted(field):
    value = "2012-11" if field == "date" else "x"
    prepare(f"{field}:{value}")


def test_date_is_taken_out_of_the_text():
    parsed = prepare("baku date:2012-11 visa")
    assert parsed.text.split() == ["baku", "visa"]
    assert (parsed.start, parsed.end) == (utc(2012, 11, 1), utc(2012, 12, 1))


def test_a_date_alone_leaves_no_text():
    parsed = prepare("date:2012-11-04")
    assert parsed.text == ""
    assert (parsed.start, parsed.end) == (utc(2012, 11, 4), utc(2012, 11, 5))


def test_two_dates_intersect():
    parsed = prepare("date:2012-11 date:2012-11-03..2012-12-20")
    assert (parsed.start, parsed.end) == (utc(2012, 11, 3), utc(2012, 12, 1))


def test_open_ranges_combine_into_one_range():
    parsed = prepare("date:2012-10.. date:..2012-11")
    assert (parsed.start, parsed.end) == (utc(2012, 10, 1), utc(2012, 12, 1))


def test_dates_that_exclude_each_other_are_an_error():
    with pytest.raises(QueryError, match="exclude each other"):
        prepare("date:2012-10 date:2012-12")


def test_a_date_inside_a_phrase_is_not_a_filter():
    # The quotes make it words: no date range, no field check.
    parsed = prepare('"date:2012-11"')
    assert parsed.start is None and parsed.end is None


@pytest.mark.parametrize("query, fragment", [
    ("", "empty"),
    ("   \t ", "empty"),
    (None, "empty"),
    ("x" * (MAX_QUERY + 1), f"{MAX_QUERY + 1} characters long; the limit is {MAX_QUERY}"),
    ('baku "visa', "quotation mark is not closed"),
    ('"baku" "visa', "quotation mark is not closed"),
    ("(visa OR hotel baku", "'(' is not closed"),
    ("((visa) baku", "'(' is not closed"),
    ("visa) baku", "')' has no opening"),
    (")visa( baku", "')' has no opening"),
    ("title:baku", "unknown field 'title:'"),
    ("baku author:joao", "unknown field 'author:'"),
    ("date:2012-13", "'2012-13' is not a date"),
    ("date:2012-00", "'2012-00' is not a date"),
    ("date:2011-02-29", "'2011-02-29' is not a date"),
    ("date:2012-11-31", "'2012-11-31' is not a date"),
    ("date:foo", "'foo' is not a date"),
    ("date:", "is not a date"),
    ("date:..", "needs at least one end"),
    ("date:2012/11", "'2012/11' is not a date"),
    ("date:2012-12..2012-10", "exclude each other"),
])
def test_bad_queries_say_what_is_wrong(query, fragment):
    with pytest.raises(QueryError) as info:
        prepare(query)
    assert fragment in str(info.value)


def test_the_length_limit_is_inclusive():
    assert prepare("x" * MAX_QUERY).text == "x" * MAX_QUERY


def test_the_limit_counts_the_stripped_query():
    assert prepare("  " + "x" * MAX_QUERY + "  ").text == "x" * MAX_QUERY


def test_unknown_field_message_lists_the_fields_and_the_way_out():
    with pytest.raises(QueryError) as info:
        prepare("title:baku")
    message = str(info.value)
    assert all(f"{field}:" in message for field in FIELDS)
    assert "quotes" in message


@pytest.mark.parametrize("query", [
    '"(" baku', '")" baku', '"title: the word" baku', '"a ( b" (c)', 'baku "visa"',
])
def test_quoted_text_is_not_checked_for_parentheses_or_fields(query):
    assert prepare(query).text == query


def test_a_colon_after_digits_is_not_a_field():
    # 12:30 is a time, not a field called "12".
    assert prepare("meeting 12:30").text == "meeting 12:30"


# --- date_range ----------------------------------------------------------------------------

@pytest.mark.parametrize("value, start, end", [
    ("2012", utc(2012, 1, 1), utc(2013, 1, 1)),
    ("2012-11", utc(2012, 11, 1), utc(2012, 12, 1)),
    ("2012-1", utc(2012, 1, 1), utc(2012, 2, 1)),
    ("2012-12", utc(2012, 12, 1), utc(2013, 1, 1)),          # December -> January
    ("2012-11-04", utc(2012, 11, 4), utc(2012, 11, 5)),
    ("2012-11-4", utc(2012, 11, 4), utc(2012, 11, 5)),
    ("2012-12-31", utc(2012, 12, 31), utc(2013, 1, 1)),      # the year's last day
    ("2012-02", utc(2012, 2, 1), utc(2012, 3, 1)),
    ("2012-02-29", utc(2012, 2, 29), utc(2012, 3, 1)),       # leap day
    ("2000-02-29", utc(2000, 2, 29), utc(2000, 3, 1)),       # leap century
    ("2012-10-01..2012-11-15", utc(2012, 10, 1), utc(2012, 11, 16)),  # end day included
    ("2012-10..2012-11", utc(2012, 10, 1), utc(2012, 12, 1)),
    ("2012-11..", utc(2012, 11, 1), None),
    ("..2012-10", None, utc(2012, 11, 1)),
    ("..2012-12", None, utc(2013, 1, 1)),
    ("2012-11-04..2012-11-04", utc(2012, 11, 4), utc(2012, 11, 5)),
])
def test_date_range(value, start, end):
    assert date_range(value) == (start, end)


def test_ranges_are_in_utc():
    for bound in date_range("2012-10-01..2012-11-15"):
        assert bound.tzinfo is not None and bound.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [
    "2011-02-29", "1900-02-29", "2012-13", "2012-0", "2012-04-31", "2012-11-00", "12-11",
    "2012-11-04T10:00", "2012-011", "twenty", "", "2012-11..2012-13", "2012-13..",
])
def test_invalid_dates(value):
    with pytest.raises(QueryError, match="is not a date"):
        date_range(value)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31)))
def test_any_day_month_and_year_is_a_half_open_utc_range(day):
    start, end = date_range(day.isoformat())
    assert start == datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    m_start, m_end = date_range(f"{day.year}-{day.month:02d}")
    assert m_start <= start < end <= m_end            # the day lies in its month
    assert m_end.day == 1 and (m_end - timedelta(days=1)).month == day.month
    y_start, y_end = date_range(str(day.year))
    assert y_start <= m_start < m_end <= y_end
    assert date_range(f"{day.isoformat()}..") == (start, None)
    assert date_range(f"..{day.isoformat()}") == (None, end)
