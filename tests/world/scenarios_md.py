#!/usr/bin/python3
"""Print the scenario table of docs/TEST-WORLD.md from scenarios.json, or
rewrite it in place with --update FILE (between the scenarios markers), so
the list in the doc never drifts from the data."""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"


def row(s):
    e = s["expect"]
    outcome = "%s %s" % (e["verdict"], e["status"])
    if e["result_type"]:
        outcome += " " + e["result_type"]
    extra = []
    if e["deliver_to"]:
        extra.append("to `%s`" % e["deliver_to"])
    if e.get("warnings_include"):
        extra.append("warns " + ", ".join(e["warnings_include"]))
    if "expect_sts" in s:
        sts = s["expect_sts"]
        extra.append("policy %s, STS %s%s" % (
            e.get("policy"), sts["state"],
            "/" + sts["mode"] if sts.get("mode") else ""))
    about = s["about"].replace("|", "\\|").replace("*", "\\*")
    return "| `%s` | `%s` | %s | %s | %s |" % (
        s["name"], s["domain"], outcome, "; ".join(extra), about)


def table():
    with open(os.path.join(HERE, "scenarios.json")) as f:
        scenarios = json.load(f)
    head = ["%d scenarios." % len(scenarios), "",
            "| name | domain | expected | delivery, warnings | what |",
            "|---|---|---|---|---|"]
    return "\n".join(head + [row(s) for s in scenarios])


def update(path):
    with open(path) as f:
        text = f.read()
    block = "%s\n%s\n%s" % (BEGIN, table(), END)
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda m: block,
                 text, flags=re.S)
    with open(path, "w") as f:
        f.write(new)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        update(sys.argv[2])
    else:
        print(table())
