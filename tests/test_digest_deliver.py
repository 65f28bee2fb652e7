"""Delivering digests to a real SMTP server on loopback, with faults: refused connections, 421/451 mid-run,
a 550 recipient, a killed run and two runs at once. In every case: each due subscriber gets exactly one copy,
nobody else gets any."""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from datetime import date
from pathlib import Path

import digestutil
import pytest
from digestutil import DAY, SmtpServer, add_subscribers, env_for, kill, settings_for
from webutil import free_port

from papertide.digest.deliver import Pacer, run_digest

digest_template, dhome, dstore, smtp = digestutil.digest_template, digestutil.dhome, digestutil.dstore, digestutil.smtp
CLI = str(Path(__import__("sys").executable).parent / "papertide")
D = date.fromisoformat(DAY)


def _exactly_once(box, due: list[str]) -> None:
    got = box.per_address()
    assert {a: got[a] for a in due} == {a: 1 for a in due}, got
    assert set(got) == set(due), f"unexpected recipients: {set(got) - set(due)}"


def test_sends_once_to_each_confirmed_subscriber_and_nobody_else(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port)
    due = add_subscribers(dstore, 5)
    add_subscribers(dstore, 2, prefix="unconfirmed", confirmed=False)
    gone = add_subscribers(dstore, 1, prefix="gone")
    dstore.unsubscribe(dstore.get_subscriber_by_email(gone[0]).id)
    add_subscribers(dstore, 2, prefix="weekly", frequency="weekly")
    rep = run_digest(dstore, s, "daily", D)
    assert (rep.sent, rep.failed, rep.exit_code) == (5, 0, 0)
    assert rep.compositions == 1  # five subscribers, one preference set: composed once
    _exactly_once(smtp.box, due)
    again = run_digest(dstore, s, "daily", D)
    assert (again.sent, again.exit_code) == (0, 3)
    _exactly_once(smtp.box, due)


def test_refused_connections_fail_then_a_rerun_delivers(dhome, dstore):
    port = free_port()  # nothing listens there yet
    s = settings_for(dhome, port, digest_max_attempts=3)
    due = add_subscribers(dstore, 4)
    rep = run_digest(dstore, s, "daily", D)
    assert (rep.sent, rep.failed, rep.exit_code) == (0, 4, 1)
    assert rep.retried == 4 * 2  # three attempts each
    assert rep.edition_counts.failed == 4
    with SmtpServer(port) as server:
        rep = run_digest(dstore, s, "daily", D)
        assert (rep.sent, rep.failed, rep.exit_code) == (4, 0, 0)
        _exactly_once(server.box, due)


def test_421_and_451_mid_run_are_retried(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port)
    due = add_subscribers(dstore, 8)
    smtp.box.faults["data"] = lambda n, a: "421 4.3.2 Service shutting down" if n == 3 else None
    smtp.box.faults["rcpt"] = lambda n, a: "451 4.7.1 Greylisted, try again" if n in (5, 6) else None
    rep = run_digest(dstore, s, "daily", D)
    assert (rep.sent, rep.failed, rep.exit_code) == (8, 0, 0)
    assert rep.retried == 3
    _exactly_once(smtp.box, due)


def test_a_550_recipient_fails_for_good_and_the_others_get_theirs(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port)
    due = add_subscribers(dstore, 5)
    bad = due.pop(2)
    smtp.box.faults["rcpt"] = lambda n, a: "550 5.1.1 No such user" if a == bad else None
    rep = run_digest(dstore, s, "daily", D)
    assert (rep.sent, rep.failed, rep.exit_code) == (4, 1, 1)
    assert rep.edition_counts.reasons == {"recipient refused: 550 5.1.1 No such user": 1}
    _exactly_once(smtp.box, due)
    rep = run_digest(dstore, s, "daily", D)  # a permanent failure is not retried
    assert (rep.sent, rep.failed, rep.exit_code) == (0, 0, 3)
    _exactly_once(smtp.box, due)
    export = dstore.export_subscriber(bad)
    assert export["deliveries"][0]["status"] == "failed" and export["deliveries"][0]["attempts"] == 1


def test_a_dead_runs_claims_come_back_after_their_lease(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port, digest_lease_seconds=0.6)
    due = add_subscribers(dstore, 6)
    edition = dstore.ensure_edition("daily", D)
    dstore.plan_deliveries(edition)
    held = dstore.claim_deliveries(edition, "a-run-that-died", 4, 0.6, time.time())
    assert len(held) == 4
    t0 = time.monotonic()
    rep = run_digest(dstore, s, "daily", D)
    assert rep.sent == 6 and time.monotonic() - t0 >= 0.4  # waited for the dead run's lease
    _exactly_once(smtp.box, due)


def test_pacer_spaces_messages():
    now = [0.0]
    slept = []

    def sleep(dt):
        slept.append(dt)
        now[0] += dt

    p = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        p.wait()
    assert now[0] == pytest.approx(1.0) and len(slept) == 4


def test_rate_limit_holds_in_a_real_run(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port, digest_rate=25)
    due = add_subscribers(dstore, 6)
    t0 = time.monotonic()
    run_digest(dstore, s, "daily", D)
    assert time.monotonic() - t0 >= 5 / 25 * 0.9
    _exactly_once(smtp.box, due)


# -- separate processes: kill -9 mid-run, two runs at once --------------------------------------------
def _send(s, *extra) -> subprocess.Popen:
    return subprocess.Popen([CLI, "digest", "send", "--frequency", "daily", "--date", DAY, *extra], env=env_for(s),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("seed", "where"), [(1, "between"), (2, "between"), (3, "in-data")])
def test_killed_mid_run_then_rerun_sends_each_exactly_once(dhome, dstore, smtp, seed, where):
    s = settings_for(dhome, smtp.port, digest_lease_seconds=1.0)
    due = add_subscribers(dstore, 12)
    at = random.Random(seed).randint(2, 11)
    proc_box: dict = {}
    killed = threading.Event()

    def kill_at(n, address):
        if n == at and not killed.is_set():
            kill(proc_box["proc"].pid)
            killed.set()
            return "421 4.3.2 going away"  # the client is dead; this message was not accepted
        return None

    # "between": at the MAIL FROM of message `at` - the previous one is accepted and recorded (the client
    # records before it starts the next). "in-data": after the client sent message `at`, before acceptance.
    smtp.box.faults["mail" if where == "between" else "data"] = kill_at
    proc_box["proc"] = proc = _send(s)
    proc.wait(timeout=60)
    assert killed.is_set() and proc.returncode == -9
    assert len(smtp.box.per_address()) == at - 1
    smtp.box.faults.clear()
    rerun = _send(s)
    out, errs = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, out + errs
    _exactly_once(smtp.box, due)


def test_two_runs_at_once_send_each_exactly_once(dhome, dstore, smtp):
    s = settings_for(dhome, smtp.port, digest_rate=40)  # slow enough for the two runs to overlap
    due = add_subscribers(dstore, 30)
    a, b = _send(s), _send(s)
    ra, rb = a.communicate(timeout=60), b.communicate(timeout=60)
    assert {a.returncode, b.returncode} <= {0, 3}, (ra, rb)
    assert 0 in {a.returncode, b.returncode}
    sent = [int(re.search(r"sent (\d+),", out).group(1)) for out, _ in (ra, rb)]
    assert sum(sent) == 30, (ra, rb)
    _exactly_once(smtp.box, due)
