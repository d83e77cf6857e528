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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaoslib as cl  # noqa: E402


def main():
    ap = cl.common_args(argparse.ArgumentParser())
    ap.add_argument("--messages", type=int, default=60)
    ap.add_argument("--drain", type=float, default=60)
    args = ap.parse_args()
    sc = cl.Scenario("reset-after-dot", args)
    relay = sc.relay("[delivery]\nretry_schedule = 1s\n", "reset")
    rcpts = []
    for d in cl.DESTS[:4]:
        rcpts += ["reset-after-dot@" + d, "reset-at-dot@" + d, "user@" + d]

    def body():
        relay.start()
        cl.Load(sc.ledger, [relay.port], rcpts, threads=4,
                limit=args.messages).start().wait(120)
        sc.drain(relay, args.drain, settle=3.0)
        # The fault must have bitten: one reset per message to those boxes.
        want = {m: r["rcpt"].split("@")[0] for m, r in sc.ledger.sent.items()
                if r["code"] == 250 and r["rcpt"].startswith("reset-")}
        resets = {r["message_id"] for r in sc.recv.resets(sc.ledger.tag)}
        sc.fig["resets"] = len(resets)
        missing = [m for m in want if m not in resets]
        if missing:
            sc.problem("%d messages to reset-* mailboxes were never reset "
                       "(first %s)" % (len(missing), missing[0]))
        copies = sc.recv.copies(sc.ledger.tag)
        twice = [m for m, box in want.items()
                 if box == "reset-at-dot" and len(copies.get(m, [])) > 1]
        if twice:
            sc.problem("%d reset-at-dot messages arrived twice" % len(twice))

    return sc.run(body)


if __name__ == "__main__":
    sys.exit(cl.guard("reset-after-dot", main))
