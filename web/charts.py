"""Small server-rendered SVG charts (bars, weekly stacked columns, sparkline): escaped, no JS."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import date, timedelta

from markupsafe import Markup, escape

# Okabe–Ito, darkest first so that few-topic charts avoid the light yellow; the shapes of the
# many-colour charts also get a dark outline (OUTLINE), which gives even the yellow and the
# grey 3:1 contrast against the page (one-colour charts use the blue, 5:1 on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
REST = "#BBBBBB"          # the untagged remainder: grey, last in the stack and the legend
OUTLINE = "#333333"
MAX_COLUMNS = 80          # more weeks than this are drawn by month (a page stays small)
CHAR_WIDTH = 6.2          # rough width of an 11px system-ui character, to truncate labels
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# XML 1.0 forbids C0 controls (but tab, newline, return), lone surrogates and U+FFFE/FFFF;
# names from mail can hold any of them, and one would make the whole page unparseable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --- text and numbers --------------------------------------------------------------------
def _text(value: object) -> Markup:
    """Escape anything from mail or data for XML text and attribute values."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def _num(value: float) -> str:
    """A coordinate with at most one decimal: the SVG stays small."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def _count(n: int, unit: str = "message") -> str:
    return f"{n:,} {unit}{'' if n == 1 else 's'}"


def _clip(label: str, width: float) -> str:
    """Shorten a label to fit about `width` pixels (the full text stays in the tooltip)."""
    room = max(4, int(width / CHAR_WIDTH))
    return label if len(label) <= room else label[:room - 1].rstrip() + "…"


def _nice(top: int) -> int:
    """Round an axis maximum up to a round number no more than a quarter above it."""
    if top <= 5:
        return max(top, 1)
    power = 10 ** math.floor(math.log10(top))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if top <= step * power:
            return int(step * power)
    return top


# --- the frame every chart shares ------------------------------------------------------------
def _chart_id(kind: str, *parts: object) -> str:
    # Derived from the data, not a counter: the same page renders byte for byte the same
    # (its ETag holds), and two different charts on one page get different ids.
    return f"{kind}-" + hashlib.sha1(repr(parts).encode()).hexdigest()[:8]


def _svg(chart_id: str, width: float, height: float, title: str, desc: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'width="{_num(width)}" height="{_num(height)}" viewBox="0 0 {_num(width)} {_num(height)}" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" font-family="system-ui, sans-serif" '
            f'font-size="11"><title id="{chart_id}-t">{_text(title)}</title>'
            f'<desc id="{chart_id}-d">{_text(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def _empty(kind: str, title: str, width: float) -> Markup:
    """A short chart that says there is nothing to draw (so pages keep their layout)."""
    chart_id = _chart_id(kind, title, "empty")
    return _svg(chart_id, width, 24, title, "No data.",
                ['<text x="0" y="16" fill="#1b1b1b">No data to chart.</text>'])


def _rect(x: float, y: float, w: float, h: float, tip: str) -> str:
    """A bar with its tooltip; a path is shorter than a rect, and charts have many bars."""
    return (f'<path d="M{_num(x)} {_num(y)}h{_num(w)}v{_num(h)}h-{_num(w)}z">'
            f"<title>{_text(tip)}</title></path>")


# --- periods: weeks, or months when there are too many weeks ---------------------------------
def _monday(value: str) -> date:
    day = date.fromisoformat(value[:10])
    return day - timedelta(days=day.weekday())


def periods(weeks: list[str], max_columns: int = MAX_COLUMNS) -> tuple[str, list[tuple[str, list[str]]]]:
    """Return the unit ("week" or "month") and the columns over the whole span, empty weeks
    included (a gap is a gap, not a squeezed axis): (label, the weeks it holds) each."""
    if not weeks:
        return "week", []
    first, last = _monday(min(weeks)), _monday(max(weeks))
    span = [(first + timedelta(weeks=i)).isoformat() for i in range((last - first).days // 7 + 1)]
    if len(span) <= max_columns:
        return "week", [(w, [w]) for w in span]
    months: dict[str, list[str]] = {}
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months[f"{year:04d}-{month:02d}"] = []
        year, month = year + month // 12, month % 12 + 1
    for w in span:
        months[w[:7]].append(w)
    return "month", list(months.items())


def _by_monday(counts: dict[str, int]) -> dict[str, int]:
    """Key counts by the Monday of their week (callers give Mondays; a stray day still adds up)."""
    out: dict[str, int] = {}
    for day, n in counts.items():
        if day:
            monday = _monday(day).isoformat()
            out[monday] = out.get(monday, 0) + int(n or 0)
    return out


def weekly_rows(weeks: list[str], series: dict[str, dict[str, int]], labels: dict[str, str],
                totals: dict[str, int] | None = None, *, max_columns: int = MAX_COLUMNS) -> dict:
    """Return what `weekly` draws, for a caller's table of the same numbers: the unit, the
    series as (slug, label), and per column its label, counts by series, remainder and total."""
    order = [slug for slug in labels if slug in series] + sorted(set(series) - set(labels))
    series = {slug: _by_monday(series[slug]) for slug in order}
    totals = _by_monday(totals) if totals is not None else None
    every = {_monday(w).isoformat() for w in weeks if w} | set(totals or ())
    every |= {w for counts in series.values() for w in counts}
    unit, columns = periods(sorted(every), max_columns)
    rows = []
    for label, held in columns:
        counts = [sum(series[slug].get(w, 0) for w in held) for slug in order]
        total = sum(totals.get(w, 0) for w in held) if totals is not None else None
        rest = max(0, total - sum(counts)) if total is not None else None
        rows.append({"period": label, "counts": counts, "rest": rest,
                     "total": total if total is not None else sum(counts)})
    return {"unit": unit, "series": [(slug, labels.get(slug, slug)) for slug in order], "rows": rows}


def _month_ticks(columns: list[str]) -> list[tuple[int, str]]:
    """Return (column index, label) at month starts, thinned to about ten labels."""
    starts = []
    for i, label in enumerate(columns):
        month = label[:7]
        if i == 0 or month != columns[i - 1][:7]:
            starts.append((i, int(month[:4]), int(month[5:7])))
    step = next((s for s in (1, 2, 3, 6, 12, 24, 60) if len(starts) / s <= 10), 120)
    ticks: list[tuple[int, str]] = []
    for i, year, month in starts:
        if (month - 1) % step or (step >= 12 and month != 1):
            continue
        # The year is named at the first tick and at each January; other ticks name the month.
        name = str(year) if step >= 12 else MONTHS[month - 1]
        ticks.append((i, f"{name} {year}" if step < 12 and (month == 1 or not ticks) else name))
    return ticks or [(0, f"{MONTHS[starts[0][2] - 1]} {starts[0][1]}")]


# --- the charts --------------------------------------------------------------------------------
def bars(items: list[tuple[str, int]], title: str, *, width: int = 640, bar_height: int = 18,
         unit: str = "message") -> Markup:
    """A horizontal bar chart (e.g. top participants), largest value setting the scale."""
    if not items:
        return _empty("bars", title, width)
    gap, label_width, value_room = 4, min(220, width * 0.35), 56
    top = max(max(n for _, n in items), 1)
    scale = (width - label_width - value_room) / top
    body = [f'<g fill="{PALETTE[0]}" stroke="{OUTLINE}" stroke-width=".5">']
    texts = []
    for i, (label, n) in enumerate(items):
        y = i * (bar_height + gap)
        body.append(_rect(label_width, y, max(n * scale, 1 if n else 0), bar_height,
                          f"{label}: {_count(n, unit)}"))
        middle = _num(y + bar_height / 2 + 4)
        texts.append(f'<text x="{_num(label_width - 6)}" y="{middle}" text-anchor="end">'
                     f"{_text(_clip(label, label_width - 8))}</text>"
                     f'<text x="{_num(label_width + n * scale + 4)}" y="{middle}">{n:,}</text>')
    body.append('</g><g fill="#1b1b1b">' + "".join(texts) + "</g>")
    height = len(items) * (bar_height + gap) - gap
    leader, most = max(items, key=lambda item: item[1])
    desc = f"{len(items)} bars. Highest: {leader}, {_count(most, unit)}."
    return _svg(_chart_id("bars", title, items), width, height, title, desc, body)


def weekly(weeks: list[str], series: dict[str, dict[str, int]], labels: dict[str, str], title: str,
           *, totals: dict[str, int] | None = None, width: int = 720, height: int = 240,
           max_columns: int = MAX_COLUMNS) -> Markup:
    """Messages per week as columns stacked by topic (then the untagged remainder, when the
    week's `totals` are given), a legend, month ticks and the y-axis maximum. Over
    `max_columns` weeks, columns are months; `weekly_rows` gives the same numbers."""
    data = weekly_rows(weeks, series, labels, totals, max_columns=max_columns)
    rows = data["rows"]
    if not rows or not any(r["total"] or any(r["counts"]) for r in rows):
        return _empty("weekly", title, width)
    names = [label for _, label in data["series"]]
    colours = [REST if slug == "untagged" else PALETTE[i % len(PALETTE)]
               for i, (slug, _) in enumerate(data["series"])]
    if totals is not None:
        names.append(f"Other messages (the {data['unit']}'s total less the topic counts)")
        colours.append(REST)
    stacks = [r["counts"] + ([r["rest"]] if totals is not None else []) for r in rows]
    frame = {"left": 44, "top": 8, "width": width - 52, "height": height - 30}
    y_max = _nice(max(sum(s) for s in stacks))
    slot = frame["width"] / len(rows)
    body = [_axes(frame, y_max), _segments(stacks, colours, frame, slot, y_max),
            _x_ticks([r["period"] for r in rows], frame, slot, width),
            _hit_columns(rows, stacks, names, frame, slot)]
    legend, legend_h = _legend(names, colours, width, height + 4)
    body.append(legend)
    return _svg(_chart_id("weekly", title, data), width, height + 4 + legend_h, title,
                _weekly_desc(data, totals is not None), body)


def _segments(stacks: list[list[int]], colours: list[str], frame: dict, slot: float, y_max: int) -> str:
    """One path per series, a subpath per column: with the tooltips on the columns instead,
    a 16-week chart of nine topics with their full names stays well under 20 KB."""
    col_w = slot if slot < 3 else min(slot * 0.8, 48)
    # Whole pixels where columns are wide enough not to show the rounding: fewer bytes.
    snap = round if slot >= 8 else (lambda v: round(v, 1))
    bottom, scale = frame["top"] + frame["height"], frame["height"] / y_max
    paths: list[list[str]] = [[] for _ in colours]
    for i, stack in enumerate(stacks):
        x = snap(frame["left"] + i * slot + (slot - col_w) / 2)
        w = _num(snap(frame["left"] + i * slot + (slot + col_w) / 2) - x)
        done = 0
        for k, n in enumerate(stack):
            # Round the boundaries, not the heights, so the roundings do not add up.
            low = snap(bottom - done * scale)
            done += n
            high = snap(bottom - done * scale)
            if low > high:
                paths[k].append(f"M{_num(x)} {_num(high)}h{w}v{_num(low - high)}h-{w}z")
    outline = f' stroke="{OUTLINE}" stroke-width=".5"' if col_w >= 4 else ""
    return (f"<g{outline}>" + "".join(f'<path fill="{colours[k]}" d="{"".join(p)}"/>'
                                       for k, p in enumerate(paths) if p) + "</g>")


def _hit_columns(rows: list[dict], stacks: list[list[int]], names: list[str], frame: dict,
                 slot: float) -> str:
    """An invisible full-height target over each column whose tooltip gives the column's
    numbers, top of the stack first, as drawn (the same numbers as the caller's table)."""
    parts = []
    names = names[:len(rows[0]["counts"])] + ["Other messages"]   # the legend explains "other"
    for i, (row, stack) in enumerate(zip(rows, stacks)):
        lines = [f"{row['period']}: {_count(row['total'])}"]
        lines += [f"{names[k]}: {n:,}" for k, n in reversed(list(enumerate(stack))) if n]
        x, w = frame["left"] + i * slot, slot
        parts.append(f'<path d="M{_num(x)} {_num(frame["top"])}h{_num(w)}v{_num(frame["height"])}'
                     f'h-{_num(w)}z"><title>{_text(chr(10).join(lines))}</title></path>')
    # Painted (so that it takes the pointer) but fully transparent.
    return '<g fill="#000" fill-opacity="0">' + "".join(parts) + "</g>"


def _axes(frame: dict, y_max: int) -> str:
    """The baseline, a gridline at the maximum and its label, and zero."""
    left, top, bottom = frame["left"], frame["top"], frame["top"] + frame["height"]
    span = _num(frame["width"])
    return (f'<path d="M{_num(left)} {_num(top)}h{span}M{_num(left)} {_num(bottom)}h{span}" '
            f'stroke="#767676" stroke-width=".5" fill="none"/>'
            f'<g fill="#1b1b1b" text-anchor="end">'
            f'<text x="{_num(left - 4)}" y="{_num(top + 4)}">{y_max:,}</text>'
            f'<text x="{_num(left - 4)}" y="{_num(bottom + 4)}">0</text></g>')


def _x_ticks(columns: list[str], frame: dict, slot: float, width: float) -> str:
    """Month ticks under the plot, each at the first column of its month."""
    bottom, parts = frame["top"] + frame["height"], []
    for i, label in _month_ticks(columns):
        x = frame["left"] + i * slot
        if x > width - 24:   # a label at the far right edge would be cut off
            continue
        parts.append(f'<path d="M{_num(x)} {_num(bottom)}v4"/>'
                     f'<text x="{_num(x)}" y="{_num(bottom + 15)}" stroke="none">{_text(label)}</text>')
    return f'<g stroke="#767676" fill="#1b1b1b">{"".join(parts)}</g>'


def _legend(names: list[str], colours: list[str], width: float, y0: float) -> tuple[str, float]:
    """Swatches and full labels below the plot, in two columns when every label fits in
    half the width; returns (markup, its height)."""
    row_h = 16
    per_row = 2 if max(len(n) for n in names) * CHAR_WIDTH + 20 <= width / 2 else 1
    col_w = width / per_row
    swatches, texts = [], []
    for k, (name, colour) in enumerate(zip(names, colours)):
        x, y = (k % per_row) * col_w, y0 + (k // per_row) * row_h
        swatches.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="10" height="10" fill="{colour}"/>')
        texts.append(f'<text x="{_num(x + 14)}" y="{_num(y + 9)}">{_text(_clip(name, col_w - 20))}</text>')
    rows = -(-len(names) // per_row)
    return (f'<g stroke="{OUTLINE}" stroke-width=".5">' + "".join(swatches) + '</g><g fill="#1b1b1b">'
            + "".join(texts) + "</g>", rows * row_h)


def _weekly_desc(data: dict, with_rest: bool) -> str:
    rows = data["rows"]
    busiest = max(rows, key=lambda r: r["total"])
    unit = data["unit"]
    text = (f"Messages per {unit} by agenda topic, {rows[0]['period']} to {rows[-1]['period']} "
            f"({len(rows)} {unit}s). Busiest {unit}: {busiest['period']}, {_count(busiest['total'])}. "
            f"A message on several topics counts once in each.")
    if with_rest:
        text += f" Grey is the rest of the {unit}'s messages, when its total is above the topic counts."
    return text


def sparkline(weeks: list[dict], title: str, *, width: int = 240, height: int = 40,
              max_columns: int = 60) -> Markup:
    """A small activity chart: one column per week ({"week", "messages"} each; months when
    there are more than `max_columns` weeks), empty weeks as gaps."""
    counts = _by_monday({w.get("week"): w.get("messages") for w in weeks})
    unit, columns = periods(sorted(counts), max_columns)
    if not columns or not any(counts.values()):
        return _empty("spark", title, width)
    values = [(label, sum(counts.get(w, 0) for w in held)) for label, held in columns]
    top = max(n for _, n in values)
    slot = width / len(values)
    col_w = slot if slot < 3 else slot * 0.8
    # A single column would fill the whole chart: keep it a column's width, centred.
    if len(values) == 1:
        col_w, slot = min(col_w, 12), width
    body = [f'<g fill="{PALETTE[0]}">']
    for i, (label, n) in enumerate(values):
        if n:
            h = max(n / top * (height - 2), 1)
            body.append(_rect(i * slot + (slot - col_w) / 2, height - 1 - h, col_w, h,
                              f"{label}: {_count(n)}"))
    body.append(f'</g><path d="M0 {_num(height - .5)}H{width}" stroke="#767676" stroke-width="1"/>')
    busiest = max(values, key=lambda v: v[1])
    desc = (f"{_count(sum(counts.values()))} by {unit}, {values[0][0]} to {values[-1][0]}; "
            f"busiest {unit} {busiest[0]} with {_count(busiest[1])}.")
    return _svg(_chart_id("spark", title, values), width, height, title, desc, body)
