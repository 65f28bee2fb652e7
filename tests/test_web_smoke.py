"""The site answers its main pages on the fixture data (deeper tests: test_web_*.py)."""


def test_main_pages_render(client):
    for path in ["/", "/?view=all", "/?period=week&sort=new", "/?period=month", "/search", "/search?q=neural+networks",
                 "/login", "/signup", "/reset"]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "<html" in r.text


def test_unknown_page_is_a_helpful_404(client):
    r = client.get("/no/such/page")
    assert r.status_code == 404
    assert "There is no page at this address" in r.text
