#!/usr/bin/env python3
"""SIGHUP tells the truth: every key is applied fully or named as needing a
restart (docs/CONFIG.md, the "reload" column; src/conf/conf_keys.c).

  reload.dkim-*            [dkim] selector and key_file changed together:
                           the next signature has the new s= and verifies
                           against the world's DNS (python3-dkim)
  reload.restart-key-*     [queue] directory changed: a warning names it
                           and the directory still used, mail still flows
                           from the old queue, the new one is not created
  reload.dkim-unloadable-* a new [dkim] key that cannot be loaded: a
                           warning, the old set stays whole and signs
  reload.invalid-*         a file that does not pass check-config: the
                           reload is refused with FILE:LINE and the old
                           configuration stays whole (signing goes on)

Usage: relay_reload.py --binary build/danerelay --world DIR
"""
import argparse
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worldlib import (Relay, parse_ini, report, wait_until,  # noqa: E402
                      world_mail)
from relay_tlsrpt import world_dns  # noqa: E402

try:
    import dkim
except ImportError:  # scripts/deps installs python3-dkim
    dkim = None

SENDER = "alice@news.reporter.test"   # below the [dkim] domain: signed
RCPT = "u1@ee-311.test"                # a DANE-EE host of the world


def rewrite(relay, change):
    """Apply change(sections) to the relay's config file."""
    sections = parse_ini(open(relay.conf).read())
    change(sections)
    with open(relay.conf, "w") as f:
        for sec, kv in sections.items():
            f.write(f"[{sec}]\n")
            for k, v in kv.items():
                f.write(f"{k} = {v}\n")
            f.write("\n")


def hup(relay, timeout=20):
    """SIGHUP; the log lines of the reload, once it has ended ("reloaded"
    or "refused"), else those seen within timeout."""
    before = open(relay.log, errors="replace").read().count("\n")
    relay.proc.send_signal(signal.SIGHUP)

    def lines():
        return open(relay.log, errors="replace").read().splitlines()[before:]
    wait_until(lambda: any("configuration reloaded" in ln or
                           "reload refused" in ln for ln in lines()), timeout)
    return lines()


def has(lines, *words):
    return any(all(w in ln for w in words) for ln in lines)


def send_signed(args, relay, subject):
    """Submit one signed message; its bytes as received, or b""."""
    code, qid, msgid = relay.submit(SENDER, [RCPT], subject=subject)
    got = wait_until(lambda: world_mail(args.world, msgid), 30)
    return got[0][2] if got and code == 250 else b""


def selector_of(raw):
    head = raw.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ")
    m = re.search(rb"DKIM-Signature:[^\r\n]*\bs=([^;\s]+)", head)
    return m.group(1).decode() if m else None


def use_mail_key(args, relay):
    """[dkim] selector "mail" with its key (the world publishes both)."""
    def change(s):
        s["dkim"]["selector"] = "mail"
        s["dkim"]["key_file"] = f"{args.world}/certs/dkim-mail.key.pem"
    rewrite(relay, change)


def signed_with_mail(args, relay, dnsfunc, name, subject):
    """The next message is signed s=mail and the signature verifies."""
    raw = send_signed(args, relay, subject)
    sel = selector_of(raw)
    report(name, sel == "mail" and dkim is not None
           and dkim.verify(raw, dnsfunc=dnsfunc),
           f"selector {sel!r}, dkim module {dkim is not None}: "
           f"{raw[:300]!r}")


def check_dkim(args, relay, dnsfunc):
    raw = send_signed(args, relay, "before reload")
    report("reload.dkim-before", selector_of(raw) == "tlsrpt",
           f"selector {selector_of(raw)!r}: {raw[:200]!r}")
    use_mail_key(args, relay)
    lines = hup(relay)
    report("reload.dkim-reloaded", has(lines, "configuration reloaded"),
           lines)
    signed_with_mail(args, relay, dnsfunc,
                     "reload.dkim-new-selector-verifies", "after reload")


def check_restart_key(args, relay):
    old = parse_ini(open(relay.conf).read())["queue"]["directory"]
    new = old + "-moved"

    def move(s):
        s["queue"]["directory"] = new
    rewrite(relay, move)
    lines = hup(relay)
    report("reload.restart-key-warned",
           has(lines, "[queue] directory changed: needs a restart; "
               f"still using {old}"), lines)
    report("reload.restart-key-others-applied",
           has(lines, "configuration reloaded"), lines)
    code, qid, msgid = relay.submit(SENDER, [RCPT], subject="old queue")
    got = wait_until(lambda: world_mail(args.world, msgid), 30)
    report("reload.restart-key-mail-flows", code == 250 and bool(got),
           f"code {code}, delivered {bool(got)}: {relay.tail(5)}")
    report("reload.restart-key-old-queue",
           os.path.exists(os.path.join(old, "queue.db"))
           and not os.path.exists(new),
           f"{new} exists: {os.path.exists(new)}")


def check_dkim_unloadable(args, relay, dnsfunc):
    """A new [dkim] key that cannot be loaded: the old set stays whole."""
    bad = os.path.join(relay.dir, "not-a-key.pem")
    with open(bad, "w") as f:
        f.write("not a key\n")

    def to_bad(s):
        s["dkim"]["selector"] = "tlsrpt"
        s["dkim"]["key_file"] = bad
    rewrite(relay, to_bad)
    lines = hup(relay)
    report("reload.dkim-unloadable-warned",
           has(lines, bad, "not applied: still signing with the old")
           and has(lines, "configuration reloaded"), lines)
    signed_with_mail(args, relay, dnsfunc,
                     "reload.dkim-unloadable-old-set-kept", "unloadable key")
    use_mail_key(args, relay)


def check_invalid(args, relay, dnsfunc):
    """[dkim] domain without selector: refused, old set kept whole."""
    def half(s):
        del s["dkim"]["selector"]
    rewrite(relay, half)
    lines = hup(relay)
    report("reload.invalid-refused-with-line",
           has(lines, "reload refused", relay.conf + ":", "[dkim] domain",
               "set selector") and not has(lines, "configuration reloaded"),
           lines)
    signed_with_mail(args, relay, dnsfunc, "reload.invalid-old-config-kept",
                     "after refused reload")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--world", required=True)
    args = ap.parse_args()
    if dkim is None:
        report("reload.dkim-module", False, "python3-dkim is not installed")
    extra = "[dkim]\nsign_outbound = yes\n" \
            "[delivery]\nretry_schedule = 1h\ndelay_warning = 0\n"
    relay = Relay(args.binary, args.world, extra, name="reload").start()
    dnsfunc = world_dns(args.world)
    try:
        check_dkim(args, relay, dnsfunc)
        check_restart_key(args, relay)
        check_dkim_unloadable(args, relay, dnsfunc)
        check_invalid(args, relay, dnsfunc)
    finally:
        relay.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
