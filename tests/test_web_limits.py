"""Per-client rate limits on search and exports: a clear 429 page (or JSON), other pages unaffected."""

from __future__ import annotations

import pytest

from web import create_app


@pytest.fixture
def strict(sample_on_both):
    """The app over the sample (in SQLite, then on PostgreSQL) with small budgets."""
    data, url = sample_on_both
    app = create_app({"DATA_DIR": str(data), "DATABASE_URL": url, "SEARCH_RATE": "3 per minute",
                      "EXPORT_RATE": "2 per minute"})
    yield app
    app.extensions["store"].close()


def test_searches_share_one_budget_per_client(strict):
    client = strict.test_client()
    assert client.get("/search?q=wcit").status_code == 200
    assert client.get("/api/search?q=wcit").status_code == 200
    assert client.get("/search/feed.atom?q=wcit").status_code == 200
    refused = client.get("/search?q=visa")
    assert refused.status_code == 429
    assert "429 · Too many requests" in refused.get_data(as_text=True)
    assert refused.headers.get("Retry-After")
    api = client.get("/api/search?q=visa")
    assert api.status_code == 429 and api.get_json()["error"]
    # Browsing is not limited, and another client has its own budget.
    assert client.get("/").status_code == 200
    other = strict.test_client()
    assert other.get("/search?q=wcit", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_exports_are_limited_apart_from_searches(strict):
    client = strict.test_client()
    thread = client.get("/api/list/bestbits/threads").get_json()["threads"][0]["thread_id"]
    for _ in range(2):
        response = client.get(f"/thread/{thread}/export.jsonl")
        assert response.status_code == 200
        response.close()
    assert client.get(f"/thread/{thread}/export.csv").status_code == 429
    assert client.get("/search?q=wcit").status_code == 200


def test_behind_a_proxy_each_reader_has_a_budget(sample_on_both):
    """With proxy_hops 1 the reader's address is the proxy's X-Forwarded-For; without it,
    every reader behind the proxy shares one budget, and a forged header changes nothing."""
    data, url = sample_on_both
    for hops, separate in ((1, True), (0, False)):
        app = create_app({"DATA_DIR": str(data), "DATABASE_URL": url, "SEARCH_RATE": "2 per minute",
                          "PROXY_HOPS": hops})
        client = app.test_client()
        proxy = {"REMOTE_ADDR": "10.0.0.1"}
        for _ in range(2):
            assert client.get("/search?q=wcit", environ_base=proxy,
                              headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200
        assert client.get("/search?q=wcit", environ_base=proxy,
                          headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        other = client.get("/search?q=wcit", environ_base=proxy, headers={"X-Forwarded-For": "198.51.100.2"})
        assert (other.status_code == 200) is separate
        app.extensions["store"].close()
