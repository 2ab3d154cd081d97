"""The search page: the query language, facets as links, snippets, sort, paging, help."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request, url_for

from archiver.errors import QueryError
from archiver.query import MAX_QUERY

from .params import bounded_int, choice, page_number

bp = Blueprint("search", __name__)

SORTS = ("relevance", "newest", "oldest")
# Facet name in the index -> the query field that narrows to one value.
FACET_FIELDS = {"topic": "topic", "author": "from", "org": "org", "list": "list",
                "month": "date", "lang": "lang"}
FACET_TITLES = {"topic": "Topic", "author": "Author", "org": "Organisation", "list": "List",
                "month": "Month", "lang": "Language"}


def search_args() -> dict:
    """Read and check the search parameters shared by the page, its feed, export and API."""
    q = request.args.get("q", "").strip()
    scope = request.args.get("list", "").strip()
    if scope and f"list:{scope}" not in q.split():
        q = f"{q} list:{_quote(scope)}".strip()
    if len(q) > MAX_QUERY:
        abort(400, description=f"The query is {len(q)} characters long; the limit is {MAX_QUERY}.")
    page, per_page = page_number(), bounded_int("per_page", 20, 1, 100)
    if page * per_page > 10_000:
        abort(400, description="Results are shown up to the 10,000th; narrow the query instead.")
    return {"q": q, "sort": choice("sort", "relevance", SORTS), "page": page,
            "per_page": per_page,
            "by_thread": request.args.get("by_thread", "") in ("1", "on", "true")}


def _quote(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


@bp.route("/search")
def search():
    args = search_args()
    found, error = None, None
    if args["q"]:
        try:
            found = g.archive.search(args["q"], page=args["page"], per_page=args["per_page"],
                                     sort=args["sort"], by_thread=args["by_thread"])
        except QueryError as exc:
            error = str(exc)
    facets = _facet_links(found, args) if found else []
    labels = g.archive.topic_labels()
    feeds = ([{"title": "This search", "url": url_for("feeds.search_feed", q=args["q"])}]
             if found else [])
    html = render_template("search/search.html", args=args, found=found, error=error,
                           facets=facets, labels=labels, feeds=feeds, site_query=args["q"])
    return html, (400 if error else 200)


def _facet_links(found: dict, args: dict) -> list[dict]:
    names = g.archive.people_names([v["value"] for v in found["facets"].get("author", [])])
    labels = g.archive.topic_labels()
    groups = []
    for facet, values in found["facets"].items():
        field = FACET_FIELDS.get(facet)
        if not field or not values:
            continue
        items = []
        for v in values[:10]:
            value, shown = v["value"], v["value"]
            if facet == "author":
                # Authors are addresses in the index; pages show and filter by name instead.
                shown = names.get(value, value.partition("@")[0])
                value = shown
            elif facet == "topic":
                shown = labels.get(value, value)
            term = f"{field}:{_quote(value)}"
            narrowed = term in args["q"]
            items.append({"label": shown, "count": v["count"], "active": narrowed,
                          "url": url_for("search.search", q=f"{args['q']} {term}",
                                         sort=args["sort"], by_thread=1 if args["by_thread"] else None)})
        groups.append({"title": FACET_TITLES.get(facet, facet), "values": items})
    return groups
