#!/usr/bin/env python3
"""The console's /queue page in headless Chromium (issue 11), against a
relay of consolelib that has delivered, blocked (deferred) and log-only
mail:

  list.*     the page lists exactly the deferred recipients (no delivered
             one), their state, codes and counts, each linked to its trace
  filter.*   the GET form filters by domain, by address, by state
  hold.*     a row's Hold button holds its message (the queue says held;
            its trace event says by=console)
  release.*  ticking a row and "Release" releases it
  retry.*    a row's Retry makes it due now
  delete.*   ticking a row and "Delete" deletes it (trace: deleted)
  csrf.*     the same POST without the CSRF token (with the session's
             cookie), with a wrong one, or without the cookie is refused
             403 and changes nothing; with the page's token it works

Usage: relay_console_queue.py --binary build/danerelay --world DIR
       [--screenshots DIR]   (writes DIR/queue.png)
"""
import argparse
import http.client
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "world"))
import consolelib  # noqa: E402
from worldlib import report, wait_until  # noqa: E402
from browser import Browser  # noqa: E402


def blocked_recipients():
    """{recipient: status} of consolelib's mail that stays deferred."""
    out = {}
    for dom, n, verdict, sec, status, rt, would in consolelib.PLAN:
        if verdict == "deferred":
            for i in range(n):
                out[f"user{i + 1}@{dom}"] = status
    return out


def qid_of(relay, rcpt):
    for qid, v in relay.sent.items():
        if v[1] == rcpt:
            return qid
    return None


def stale_retry(fn, tries=3):
    """fn(), again when the page was replaced under it (a navigation that
    ends after selenium said the page was loaded: seen once on a fresh
    machine as StaleElementReferenceException)."""
    from selenium.common.exceptions import StaleElementReferenceException
    for i in range(tries):
        try:
            return fn()
        except StaleElementReferenceException:
            if i == tries - 1:
                raise
            time.sleep(0.5)


def rows(b):
    """{recipient: (row id, state, msgid, cells)} of the page's table."""
    return stale_retry(lambda: rows_once(b))


def rows_once(b):
    out = {}
    for tr in b.find("#queue tbody tr"):
        cells = [td.text.strip() for td in
                 tr.find_elements("css selector", "td")]
        rcpt = tr.find_element("css selector", "td.rcpt").text.strip()
        out[rcpt] = (tr.get_attribute("id")[2:],
                     tr.get_attribute("data-state"),
                     tr.get_attribute("data-msgid"), cells, tr)
    return out


def cli_entry(relay, rcpt):
    """The `queue list --json` entry of rcpt, or None."""
    for r in relay.queue():
        if r["recipient"] == rcpt:
            return r
    return None


def check_list(b, relay, exp, url):
    want = blocked_recipients()
    b.get(url + "/queue")
    got = rows(b)
    report("list.exactly-the-deferred", set(got) == set(want),
           f"page {sorted(got)} wanted {sorted(want)}")
    # (the sender, postmaster@ee-311.test, is on every row)
    shown = " ".join(b.texts("#queue td.rcpt"))
    report("list.no-delivered-domain",
           got and not [d for d, v in exp["domains"].items()
                        if v["verdict"] == "delivered" and d in shown],
           f"recipients shown: {shown}")
    bad = [r for r, v in got.items() if v[1] != "deferred" or
           want.get(r, "?") not in v[3][8]]
    report("list.state-and-code", got and not bad,
           f"{[(r, got[r][1], got[r][3][8]) for r in bad]}")
    links = {}
    for r in got:
        a = b.find(f"#r-{got[r][0]} td a")
        links[r] = a[0].get_attribute("href") if a else None
    badl = [r for r in got if links[r] is None or not links[r].endswith(
        "/trace/" + str(qid_of(relay, r)))]
    report("list.rows-link-to-trace", got and not badl,
           f"{[(r, links[r], qid_of(relay, r)) for r in badl]}")
    report("list.counts",
           b.text("#count-deferred .value") == str(exp["queue"]["deferred"])
           and b.text("#count-held .value") == "0",
           f"deferred {b.text('#count-deferred .value')} held "
           f"{b.text('#count-held .value')}, wanted "
           f"{exp['queue']['deferred']} and 0")


def check_filters(b, url):
    b.get(url + "/queue")
    b.submit_form("#filters", {"domain": "dane-ta-wrong-name.test"})
    got = rows(b)
    report("filter.domain",
           sorted(got) == ["user1@dane-ta-wrong-name.test",
                           "user2@dane-ta-wrong-name.test"] and
           "domain=dane-ta-wrong-name.test" in b.url, f"{sorted(got)}")
    b.get(url + "/queue")
    b.submit_form("#filters", {"address": "STS-enforce-wrong"})
    got = rows(b)
    report("filter.address",
           sorted(got) == ["user1@sts-enforce-wrong-name.test"],
           f"{sorted(got)}")
    b.get(url + "/queue")
    from selenium.webdriver.support.ui import Select
    Select(b.find("#filters select[name=state]")[0]).select_by_value("held")
    # submit_form waits for the new page (click only for readyState,
    # which the old page already has: a race seen on a fresh machine).
    b.submit_form("#filters", button_css="#filters button[type=submit]")
    report("filter.state-held-empty",
           not rows(b) and b.text("#empty") is not None and
           "state=held" in b.url, f"{sorted(rows(b))} {b.url}")


def act_on_row(b, url, rcpt, action):
    """Click the action button of rcpt's row; the result line."""
    b.get(url + "/queue")
    b.accept_confirms()
    row = rows(b).get(rcpt)
    if row is None:
        return None
    b.submit_form(f"#r-{row[0]} form", button_css=f"#r-{row[0]} "
                  f"button[value={action}]")
    return b.text("#result")


def act_on_selection(b, url, rcpts, action):
    b.get(url + "/queue")
    b.accept_confirms()
    got = rows(b)
    for r in rcpts:
        if r not in got:
            return None
        b.find(f"#r-{got[r][0]} input[name=id]")[0].click()
    b.submit_form("#selection", button_css=f"#sel-{action}")
    return b.text("#result")


def check_actions(b, relay, url, shots):
    sts = "user1@sts-enforce-wrong-name.test"
    res = act_on_row(b, url, sts, "hold")
    e = cli_entry(relay, sts)
    report("hold.row-button",
           res is not None and "1 recipient held" in res and
           e is not None and e["status"] == "held" and
           rows(b).get(sts, (0, ""))[1] == "held" and
           b.text("#count-held .value") == "1",
           f"result {res!r} queue {e}")
    held = [ev for ev in relay.trace(qid_of(relay, sts))
            if ev["type"] == "held"]
    report("hold.trace-names-console",
           held and held[-1].get("by") == "console", f"{held}")
    if shots:
        b.screenshot(os.path.join(shots, "queue.png"))
    res = act_on_selection(b, url, [sts], "release")
    e = cli_entry(relay, sts)
    report("release.selection",
           res is not None and "1 recipient released" in res and
           e is not None and e["status"] == "queued",
           f"result {res!r} queue {e}")
    one = "user1@dane-ta-wrong-name.test"
    res = act_on_row(b, url, one, "retry")
    report("retry.row-button", res is not None and "1 recipient due now"
           in res, f"result {res!r}")
    two = "user2@dane-ta-wrong-name.test"
    res = act_on_selection(b, url, [two], "delete")
    qid = qid_of(relay, two)
    types = [ev["type"] for ev in relay.trace(qid)] if qid else []
    report("delete.selection",
           res is not None and "1 recipient deleted" in res and
           cli_entry(relay, two) is None and "deleted" in types and
           two not in rows(b),
           f"result {res!r} queue {cli_entry(relay, two)} trace {types}")


def post(url, fields, cookie=None):
    """POST a form to /queue; (status, Location)."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    c.request("POST", "/queue", urllib.parse.urlencode(fields), headers)
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, r.getheader("Location") or ""


def check_csrf(b, relay, url):
    sts = "user1@sts-enforce-wrong-name.test"
    qid = qid_of(relay, sts)
    b.get(url + "/queue")
    cookie = "; ".join(f"{c['name']}={c['value']}"
                       for c in b.driver.get_cookies())
    token = b.find("#selection input[name=csrf]")
    token = token[0].get_attribute("value") if token else ""
    refused = [post(url, {"action": "delete", "msg": qid}, cookie)[0],
               post(url, {"action": "delete", "msg": qid, "csrf": "0" * 64},
                    cookie)[0],
               post(url, {"action": "delete", "msg": qid, "csrf": token})[0]]
    e = cli_entry(relay, sts)
    report("csrf.refused-403", refused == [403, 403, 403] and e is not None,
           f"no token / wrong token / no cookie: {refused}; queue {e}")
    st, loc = post(url, {"action": "hold", "msg": qid, "csrf": token},
                   cookie)
    e = cli_entry(relay, sts)
    report("csrf.with-token-works",
           st == 303 and "done=hold" in loc and e is not None and
           e["status"] == "held", f"{st} {loc} queue {e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--screenshots")
    args = ap.parse_args()
    try:
        relay, exp = consolelib.populated(args.binary, args.world)
    except RuntimeError as e:
        report("queue.world", False, str(e))
        return 0
    try:
        with Browser() as b:
            url = relay.admin_url
            check_list(b, relay, exp, url)
            check_filters(b, url)
            check_actions(b, relay, url, args.screenshots)
            check_csrf(b, relay, url)
            errs = b.console_errors()
            report("queue.no-browser-errors", not errs, f"{errs[:3]}")
    except Exception as e:   # a missing browser, a page that broke
        import traceback
        where = traceback.extract_tb(e.__traceback__)[-3:]
        report("queue.browser", False, f"{type(e).__name__}: {e} at "
               + " < ".join(f"{f.name}:{f.lineno}" for f in where[::-1]))
    finally:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
