#!/usr/bin/python3
"""The transit security report and the log-only impact, end to end: a relay
in the test world that has delivered, blocked and log-only-recorded mail
(consolelib.populated()), then

- `danerelay report` and `report --impact`, text and JSON, with the exact
  numbers of consolelib's plan;
- /report and /impact in headless Chromium (tests/world/browser.py): the
  blocked DANE and MTA-STS domains with their 4.7.32x / 4.7.5 codes, RFC
  8460 result types and message counts, both charts drawn with the right
  data, the no-TLS table, the period chooser, links to /trace; the
  log-only domain with its failure, the counts and shares, the link to the
  analyzer; no script or CSP error; ?format=json equals the CLI's JSON.

    relay_console_report.py --binary build/danerelay --world DIR
        [--screenshots docs/console]

With --screenshots, PNGs of both pages (1280x900) go to DIR/report.png and
DIR/impact.png.
"""
import argparse
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "world"))
from consolelib import populated  # noqa: E402
from worldlib import report  # noqa: E402

BLOCKED_DANE = "dane-ta-wrong-name.test"
BLOCKED_STS = "sts-enforce-wrong-name.test"
LOGONLY = "ee-wrong-digest.test"
PLAINTEXT = "no-starttls.test"
CLASSES = ["dane", "dane_trusted", "sts", "tls", "plaintext"]


def case(name, fn, *args):
    try:
        why = fn(*args)
    except Exception as e:  # a case that raises FAILs, the rest go on
        why = f"{type(e).__name__}: {e}"
    report(name, why is None, why or "")


def cli_json(relay, *args):
    rc, out, err = relay.cli("report", *args, "--json")
    if rc != 0:
        raise RuntimeError(f"report {' '.join(args)}: exit {rc}: {err}")
    return json.loads(out)


def planned_blocked(exp):
    """{domain: (security, messages, status, result type)} of the plan."""
    return {d: (v["security"], v["messages"], v["status"], v["result_type"])
            for d, v in exp["domains"].items() if v["verdict"] != "delivered"}


# --- the CLI ---

def check_blocked_json(rep, exp):
    got = {b["domain"]: b for b in rep["blocked"]}
    want = planned_blocked(exp)
    if set(got) != set(want):
        return f"blocked domains {sorted(got)}, planned {sorted(want)}"
    for dom, (sec, n, status, rt) in want.items():
        b = got[dom]
        errs = [(e["status"], e["result_type"]) for e in b["errors"]]
        if b["security"] != sec or b["messages"] != n or \
                b["recipients"] != n or errs != [(status, rt)]:
            return f"{dom}: {b}, planned {sec} {n} {status} {rt}"
    return None


def check_sent_json(rep, exp):
    sent = rep["sent"]
    want = {c: exp["delivered"].get(c, 0) for c in CLASSES}
    if sent["totals"] != want or sent["total"] != exp["delivered_total"]:
        return f"sent totals {sent['totals']}, planned {want}"
    for c in CLASSES:
        s = sent["series"][c]
        if len(s) != len(rep["period"]["buckets"]) or sum(s) != want[c]:
            return f"series {c} {s}: sum {sum(s)}, planned {want[c]}"
    return None


def check_notls_json(rep, exp):
    table = {r["domain"]: r for r in rep["no_tls"]["table"]}
    n = exp["domains"][PLAINTEXT]["messages"]
    if set(table) != {PLAINTEXT}:
        return f"no_tls domains {sorted(table)}, planned [{PLAINTEXT}]"
    r = table[PLAINTEXT]
    if r["messages"] != n or r["plaintext"] != n or r["failed"] != 0:
        return f"{PLAINTEXT}: {r}"
    if sum(rep["no_tls"]["domains"]) != 1:
        return f"no_tls series {rep['no_tls']['domains']}"
    return None


def cli_report(relay, exp):
    rep = cli_json(relay)
    return check_blocked_json(rep, exp) or check_sent_json(rep, exp) or \
        check_notls_json(rep, exp)


def cli_report_text(relay, exp):
    rc, out, err = relay.cli("report", "--period", "1h")
    if rc != 0:
        return f"exit {rc}: {err}"
    n = exp["domains"][BLOCKED_DANE]["messages"]
    want = [f"{BLOCKED_DANE} security=dane messages={n} recipients={n}",
            "4.7.325 result_type=certificate-host-mismatch",
            f"{BLOCKED_STS} security=sts messages=1",
            "4.7.5 result_type=certificate-host-mismatch",
            f"total={exp['delivered_total']} "
            f"dane={exp['delivered'].get('dane', 0)}",
            f"{PLAINTEXT} messages=1 plaintext=1 failed=0"]
    missing = [w for w in want if w not in out]
    return f"missing {missing} in:\n{out}" if missing else None


def impact_expect(exp):
    doms = len(exp["domains"])
    would_msgs = exp["domains"][LOGONLY]["messages"]
    return doms, would_msgs, 100.0 / doms, 100.0 * would_msgs / \
        exp["messages"]


def cli_impact(relay, exp):
    imp = cli_json(relay, "--impact", "--period", "7d")
    doms, msgs, dpct, mpct = impact_expect(exp)
    t, w = imp["totals"], imp["would_block"]
    if t["domains"] != doms or t["messages"] != exp["messages"]:
        return f"totals {t}, planned {doms} domains {exp['messages']} msgs"
    if w["domains"] != 1 or w["messages"] != msgs or \
            abs(w["domains_percent"] - dpct) > 1e-9 or \
            abs(w["messages_percent"] - mpct) > 1e-9:
        return f"would_block {w}"
    if [d["domain"] for d in imp["domains"]] != [LOGONLY]:
        return f"domains {imp['domains']}"
    d = imp["domains"][0]
    e = d["errors"]
    if d["security"] != "dane" or d["messages"] != msgs or len(e) != 1 or \
            e[0]["result_type"] != "tlsa-invalid" or \
            e[0]["status"] != "4.7.323" or not e[0]["text"]:
        return f"{LOGONLY}: {d}"
    rc, out, err = relay.cli("report", "--impact")
    line = (f"Enforcement would have blocked 1 of {doms} recipient domains "
            f"({dpct:.3g}%) and {msgs} of {exp['messages']} messages "
            f"({mpct:.3g}%)")
    if rc != 0 or line not in out or "4.7.323 result_type=tlsa-invalid" \
            not in out:
        return f"text: exit {rc}, want {line!r} in:\n{out}{err}"
    return None


def cli_bad_period(relay, exp):
    rc, out, err = relay.cli("report", "--period", "2d")
    return None if rc == 64 and "1h, 1d, 7d or 30d" in err else \
        f"exit {rc}: {err}"


# --- the pages ---

def get_json(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return json.loads(r.read())


def page_json_is_cli(relay, exp):
    """The page's ?format=json and the CLI come from the same function."""
    page = get_json(relay.admin_url + "/report?period=1d&format=json")
    cli = cli_json(relay, "--period", "1d")
    for k in ("blocked", "no_tls"):
        if page[k] != cli[k]:
            return f"{k}: page {page[k]} != cli {cli[k]}"
    if page["sent"]["totals"] != cli["sent"]["totals"]:
        return "sent totals differ"
    imp = get_json(relay.admin_url + "/impact?period=1d&format=json")
    if imp["would_block"] != cli_json(relay, "--impact")["would_block"]:
        return "impact differs"
    return None


def blocked_rows(b):
    return {r[0]: r for r in b.table("#blocked")}


def page_report_blocked(b, relay, exp):
    b.get(relay.admin_url + "/report")
    if b.title is None or "Transit security" not in b.text("h1"):
        return f"h1 {b.text('h1')!r}"
    rows = blocked_rows(b)
    for dom, (sec, n, status, rt) in planned_blocked(exp).items():
        r = rows.get(dom)
        if r is None:
            return f"{dom} not shown: {rows}"
        word = "MTA-STS" if sec == "sts" else "DANE"
        if r[1] != word or r[2] != str(n) or r[3] != str(n) or \
                status not in r[4] or rt not in r[4] or \
                f"×{n}" not in r[4]:
            return f"{dom}: row {r}, planned {word} {n} {status} {rt}"
    if set(rows) != set(planned_blocked(exp)):
        return f"rows {sorted(rows)}"
    href = b.find(f"#blocked a[href*='{BLOCKED_DANE}']")
    if not href or not href[0].get_attribute("href").endswith(
            f"/trace?domain={BLOCKED_DANE}"):
        return "no /trace link for the blocked domain"
    return None


def chart_data(b, canvas):
    return json.loads(b.js(
        "return document.getElementById(arguments[0]).textContent;",
        canvas + "-data"))


def page_report_charts(b, relay, exp):
    b.get(relay.admin_url + "/report")
    for c in ("chart-sent", "chart-notls"):
        if not b.chart_drawn(c):
            return f"{c} not drawn"
    spec = chart_data(b, "chart-sent")
    sums = {d["label"]: sum(d["data"]) for d in spec["datasets"]}
    want = {"DANE-verified": "dane",
            "DANE-trusted (insecure MX)": "dane_trusted",
            "MTA-STS": "sts", "Opportunistic TLS": "tls",
            "No TLS": "plaintext"}
    for label, cls in want.items():
        if sums.get(label) != exp["delivered"].get(cls, 0):
            return f"sent chart {label}: {sums.get(label)}, planned " \
                f"{exp['delivered'].get(cls, 0)}"
    if not spec.get("stacked") or len(spec["labels"]) < 24:
        return f"sent chart not stacked or few points: {spec}"
    # The totals under the chart, class by class.
    for cls in CLASSES:
        t = b.text(f"#sent td[data-class='{cls}']")
        if t != str(exp["delivered"].get(cls, 0)):
            return f"sent table {cls}: {t}"
    notls = chart_data(b, "chart-notls")
    if sum(notls["datasets"][0]["data"]) != 1:
        return f"no-TLS chart {notls}"
    return None


def page_report_notls(b, relay, exp):
    b.get(relay.admin_url + "/report")
    rows = b.table("#notls")
    if [r[0] for r in rows] != [PLAINTEXT] or rows[0][1:4] != ["1", "1",
                                                               "0"]:
        return f"no-TLS table {rows}"
    if b.text("#notls-total") != "1":
        return f"total {b.text('#notls-total')}"
    return None


def page_report_periods(b, relay, exp):
    b.get(relay.admin_url + "/report")
    if b.text(".periods a.current") != "Last day":
        return f"default period {b.text('.periods a.current')}"
    for pid, label, npoints in (("7d", "Last 7 days", 42),
                                ("1h", "Last hour", 30),
                                ("30d", "Last 30 days", 30)):
        b.click(f"#period-{pid}")
        if not b.url.endswith(f"/report?period={pid}"):
            return f"{pid}: url {b.url}"
        if b.text(".periods a.current") != label:
            return f"{pid}: current {b.text('.periods a.current')}"
        if BLOCKED_DANE not in blocked_rows(b):
            return f"{pid}: blocked domain gone"
        if not b.chart_drawn("chart-sent"):
            return f"{pid}: chart not drawn"
        n = len(chart_data(b, "chart-sent")["labels"])
        if not npoints <= n <= npoints + 1:
            return f"{pid}: {n} points, want {npoints}"
    return None


def page_impact(b, relay, exp):
    b.get(relay.admin_url + "/impact")
    if "Enforcement impact" not in (b.text("h1") or ""):
        return f"h1 {b.text('h1')!r}"
    doms, msgs, dpct, mpct = impact_expect(exp)
    d, m = b.text("#share-domains"), b.text("#share-messages")
    if f"{dpct:.3g} %" not in d.replace("\xa0", " ") or \
            f"1 of {doms}" not in d:
        return f"domains share {d!r}"
    if f"{mpct:.3g} %" not in m.replace("\xa0", " ") or \
            f"{msgs} of {exp['messages']}" not in m:
        return f"messages share {m!r}"
    rows = b.table("#impact")
    if len(rows) != 1 or rows[0][0] != LOGONLY or rows[0][1] != "DANE" or \
            rows[0][2] != str(msgs) or "4.7.323" not in rows[0][4] or \
            "tlsa-invalid" not in rows[0][4]:
        return f"rows {rows}"
    a = b.find(f"#impact td.analyze a")
    if not a or not a[0].get_attribute("href").endswith(
            f"/check?domain={LOGONLY}"):
        return "no analyzer link"
    if not b.find(f"#impact a[href$='/trace?domain={LOGONLY}']"):
        return "no trace link"
    b.click("#period-1h")
    if b.text(".periods a.current") != "Last hour" or \
            [r[0] for r in b.table("#impact")] != [LOGONLY]:
        return "1h period"
    return None


def page_no_errors(b, relay, exp):
    errs = []
    for path in ("/report", "/impact"):
        b.get(relay.admin_url + path)
        errs += [f"{path}: {e}" for e in b.console_errors()]
    return "; ".join(errs) if errs else None


def screenshots(b, relay, outdir):
    b.get(relay.admin_url + "/report")
    b.chart_drawn("chart-sent")
    b.chart_drawn("chart-notls")
    b.screenshot(os.path.join(outdir, "report.png"))
    b.get(relay.admin_url + "/impact")
    b.screenshot(os.path.join(outdir, "impact.png"))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    ap.add_argument("--screenshots")
    a = ap.parse_args()
    names = ["cli_report", "cli_report_text", "cli_impact",
             "cli_bad_period", "page_json_is_cli", "page_report_blocked",
             "page_report_charts", "page_report_notls",
             "page_report_periods", "page_impact", "page_no_errors"]
    try:
        relay, exp = populated(a.binary, a.world)
    except Exception as e:
        for n in names:
            report(n, False, f"no populated relay: {e}")
        return 1
    try:
        for fn in (cli_report, cli_report_text, cli_impact, cli_bad_period,
                   page_json_is_cli):
            case(fn.__name__, fn, relay, exp)
        from browser import Browser
        try:
            b = Browser()
        except Exception as e:
            for n in names[5:]:
                report(n, False, f"no browser: {e}")
            return 1
        with b:
            for fn in (page_report_blocked, page_report_charts,
                       page_report_notls, page_report_periods, page_impact,
                       page_no_errors):
                case(fn.__name__, fn, b, relay, exp)
            if a.screenshots:
                case("screenshots", screenshots, b, relay, a.screenshots)
    finally:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
