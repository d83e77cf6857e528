#!/usr/bin/python3
"""The manual against the binary (run by test_man.sh).

Checks, each printing "PASS name" or "FAIL name: why":
- `danerelay --version` names meson's project version and the libraries;
- `danerelay --help` lists the commands, and `danerelay COMMAND --help`
  describes every long option the command's getopt accepts and every
  subcommand it dispatches on (read from src/cli/cmd_NAME*.c), so an option
  or verb added without its row in the command table (src/cli/cli.c) fails
  here;
- the man pages built beside the binary (BUILD/man/danerelay.8 and
  danerelay.conf.5) have every command and its options, and every key of
  `check-config`'s output in its section, with the same reload/restart
  flag; they are what the binary prints now; and groff and man find
  nothing to warn about;
- the checks themselves notice a page with a command or a key cut out.
"""
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
results = []


def report(name, ok, why=""):
    results.append(ok)
    why = " ".join(str(why).split())
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)


def run(*argv, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=env)
    return p.returncode, p.stdout, p.stderr


def project_version():
    text = open(os.path.join(TOP, "meson.build")).read()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def check_version(binary):
    want = project_version()
    for flag in ("--version", "-V"):
        rc, out, err = run(binary, flag)
        lines = out.splitlines()
        libs = ["OpenSSL", "libunbound", "libevent", "SQLite"]
        missing = [l for l in libs if not re.search(
            rf"^\s+{l} [0-9]", out, re.M)]
        if rc != 0 or not lines or lines[0] != f"danerelay {want}":
            report(f"version{flag}", False,
                   f"exit {rc}, first line {lines[:1]}, wanted "
                   f"'danerelay {want}' {err.strip()[:100]}")
        elif missing:
            report(f"version{flag}", False, f"no version of {missing}")
        else:
            report(f"version{flag}", True)


def commands_of_help(binary):
    rc, out, err = run(binary, "--help")
    if rc != 0 or "\ncommands:\n" not in out:
        report("help", False, f"exit {rc}: {(out + err)[:200]}")
        return []
    block = out.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    cmds = [l.split()[0] for l in block.splitlines() if l.strip()]
    report("help", len(cmds) >= 8, f"only {cmds}")
    for opt in ("-c FILE", "-v", "-T CATS", "--help", "--version"):
        if opt not in out:
            report("help-global-options", False, f"{opt} not described")
            break
    else:
        report("help-global-options", True)
    return cmds


def command_sources(cmd, cmds):
    """src/cli/cmd_NAME.c and the cmd_NAME_*.c files that are not
    commands of their own, as text."""
    base = "cmd_" + cmd.replace("-", "_")
    others = {"cmd_" + c.replace("-", "_") for c in cmds if c != cmd}
    texts = []
    for f in sorted(os.listdir(os.path.join(TOP, "src", "cli"))):
        stem = f[:-2]
        if not f.endswith(".c") or stem in others:
            continue
        if stem == base or stem.startswith(base + "_"):
            texts.append(open(os.path.join(TOP, "src", "cli", f)).read())
    return texts


def source_longopts(cmd, cmds):
    """The long options of cmd's getopt_long tables."""
    opts = set()
    for text in command_sources(cmd, cmds):
        opts |= set(re.findall(
            r'\{\s*"([a-z][a-z-]*)"\s*,\s*(?:no|required|optional)_argument',
            text))
    return opts


def source_verbs(cmd, cmds):
    """The subcommands cmd dispatches on: rows of its verb tables
    ({ "retry", queue_retry, ... }, { "parse", cmd_tlsrpt_parse }) and
    the words it compares an argument with (strcmp(verb, "list"))."""
    verbs = set()
    for text in command_sources(cmd, cmds):
        verbs |= set(re.findall(
            r'\{\s*"([a-z][a-z-]*)"\s*,\s*(?:cmd|queue)_[a-z_]+\s*[,}]',
            text))
        verbs |= set(re.findall(
            r'strcmp\((?:verb|argv\[[^]]+\]),\s*"([a-z][a-z-]*)"\)', text))
    return verbs


def check_command_help(binary, cmds):
    for cmd in cmds:
        rc, out, err = run(binary, cmd, "--help")
        rc2, out2, _ = run(binary, "help", cmd)
        name = f"command-help.{cmd}"
        if rc != 0 or not out.startswith(f"usage: danerelay {cmd}"):
            report(name, False, f"exit {rc}: {(out + err)[:150]}")
            continue
        if "exit status:" not in out:
            report(name, False, "no exit status")
            continue
        if rc2 != 0 or out2 != out:
            report(name, False, "`help CMD` differs from `CMD --help`")
            continue
        flat = " ".join(out.split())
        rows = [l.split()[0] for l in out.splitlines()
                if l.startswith("  ") and not l.startswith("   ")]
        missing = sorted(o for o in source_longopts(cmd, cmds)
                         if f"--{o}" not in flat)
        missing += sorted(v for v in source_verbs(cmd, cmds)
                          if v not in rows)
        report(name, not missing,
               f"options or verbs without a row: {missing} (add a row to "
               f"the command's cli_opt array in src/cli/cli.c)")


def sections(page, level):
    """{heading: body} of the .SH or .SS headings of a roff page."""
    out, cur = {}, None
    for line in page.splitlines():
        m = re.match(r"\.(SH|SS) (.*)", line)
        if m:
            if m.group(1) == level:
                cur = m.group(2).strip('"')
                out[cur] = ""
                continue
            if level == "SS" and m.group(1) == "SH":
                cur = None
        if cur is not None:
            out[cur] += line + "\n"
    return out


def roff_opt(o):
    return "\\-\\-" + o.replace("-", "\\-")


def missing_commands(page8, binary, cmds):
    ss = sections(page8, "SS")
    bad = []
    for cmd in cmds:
        if cmd not in ss:
            bad.append(cmd)
            continue
        for o in source_longopts(cmd, cmds):
            if roff_opt(o) not in ss[cmd]:
                bad.append(f"{cmd} --{o}")
        for v in source_verbs(cmd, cmds):
            if not re.search(r"^\.TP\n\\fB" + re.escape(v) + r"\b",
                             ss[cmd], re.M):
                bad.append(f"{cmd} {v}")
        if "Exit status:" not in ss[cmd]:
            bad.append(f"{cmd} exit status")
    return bad


def dumped_keys(binary, tmp):
    """[(section, key, restart)] from check-config's output."""
    conf = os.path.join(tmp, "root.conf")
    with open(conf, "w") as f:
        f.write("[server]\nallow_root = yes\n")
    rc, out, err = run(binary, "-c", conf, "check-config")
    if rc != 0:
        report("check-config-dump", False, f"exit {rc}: {err[:200]}")
        return []
    keys, section, restart = [], None, False
    for line in out.splitlines():
        m = re.match(r"\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"# (.*)$", line)
        if m and not re.match(r"# \w+ = ", line):
            restart = m.group(1).endswith("(restart to change)")
            continue
        m = re.match(r"(?:# )?(\w+) = ", line)
        if m and section:
            keys.append((section, m.group(1), restart))
    return keys


def missing_keys(page5, keys):
    ss = sections(page5, "SS")
    bad = []
    for section, key, restart in keys:
        body = ss.get(f"[{section}]")
        if body is None:
            bad.append(f"[{section}]")
            continue
        m = re.search(r"\.TP\n\\fB" + re.escape(key.replace("-", "\\-")) +
                      r"\\fR = .*?\n(?=\.TP|\Z)", body, re.S)
        if m is None:
            bad.append(f"[{section}] {key}")
        elif ("needs a restart" in m.group(0)) != restart:
            bad.append(f"[{section}] {key}: reload/restart differs from "
                       "check-config")
    if "[domain NAME]" not in ss:
        bad.append("[domain NAME]")
    return bad


def check_lint(path):
    name = os.path.basename(path)
    rc, out, err = run("groff", "-man", "-ww", "-z", path)
    report(f"groff-clean.{name}", rc == 0 and not (out + err).strip(),
           (out + err).strip()[:300])
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    rc, out, err = run("man", "--warnings", "-l", path, env=env)
    report(f"man-clean.{name}", rc == 0 and not err.strip() and
           len(out) > 1000, f"exit {rc}: {err.strip()[:300]}")


def check_pages(binary, cmds, tmp):
    mandir = os.path.join(os.path.dirname(os.path.abspath(binary)), "man")
    p8 = os.path.join(mandir, "danerelay.8")
    p5 = os.path.join(mandir, "danerelay.conf.5")
    for p in (p8, p5):
        if not os.path.exists(p):
            report("man-built", False, f"{p} missing (man/meson.build)")
            return
    report("man-built", True)
    page8, page5 = open(p8).read(), open(p5).read()
    for p, tpl, text in ((p8, "danerelay.8.in", page8),
                         (p5, "danerelay.conf.5.in", page5)):
        rc, out, err = run(binary, "man-page",
                           os.path.join(TOP, "man", tpl))
        report(f"man-current.{os.path.basename(p)}", rc == 0 and out == text,
               f"exit {rc}, {err[:100]}: the built page is not what the "
               "binary prints now")
    bad = missing_commands(page8, binary, cmds)
    report("man8-every-command", bool(cmds) and not bad, f"missing: {bad}")
    sh = sections(page8, "SH")
    need = ["OPTIONS", "COMMANDS", "SIGNALS", "EXIT STATUS", "FILES"]
    report("man8-sections", all(s in sh for s in need) and
           "SIGHUP" in sh.get("SIGNALS", "") and
           "SIGTERM" in sh.get("SIGNALS", ""),
           f"has {sorted(sh)}; SIGNALS must name SIGHUP and SIGTERM")
    opts = sh.get("OPTIONS", "")
    report("man8-global-options", all(o in opts for o in (
        "\\-c FILE", "\\-v", "\\-T CATS", "\\-\\-help", "\\-\\-version")),
        "OPTIONS lacks one of -c -v -T --help --version")
    keys = dumped_keys(binary, tmp)
    bad = missing_keys(page5, keys)
    report("man5-every-key", len(keys) > 40 and not bad,
           f"{len(keys)} keys; missing or wrong: {bad[:8]}")
    # The checks must see a cut: a page without one command, one key.
    cut8 = re.sub(r"\.SS trace\n", ".SS xtrace\n", page8)
    cut5 = re.sub(r"\.TP\n\\fBdata_timeout\\fR.*?(?=\.TP)", "", page5,
                  count=1, flags=re.S)
    report("man-check-sees-cuts",
           "trace" in missing_commands(cut8, binary, cmds) and
           any("data_timeout" in b for b in missing_keys(cut5, keys)),
           "a page with a command or key removed passed the checks")
    check_lint(p8)
    check_lint(p5)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: mancheck.py /path/to/danerelay")
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        check_version(binary)
        cmds = commands_of_help(binary)
        check_command_help(binary, cmds)
        check_pages(binary, cmds, tmp)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
