"""Printing bench/run's results: one line per measured round, and the
side-by-side table (medians over the rounds) with the danerelay/Postfix
ratios and the targets of issue 5 marked met or not met."""

import statistics

# (label, phase, key, format, target ratio, True if higher is better)
ROWS = [
    ("end-to-end msgs/s", "e2e", "rate", "%.0f", 2.0, True),
    ("held-queue drain msgs/s", "drain", "rate", "%.0f", 2.0, True),
    ("CPU s / 1000 msgs (end to end)", "e2e", "cpu_per_1000", "%.2f", 0.25, False),
    ("CPU s / 1000 msgs (drain)", "drain", "cpu_per_1000", "%.2f", 0.25, False),
    ("peak memory MiB (sum of PSS)", "peak", "peak_pss_mib", "%.1f", 0.10, False),
    ("processes at peak", "e2e", "peak_procs", "%.0f", None, False),
    ("DNS queries / msg (cold cache)", "e2e", "dns_per_msg", "%.2f", None, False),
    ("DNS queries / msg (drain)", "drain", "dns_per_msg", "%.2f", None, False),
    ("TLS handshakes / msg (e2e)", "e2e", "tls_per_msg", "%.3f", None, False),
    ("TLS handshakes / msg (drain)", "drain", "tls_per_msg", "%.3f", None, False),
    ("  of which resumed (drain)", "drain", "resumed_share", "%.0f%%", None, False),
    ("resolver CPU s / 1000 msgs (e2e)", "e2e", "resolver_per_1000", "%.2f", None, False),
]


def value(rnd, phase, key):
    if phase == "peak":
        return max(rnd["e2e"][key], rnd["drain"][key])
    p = rnd[phase]
    if key == "resumed_share":
        hs = p["tls_full"] + p["tls_resumed"]
        return 100.0 * p["tls_resumed"] / hs if hs else 0.0
    if key == "resolver_per_1000":
        return p["resolver_cpu"] * 1000.0 / p["messages"]
    return p[key]


def medians(rounds, kind):
    mine = [r for r in rounds if r["sender"] == kind]
    if not mine:
        return None
    return {label: statistics.median(value(r, phase, key) for r in mine)
            for label, phase, key, *_ in ROWS}


def verdict(ratio, target, higher):
    if target is None or ratio is None:
        return ""
    met = ratio >= target if higher else ratio <= target
    return ("met" if met else "NOT met") + " (%s%g)" % (">=" if higher else "<=",
                                                     target)


def table(result):
    """Markdown table of the medians; returns the text."""
    rounds = result["rounds"]
    dr, pf = medians(rounds, "danerelay"), medians(rounds, "postfix")
    lines = ["| %d messages, %d domains (median of %d) | danerelay | Postfix "
             "| danerelay/Postfix | target |"
             % (result["messages"], result["domains"],
                len([r for r in rounds if r["sender"] == "danerelay"])),
             "|---|---:|---:|---:|---|"]
    for label, _, _, fmt, target, higher in ROWS:
        a = dr[label]
        b = pf[label] if pf else None
        ratio = a / b if b else None
        lines.append("| %s | %s | %s | %s | %s |" % (
            label, fmt % a, fmt % b if b is not None else "-",
            "%.2f" % ratio if ratio is not None else "-",
            verdict(ratio, target, higher)))
    ok = {k: all(r["ok"] for r in rounds if r["sender"] == k)
          for k in ("danerelay", "postfix") if (pf or k == "danerelay")}
    lines.append("| every message arrived, over TLS, DANE-verified | %s | %s "
                 "| | |" % ("yes" if ok.get("danerelay") else "NO",
                            ("yes" if ok.get("postfix") else "NO") if pf else "-"))
    return "\n".join(lines)


def print_round(r):
    e, d = r["e2e"], r["drain"]
    print("%-9s round %d: e2e %6.0f msgs/s cpu %5.2f s/1000 pss %6.1f MiB "
          "dns %.2f/msg tls %.3f/msg | drain %6.0f msgs/s cpu %5.2f s/1000 "
          "pss %6.1f MiB tls %.3f/msg (%d resumed) | verified %d/%d %s"
          % (r["sender"], r["round"], e["rate"], e["cpu_per_1000"],
             e["peak_pss_mib"], e["dns_per_msg"], e["tls_per_msg"],
             d["rate"], d["cpu_per_1000"], d["peak_pss_mib"], d["tls_per_msg"],
             d["tls_resumed"], r["dane_verified"], 2 * e["messages"],
             "ok" if r["ok"] else "FAILED"), flush=True)


def print_compare(result):
    print()
    print(table(result), flush=True)


def print_slow(r):
    print("slow receivers %.1f s/round trip, %d messages held, %d domains: "
          "peak %d open sessions, drained in %.1f s (%.0f msgs/s), idle PSS "
          "%.1f MiB, peak PSS %.1f MiB, %.1f KiB/session, cpu %.2f s/1000, "
          "%s" % (r["delay"], r["sessions_wanted"], r["domains"],
                  r["open_peak"], r["seconds"], r["rate"], r["idle_pss_mib"],
                  r["peak_pss_mib"], r["kib_per_session"], r["cpu_per_1000"],
                  "ok" if r["ok"] else "FAILED"), flush=True)


def print_drain(r):
    print("%s: drain of %d held messages to %d domains: %.1f s, %.0f msgs/s, "
          "cpu %.2f s/1000, peak PSS %.1f MiB, tls %.3f/msg, %s"
          % (r["sender"], r["messages"], r["domains"], r["seconds"], r["rate"],
             r["cpu_per_1000"], r["peak_pss_mib"], r["tls_per_msg"],
             "ok" if r["ok"] else "FAILED"), flush=True)


def print_queue_scale(r):
    """Cost per message of the big drain against the small ones."""
    print("%s: per message, drain of %d against %d (median of %d): "
          "time %.2fx, CPU %.2fx (%.3f against %.3f s/1000) - target "
          "within 20%%: %s" % (
              r["sender"], r["messages"], r["small"][0]["messages"],
              len(r["small"]), r["time_ratio"], r["cpu_ratio"],
              r["cpu_per_1000"], r["small_cpu_per_1000"],
              "met" if r["time_ratio"] <= 1.2 and r["cpu_ratio"] <= 1.2
              else "NOT met"), flush=True)


def print_scale(out):
    print("\nby number of destination domains:")
    for r in out["domains"]:
        print(table(r) + "\n")
