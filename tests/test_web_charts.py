"""SVG charts: valid XML, one shape per datum, escaped labels, empty and single-point input, size."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from markupsafe import Markup

from web import charts

NS = "{http://www.w3.org/2000/svg}"
NASTY = "<script>alert(1)</script> \"&'"
# The agenda's own labels and one more: the size tests must not pass on short made-up names.
LABELS = {f"topic-{i}": label for i, label in enumerate([
    "Internet governance history and review",
    "The ITU and the International Telecommunication Regulations",
    "Declarations of Internet rights and governance principles",
    "Enhanced cooperation on Internet public policy",
    "Drafting the civil society statement to WCIT",
    "Drafting civil society Internet governance principles for the IGF",
    "Next steps for a sustainable civil society network",
    "Meeting logistics and participation",
    "Funding and governance of the coalition's secretariat",
])}


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == NS + "svg"
    return root


def mondays(count: int, start: date = date(2012, 10, 1)) -> list[str]:
    return [(start + timedelta(weeks=i)).isoformat() for i in range(count)]


def check_accessible(root: ET.Element, title: str) -> None:
    """role=img, and aria-labelledby names the chart's own <title> and <desc>."""
    assert root.get("role") == "img" and root.get("class") == "chart"
    first, second = root.get("aria-labelledby").split()
    assert root.find(NS + "title").get("id") == first
    assert root.find(NS + "title").text == title
    assert root.find(NS + "desc").get("id") == second
    assert root.find(NS + "desc").text


def tooltips(root: ET.Element) -> list[str]:
    """The tooltips of the chart's shapes (not the chart's own title)."""
    return [t.text for shape in root.iter(NS + "path") for t in shape.findall(NS + "title")]


def weekly_data(weeks: int, topics: int = 9) -> tuple[list[str], dict, dict]:
    days = mondays(weeks)
    series = {slug: {w: 3 + (i * 7 + j * 5) % 40 for j, w in enumerate(days)}
              for i, slug in enumerate(list(LABELS)[:topics])}
    totals = {w: 400 for w in days}
    return days, series, totals


# --- bars ------------------------------------------------------------------------------------
def test_bars_draw_one_bar_with_a_tooltip_per_item():
    items = [(f"Person {i}", 100 - i) for i in range(20)]
    root = parse(charts.bars(items, "Most active participants"))
    check_accessible(root, "Most active participants")
    tips = tooltips(root)
    assert len(tips) == 20
    assert tips[0] == "Person 0: 100 messages"
    assert "Person 0, 100 messages" in root.find(NS + "desc").text


def test_bars_escape_labels_from_mail():
    svg = charts.bars([(NASTY, 3), ("plain", 1)], f"Top {NASTY}")
    assert "<script" not in str(svg)
    root = parse(svg)
    assert root.find(NS + "title").text == f"Top {NASTY}"
    assert tooltips(root)[0] == f"{NASTY}: 3 messages"
    texts = [t.text for t in root.iter(NS + "text")]
    assert any(t and t.startswith("<script>") for t in texts)   # drawn as text, not markup


def test_bars_keep_the_xml_valid_with_control_characters():
    root = parse(charts.bars([("Bad\x00name\x1b", 2)], "Top"))
    assert tooltips(root) == ["Bad\ufffdname\ufffd: 2 messages"]


def test_bars_of_nothing_say_so():
    root = parse(charts.bars([], "Most active participants"))
    check_accessible(root, "Most active participants")
    assert root.find(NS + "desc").text == "No data."
    assert not tooltips(root)


def test_a_long_label_is_shortened_but_its_tooltip_is_whole():
    name = "A very long participant name " * 4
    root = parse(charts.bars([(name, 5)], "Top"))
    assert tooltips(root) == [f"{name}: 5 messages"]
    drawn = [t.text for t in root.iter(NS + "text") if t.text and t.text.startswith("A very")]
    assert drawn[0].endswith("…") and len(drawn[0]) < len(name)


# --- weekly ----------------------------------------------------------------------------------
def test_weekly_stacks_a_column_per_week_with_its_numbers():
    days, series, totals = weekly_data(16)
    root = parse(charts.weekly(days, series, LABELS, "Messages per week", totals=totals))
    check_accessible(root, "Messages per week")
    tips = tooltips(root)
    assert len(tips) == 16                      # one tooltip per column
    first = tips[0].split("\n")
    assert first[0] == "2012-10-01: 400 messages"
    # Top of the stack first: the remainder, then the topics in reverse order.
    assert first[1].startswith("Other messages")
    assert first[-1] == f"{LABELS['topic-0']}: {series['topic-0']['2012-10-01']}"
    # One path per series, one subpath per non-empty column.
    filled = [p for p in root.iter(NS + "path") if p.get("fill", "").startswith("#")
              and p.get("fill") != "#000"]
    assert len(filled) == 10
    assert all(p.get("d").count("M") == 16 for p in filled)
    legend = [t.text for t in root.iter(NS + "text")]
    assert all(label in legend for label in LABELS.values())


def test_weekly_remainder_is_the_total_less_the_topic_counts():
    days = mondays(2)
    data = charts.weekly_rows(days, {"a": {days[0]: 3}, "b": {days[0]: 2, days[1]: 9}},
                              {"a": "A", "b": "B"}, {days[0]: 10, days[1]: 5})
    assert [(r["period"], r["counts"], r["rest"], r["total"]) for r in data["rows"]] == [
        (days[0], [3, 2], 5, 10), (days[1], [0, 9], 0, 5)]
    assert data["series"] == [("a", "A"), ("b", "B")]


def test_weekly_of_sixteen_weeks_and_nine_topics_is_well_under_20_kb():
    days, series, totals = weekly_data(16)
    svg = charts.weekly(days, series, LABELS, "Messages per week by agenda topic", totals=totals)
    assert len(str(svg).encode()) < 16_000
    longer = {slug: label + " (and a further qualification)" for slug, label in LABELS.items()}
    assert len(str(charts.weekly(days, series, longer, "Weekly", totals=totals)).encode()) < 20_000


def test_weekly_axis_labels_ticks_and_gaps():
    days = mondays(12)
    sparse = [days[0], days[11]]                 # nine quiet weeks between
    root = parse(charts.weekly(sparse, {"a": {days[0]: 12, days[11]: 47}}, {"a": "A"}, "Weekly"))
    texts = [t.text for t in root.iter(NS + "text")]
    assert "50" in texts and "0" in texts         # the y-axis maximum, rounded up
    assert "Oct 2012" in texts and "Nov" in texts and "Dec" in texts
    tips = tooltips(root)
    assert len(tips) == 12                        # the quiet weeks keep their place
    assert tips[5] == f"{days[5]}: 0 messages"


def test_weekly_over_many_weeks_is_drawn_by_month():
    days, series, totals = weekly_data(292, topics=8)
    data = charts.weekly_rows(days, series, LABELS, totals)
    assert data["unit"] == "month" and data["rows"][0]["period"] == "2012-10"
    assert sum(r["total"] for r in data["rows"]) == sum(totals.values())
    root = parse(charts.weekly(days, series, LABELS, "Weekly", totals=totals))
    assert len(tooltips(root)) == len(data["rows"])
    assert "month" in root.find(NS + "desc").text
    # 67 months of nine topics: the labels repeat in each column's tooltip.
    assert len(str(charts.weekly(days, series, LABELS, "Weekly", totals=totals)).encode()) < 64_000


def test_weekly_escapes_topic_labels():
    days = mondays(2)
    svg = charts.weekly(days, {"x": {days[0]: 1}}, {"x": NASTY}, "Weekly")
    assert "<script" not in str(svg)
    root = parse(svg)
    assert f"{NASTY}: 1" in tooltips(root)[0].split("\n")
    assert NASTY in [t.text for t in root.iter(NS + "text")]


def test_weekly_of_nothing_and_of_one_week():
    assert parse(charts.weekly([], {}, LABELS, "Weekly")).find(NS + "desc").text == "No data."
    assert parse(charts.weekly(mondays(3), {}, LABELS, "Weekly",
                               totals={w: 0 for w in mondays(3)})).find(NS + "desc").text == "No data."
    root = parse(charts.weekly(["2012-10-08"], {"topic-1": {"2012-10-08": 5}}, LABELS, "One"))
    assert tooltips(root) == [f"2012-10-08: 5 messages\n{LABELS['topic-1']}: 5"]
    column = next(p for p in root.iter(NS + "path") if p.get("fill") == charts.PALETTE[0])
    assert "h48v" in column.get("d")              # one column does not fill the whole plot


def test_an_untagged_series_is_grey():
    days = mondays(2)
    root = parse(charts.weekly(days, {"a": {days[0]: 2}, "untagged": {days[0]: 1}},
                               {"a": "A", "untagged": "No topic"}, "Weekly"))
    fills = {p.get("fill") for p in root.iter(NS + "path")}
    assert charts.REST in fills and charts.PALETTE[0] in fills


# --- sparkline -------------------------------------------------------------------------------
def test_sparkline_has_a_column_per_active_week():
    weeks = [{"week": w, "messages": i % 3} for i, w in enumerate(mondays(12))]
    root = parse(charts.sparkline(weeks, "Messages per week on WCIT"))
    check_accessible(root, "Messages per week on WCIT")
    tips = tooltips(root)
    assert len(tips) == 8                         # weeks with no message draw nothing
    assert tips[0] == "2012-10-08: 1 message"
    assert len(str(charts.sparkline(weeks, "x")).encode()) < 3_000


def test_sparkline_of_nothing_and_of_one_week():
    assert parse(charts.sparkline([], "Quiet")).find(NS + "desc").text == "No data."
    root = parse(charts.sparkline([{"week": "2012-10-08", "messages": 4}], "One"))
    assert tooltips(root) == ["2012-10-08: 4 messages"]


def test_sparkline_of_years_is_drawn_by_month_and_stays_small():
    weeks = [{"week": w, "messages": 5} for w in mondays(292)]
    svg = charts.sparkline(weeks, "Busy")
    root = parse(svg)
    assert tooltips(root)[0] == "2012-10: 25 messages"   # five Mondays in October 2012
    assert len(str(svg).encode()) < 8_000


# --- shared ----------------------------------------------------------------------------------
def test_charts_are_deterministic_and_their_ids_differ():
    days, series, totals = weekly_data(4)
    one = charts.weekly(days, series, LABELS, "Weekly", totals=totals)
    assert one == charts.weekly(days, series, LABELS, "Weekly", totals=totals)   # stable ETags
    ids = {parse(svg).find(NS + "title").get("id") for svg in (
        one, charts.bars([("a", 1)], "Top"), charts.sparkline([{"week": days[0], "messages": 1}], "S"))}
    assert len(ids) == 3


def test_periods_fill_the_span_with_mondays():
    unit, columns = charts.periods(["2012-10-03", "2012-10-22"])   # a Wednesday is its Monday
    assert unit == "week"
    assert [label for label, _ in columns] == ["2012-10-01", "2012-10-08", "2012-10-15", "2012-10-22"]
