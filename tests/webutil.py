"""Helpers for the HTTP-level site tests: a tiny HTML tree (stdlib parser), CSRF-aware posting, accounts."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from html.parser import HTMLParser

from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def iter(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        """Descendants with this tag, this class among their classes and these attribute values."""
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.attrs.get("class", "").split():
                continue
            if all(n.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()):
                out.append(n)
        return out

    def find(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node | None:
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v if v is not None else "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def html(text: str) -> Node:
    b = _Builder()
    b.feed(text)
    b.close()
    return b.root


def csrf_of(page_html: str) -> str:
    meta = html(page_html).find("meta", name="csrf-token")
    assert meta is not None and meta.attrs["content"], "no csrf token on the page"
    return meta.attrs["content"]


def csrf(client: TestClient, path: str = "/login") -> str:
    """The session's CSRF token, read from a page (which also starts the session)."""
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return csrf_of(r.text)


def post(client: TestClient, path: str, data: dict | None = None, **kw):
    """A form post carrying the session's CSRF token, not following redirects."""
    kw.setdefault("follow_redirects", False)
    return client.post(path, data={**(data or {}), "csrf": csrf(client)}, **kw)


def signup(client: TestClient, email: str = "ada@example.org", name: str = "Ada", password: str = PASSWORD):
    r = post(client, "/signup", {"email": email, "name": name, "password": password})
    assert r.status_code == 303, r.text[:500]
    return r


def login(client: TestClient, email: str = "ada@example.org", password: str = PASSWORD, next: str = "/"):
    return post(client, "/login", {"email": email, "password": password, "next": next})


def signed_in_as(client: TestClient) -> str | None:
    """The name in the header's account link, or None when signed out."""
    me = html(client.get("/search").text).find("a", cls="me")
    return me.text.strip() if me else None


def flashes(page_html: str) -> list[str]:
    return [n.text.strip() for n in html(page_html).find_all(cls="flash")]


def error_page(page_html: str) -> tuple[str, str]:
    """(title, message) of the site's error page."""
    sec = html(page_html).find("section", cls="error-page")
    assert sec is not None, page_html[:500]
    h1, paragraphs = sec.find("h1"), sec.find_all("p")
    assert h1 is not None and len(paragraphs) >= 2
    return h1.text.strip(), paragraphs[1].text.strip()


def card_ids(page_html: str) -> list[str]:
    return [a.attrs["data-arxiv-id"] for a in html(page_html).find_all("article", cls="card")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def second_client(client: TestClient) -> TestClient:
    """Another browser on the same site (its own cookies)."""
    return TestClient(client.app, base_url="http://testserver")
