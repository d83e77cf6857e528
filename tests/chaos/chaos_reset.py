#!/usr/bin/python3
"""A receiver that resets the connection after the final dot.

The world's receivers misbehave for two mailboxes (tests/world/
receivers.py), on the first transaction of each Message-ID: for
`reset-after-dot` they store the message and then reset the connection
(RST, no reply: the receiver has the mail, the relay cannot know); for
`reset-at-dot` they reset without storing (the receiver died first).
Ordinary mail to `user` goes beside them. The relay must treat a missing
reply as a temporary failure and try again: every message arrives, the
`reset-at-dot` ones exactly once, the `reset-after-dot` ones at most twice
(the second copy is RFC 5321 §6.1's duplicate: the final dot was sent and
no reply ever came).

Usage: chaos_reset.py --binary PATH --world DIR [--messages N]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402

DESTS = cl.DESTS[:4]


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--messages", type=int, default=60)
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    name = "reset-after-dot"
    ledger = cl.Ledger(name)
    recv = cl.Receivers(args.world)
    relay = cl.ChaosRelay(args.binary, args.world,
                          "[delivery]\nretry_schedule = 1s\n", name="reset")
    rcpts = []
    for d in DESTS:
        rcpts += ["reset-after-dot@" + d, "reset-at-dot@" + d, "user@" + d]
    problems = []
    fig, bad = {}, []
    try:
        relay.start()
        load = cl.Load(ledger, [relay.port], rcpts, threads=4,
                       limit=args.messages).start()
        load.wait(120)
        load.stop()
        if not cl.wait_delivered(ledger, recv, args.drain):
            why = cl.stuck(relay)
            if why:
                problems.append(why)
        time.sleep(3.0)
        rc = relay.stop()
        if rc != 0:
            problems.append("relay stop exit %s" % rc)
        fig, bad = cl.judge(ledger, recv, [relay.queue_dir()])
        # The fault must have bitten: one reset per message to those boxes.
        with ledger.lock:
            want = {m: r["rcpt"].split("@")[0] for m, r in ledger.sent.items()
                    if r["code"] == 250 and r["rcpt"].startswith("reset-")}
        resets = {r["message_id"]: r for r in recv.resets(ledger.tag)}
        fig["resets"] = len(resets)
        missing = [m for m in want if m not in resets]
        if missing:
            problems.append("%d messages to reset-* mailboxes were never "
                            "reset (first %s)" % (len(missing), missing[0]))
        copies = recv.copies(ledger.tag)
        twice_at_dot = [m for m, box in want.items()
                        if box == "reset-at-dot" and len(copies.get(m, [])) > 1]
        if twice_at_dot:
            problems.append("%d reset-at-dot messages arrived twice"
                            % len(twice_at_dot))
    except RuntimeError as e:
        problems.append(str(e).splitlines()[0] if str(e) else "relay")
        fig, bad = cl.judge(ledger, recv)
    finally:
        relay.stop()
    san = cl.sanitizer_report(relay)
    if san:
        problems.append("sanitizer: " + san)
    return cl.verdict(name, fig, problems, bad)


if __name__ == "__main__":
    sys.exit(cl.guard("reset-after-dot", main))
