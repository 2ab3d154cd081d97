"""Month and week keys and date orderings give the same answers in SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, func, insert, select

from archiver.sqltime import by_date, by_date_desc, month_key, week_key
from conftest import BACKENDS

table = Table("moments", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime))

DATES = {
    1: datetime(2012, 1, 1, 23, 59),     # a Sunday: its week began on Monday 2011-12-26
    2: datetime(2012, 1, 2, 0, 0),       # Monday midnight begins a week
    3: datetime(2012, 10, 7, 12, 0),     # Sunday
    4: datetime(2012, 12, 31, 8, 30),    # a Monday in the year's last days
    5: None,                             # undated
    6: datetime(2012, 10, 3, 9, 0),      # Wednesday
}


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def engine(store):
    table.create(store.engine)
    with store.engine.begin() as conn:
        conn.execute(insert(table), [{"id": k, "at": v} for k, v in DATES.items()])
    yield store.engine
    table.drop(store.engine)


def test_month_and_week_keys(engine):
    c = table.c
    with engine.connect() as conn:
        found = {pk: (mo, wk) for pk, mo, wk in conn.execute(select(c.id, month_key(c.at), week_key(c.at)))}
    assert found == {1: ("2012-01", "2011-12-26"), 2: ("2012-01", "2012-01-02"),
                     3: ("2012-10", "2012-10-01"), 4: ("2012-12", "2012-12-31"),
                     5: (None, None), 6: ("2012-10", "2012-10-01")}


def test_keys_group_and_order(engine):
    c = table.c
    week = week_key(c.at)
    with engine.connect() as conn:
        rows = conn.execute(select(week, func.count()).where(c.at.is_not(None))
                            .group_by(week).order_by(week.desc())).all()
    assert [tuple(r) for r in rows] == [("2012-12-31", 1), ("2012-10-01", 2), ("2012-01-02", 1),
                                        ("2011-12-26", 1)]


def test_undated_rows_come_first_going_up_and_last_going_down(engine):
    c = table.c
    with engine.connect() as conn:
        up = list(conn.execute(select(c.id).order_by(by_date(c.at), c.id)).scalars())
        down = list(conn.execute(select(c.id).order_by(by_date_desc(c.at), c.id)).scalars())
    assert up == [5, 1, 2, 6, 3, 4]
    assert down == [4, 3, 6, 2, 1, 5]
