"""A member's library over HTTP: collections, saving and unsaving papers, BibTeX export, privacy."""

from __future__ import annotations

import pytest
from webutil import card_ids, error_page, flashes, html, post, second_client, signup

P1, P2 = "2503.11792", "2503.11979"


@pytest.fixture
def member(client):
    signup(client)
    return client


def _collections(client) -> dict[str, tuple[str, str]]:
    """Name -> (href, count text) from the library page."""
    doc = html(client.get("/library").text)
    ul = doc.find("ul", cls="collections")
    if ul is None:
        return {}
    return {li.find("a").text: (li.find("a").attrs["href"], li.find("span", cls="count").text)
            for li in ul.find_all("li")}


def _make(client, name: str) -> str:
    r = post(client, "/library", {"name": name})
    assert r.status_code == 303, r.text[:300]
    return r.headers["location"]


def test_empty_library_and_creating_collections(member, site):
    doc = html(member.get("/library").text)
    assert doc.find(cls="empty") is not None
    href = _make(member, "  Thesis   related work ")
    assert href.startswith("/library/")
    assert _collections(member) == {"Thesis related work": (href, "0 papers")}
    page = html(member.get(href).text)
    assert page.find("h1").text == "Thesis related work"
    assert page.find(cls="empty") is not None


def test_collection_name_refusals(member):
    _make(member, "Reading")
    r = post(member, "/library", {"name": "Reading"})
    assert r.headers["location"] == "/library"
    assert "you already have a collection named 'Reading'" in flashes(member.get("/library").text)
    r = post(member, "/library", {"name": "   "})
    assert "Give the collection a name." in flashes(member.get("/library").text)
    assert list(_collections(member)) == ["Reading"]


def test_save_toggles_in_the_default_collection(member, site):
    r = post(member, f"/papers/{P1}/save", headers={"referer": "http://testserver/?view=all"})
    assert (r.status_code, r.headers["location"]) == (303, "/?view=all")  # back where the button was
    assert "Saved to Reading list." in flashes(member.get("/search").text)
    (href, count), = _collections(member).values()
    assert count == "1 paper"
    assert card_ids(member.get(href).text) == [P1]
    paper = html(member.get(f"/papers/{P1}").text)
    assert paper.find("summary").text == "Saved in your library"
    r = post(member, f"/papers/{P1}/save", headers={"accept": "application/json"})
    assert r.json() == {"arxiv_id": P1, "collection": "Reading list", "saved": False, "saved_anywhere": False}
    assert card_ids(member.get(href).text) == []


def test_save_to_named_and_new_collections(member, site):
    thesis = _make(member, "Thesis")
    tid = int(thesis.rsplit("/", 1)[1])
    post(member, f"/papers/{P1}/save", {"collection_id": str(tid), "saved": "1"})
    post(member, f"/papers/{P2}/save", {"new_collection": "Later", "saved": "1"})
    post(member, f"/papers/{P1}/save", {"new_collection": "Later", "saved": "1"})  # an existing name: reused
    cols = _collections(member)
    assert {k: v[1] for k, v in cols.items()} == {"Later": "2 papers", "Thesis": "1 paper"}
    assert set(card_ids(member.get(cols["Later"][0]).text)) == {P1, P2}
    # Saving twice is idempotent; "saved=0" takes it out of that collection only.
    post(member, f"/papers/{P1}/save", {"collection_id": str(tid), "saved": "1"})
    post(member, f"/papers/{P1}/save", {"collection_id": str(tid), "saved": "0"})
    assert card_ids(member.get(thesis).text) == []
    assert P1 in card_ids(member.get(cols["Later"][0]).text)
    chips = html(member.get(f"/papers/{P1}").text).find_all("button", cls="chip")
    assert {c.text.strip(): c.attrs["aria-pressed"] for c in chips} == {"✓ Later": "true", "Thesis": "false"}
    r = post(member, f"/papers/{P1}/save", {"saved": "maybe"})
    assert r.status_code == 422


def test_bibtex_export(member, site):
    href = _make(member, "Thesis: related work / 2025")
    cid = href.rsplit("/", 1)[1]
    for pid in (P1, P2):
        post(member, f"/papers/{pid}/save", {"collection_id": cid, "saved": "1"})
    page = html(member.get(href).text)
    link = page.find("a", href=f"{href}/bibtex")
    assert link is not None and "download" in link.attrs
    r = member.get(f"{href}/bibtex")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-bibtex")
    assert r.headers["content-disposition"] == 'attachment; filename="Thesis--related-work---2025.bib"'
    assert r.text.count("@") == 2
    for pid in (P1, P2):
        assert site.store.get_paper(pid).title.split()[0] in r.text
        single = member.get(f"/papers/{pid}/bibtex").text.strip()
        assert single in r.text


def test_delete_collection(member, site):
    href = _make(member, "Old")
    post(member, f"/papers/{P1}/save", {"collection_id": href.rsplit("/", 1)[1], "saved": "1"})
    r = post(member, f"{href}/delete")
    assert (r.status_code, r.headers["location"]) == (303, "/library")
    assert "Deleted the collection 'Old'." in flashes(member.get("/search").text)
    assert _collections(member) == {}
    assert member.get(href).status_code == 404
    assert site.store.get_paper(P1) is not None  # the paper stays on the site


def test_other_members_collections_are_not_found(member, site):
    href = _make(member, "Private")
    cid = href.rsplit("/", 1)[1]
    post(member, f"/papers/{P1}/save", {"collection_id": cid, "saved": "1"})
    eve = second_client(member)
    signup(eve, "eve@example.org", "Eve")
    for path in (href, f"{href}/bibtex"):
        r = eve.get(path)
        assert r.status_code == 404, path
        assert error_page(r.text) == ("Not found", "There is no such collection in your library.")
    assert post(eve, f"{href}/delete").status_code == 404
    assert post(eve, f"/papers/{P2}/save", {"collection_id": cid, "saved": "1"}).status_code == 404
    assert card_ids(member.get(href).text) == [P1]  # untouched
    assert eve.get("/library/999999").status_code == 404
    assert _collections(eve) == {}


def test_library_needs_an_account(client):
    for path in ("/library", "/library/1", "/library/1/bibtex"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={path}")
    r = post(client, f"/papers/{P1}/save")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_saved_state_on_cards(member, site):
    post(member, f"/papers/{P1}/save")
    assert html(member.get(f"/papers/{P2}").text).find("summary").text == "Save to my library"
    r = member.get("/search", params={"q": site.store.get_paper(P1).title})
    arts = html(r.text).find_all("article", cls="card")
    assert P1 in [a.attrs["data-arxiv-id"] for a in arts] and len(arts) > 1
    for art in arts:
        button = art.find("button", cls="save-button")
        assert button.attrs["aria-pressed"] == ("true" if art.attrs["data-arxiv-id"] == P1 else "false")


def test_a_collection_leaves_out_papers_the_moderators_hid(client, site):
    signup(client)
    ids = [p for p in site.store.feed_rows(*_all_days(site), featured=False)][:2]
    a, b = (site.store.arxiv_ids_for([r.doc_id])[r.doc_id] for r in ids)
    for arxiv_id in (a, b):
        assert post(client, f"/papers/{arxiv_id}/save", {}).status_code in (200, 303)
    site.store.set_hidden(ids[0].doc_id, True)
    collection = site.store.collections(site.store.get_user_by_email("ada@example.org").id)[0]
    page = client.get(f"/library/{collection.id}").text
    assert f'data-arxiv-id="{b}"' in page and f'data-arxiv-id="{a}"' not in page


def _all_days(site):
    from datetime import date

    return date(1990, 1, 1), date(2100, 1, 1)
