"""Composing digests: editions, filters, no repeats, one composition per distinct preference set; the CLI."""

from __future__ import annotations

import email
import json
from datetime import date
from email import policy

import digestutil
from digestutil import DAY, add_subscribers, env_for, settings_for
from typer.testing import CliRunner

from papertide.cli import app
from papertide.digest.compose import (
    Composer,
    default_day,
    edition_period,
    filter_papers,
    keyword_pattern,
    parse_categories,
    parse_keywords,
    pick,
)
from papertide.digest.deliver import run_digest

digest_template, dhome, dstore, smtp = digestutil.digest_template, digestutil.dhome, digestutil.dstore, digestutil.smtp
D = date.fromisoformat(DAY)
runner = CliRunner()


def test_editions_and_default_days():
    assert edition_period("daily", D).key == D
    week = edition_period("weekly", date(2025, 5, 28))
    assert (week.key, week.start, week.end) == (date(2025, 5, 26), date(2025, 5, 26), date(2025, 6, 1))
    assert default_day("daily", date(2025, 5, 27), date(2026, 1, 1)) == date(2025, 5, 27)
    assert default_day("weekly", None, date(2025, 6, 4)) == date(2025, 5, 26)  # last complete week


def test_filters_categories_keywords_and_no_repeats():
    texts = {1: ("cs.CL cs.LG", "Retrieval-Augmented Generation at scale", "..."),
             2: ("cs.CV", "Diffusion for video", "We study video diffusion models."),
             3: ("math.OC", "Convex things", "A diffusion-free approach."),
             4: ("cs.LG", "Transformers", "retrieval augmented   generation helps")}
    ranked = [4, 3, 2, 1]
    assert filter_papers(ranked, texts, ("cs.CL",), ()) == [1]
    assert filter_papers(ranked, texts, ("cs",), ()) == [4, 2, 1]  # a whole archive
    assert filter_papers(ranked, texts, (), ("diffusion",)) == [3, 2]  # whole words, title or abstract
    assert filter_papers(ranked, texts, ("cs",), ("retrieval augmented generation",)) == [4]
    assert filter_papers(ranked, texts, (), ("retrieval-augmented generation",)) == [1]
    assert keyword_pattern(("diff",)).search("diffusion") is None
    assert pick([4, 3, 2, 1], {3}, 2) == [4, 2]
    assert parse_categories("cs.CL, cs.LG  math") == ("cs.CL", "cs.LG", "math")
    assert parse_keywords("Diffusion,  Large  Language Models\n") == ("diffusion", "large language models")


def test_one_composition_per_distinct_preference_set(dstore):
    add_subscribers(dstore, 4, prefix="a", categories=("cs.CV",))
    add_subscribers(dstore, 3, prefix="b", categories=("cs.CV",), max_papers=1)  # same filter, other count
    add_subscribers(dstore, 2, prefix="c", keywords=("model",))
    composer = Composer(dstore, edition_period("daily", D))
    subs = [dstore.get_subscriber(i) for i in range(1, 10)]
    chosen = [composer.papers_for(s) for s in subs]
    assert composer.compositions == 2
    assert all(len(c) == 3 for c in chosen[:4]) and all(len(c) == 1 for c in chosen[4:7])
    assert chosen[4][0] == chosen[0][0]  # the top paper is the same for the same filter


def test_a_paper_is_never_sent_twice_to_the_same_subscriber(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port)
    (addr,) = add_subscribers(dstore, 1, max_papers=4)
    run_digest(dstore, s, "daily", D)
    sub = dstore.get_subscriber_by_email(addr)
    first = dstore.export_subscriber(addr)["deliveries"][0]["papers"]
    dstore.set_preferences(sub.id, sub.prefs.__class__("weekly", (), (), 40, False))
    run_digest(dstore, s, "weekly", D)  # the week holds the same day's papers
    second = dstore.export_subscriber(addr)["deliveries"][1]["papers"]
    assert len(first) == 4 and second and not set(first) & set(second)


def test_cli_preview_send_export_delete(dhome, dstore, smtp, tmp_path, monkeypatch):
    s = settings_for(dhome, smtp.port)
    for k, v in env_for(s).items():
        monkeypatch.setenv(k, v)
    (addr,) = add_subscribers(dstore, 1)
    r = runner.invoke(app, ["digest", "preview", "--email", addr, "--date", DAY, "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    eml = next((tmp_path / "out").glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert eml.with_suffix(".html").read_text().startswith("<!doctype html>")
    assert smtp.box.messages == []  # a preview sends nothing
    r = runner.invoke(app, ["digest", "send", "--frequency", "daily", "--date", DAY])
    assert r.exit_code == 0 and "sent 1" in r.output, r.output
    r = runner.invoke(app, ["digest", "send", "--frequency", "daily", "--date", DAY])
    assert r.exit_code == 3, r.output  # nothing due
    r = runner.invoke(app, ["subscriber", "export", addr])
    data = json.loads(r.output)
    assert data["email"] == addr and data["status"] == "confirmed" and len(data["deliveries"]) == 1
    r = runner.invoke(app, ["subscriber", "delete", addr])
    assert r.exit_code == 0
    assert dstore.get_subscriber_by_email(addr) is None
    r = runner.invoke(app, ["subscriber", "export", addr])
    assert r.exit_code != 0
