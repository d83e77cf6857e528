#!/usr/bin/python3
"""`meson install` and the service files (run by test_install.sh).

The build directory is the one of the binary given. It is installed with
`meson install --destdir TMP --no-rebuild`; then, each printing "PASS name"
or "FAIL name: why":
- the binary (sbin), both man pages, the unit, the sysusers.d account and
  the example configuration are where they belong;
- the installed binary's check-config accepts the installed example, with
  the test's own certificate and queue directory and an account that
  exists here put in place of /etc/danerelay/tls/*, /var/lib/danerelay
  and danerelay (docs/SERVICE.md: "Checking the example");
- `systemd-analyze verify` passes the unit with no message at all (it
  exits 0 on an unknown key, so any output counts as failure), with the
  ExecStart binary and the man pages taken from TMP; and it FAILS units
  broken in three ways, so that the check is not vacuous;
- the unit has what the service needs (reload = SIGHUP, the state
  directory, the sandbox), and `systemd-analyze security --offline`
  rates it at most 2.0 ("OK"): loosening the sandbox fails here.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

results = []
MAX_EXPOSURE = 2.0


def report(name, ok, why=""):
    results.append(ok)
    why = " ".join(str(why).split())
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}", flush=True)


def run(*argv, env=None, timeout=120):
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def find(dest, pattern):
    hits = glob.glob(os.path.join(dest, "**", pattern), recursive=True)
    return hits[0] if len(hits) == 1 else None


def install(builddir, dest):
    rc, out, err = run("meson", "install", "-C", builddir, "--destdir",
                       dest, "--no-rebuild", "--quiet", timeout=300)
    report("meson-install", rc == 0, f"exit {rc}: {(out + err)[-300:]}")
    files = {
        "binary": find(dest, "sbin/danerelay"),
        "man8": find(dest, "man8/danerelay.8"),
        "man5": find(dest, "man5/danerelay.conf.5"),
        "unit": find(dest, "systemd/system/danerelay.service"),
        "sysusers": find(dest, "sysusers.d/danerelay.conf"),
        "example": find(dest, "etc/danerelay/danerelay.conf.example"),
    }
    missing = [k for k, v in files.items() if v is None]
    report("installed-files", not missing, f"missing: {missing}")
    return files


def make_cert(tmp):
    tls = os.path.join(tmp, "tls")
    os.makedirs(tls)
    rc, out, err = run(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-keyout", os.path.join(tls, "key.pem"),
        "-out", os.path.join(tls, "cert.pem"),
        "-subj", "/CN=relay.example.com",
        "-addext", "subjectAltName=DNS:relay.example.com")
    os.chmod(os.path.join(tls, "key.pem"), 0o600)
    return rc == 0


def check_example(files, tmp):
    if files["binary"] is None or files["example"] is None:
        report("example-check-config", False, "not installed")
        return
    text = open(files["example"]).read()
    # The production values the example must hold.
    for want in (r"^user = danerelay$", r"^directory = /var/lib/danerelay$",
                 r"^tls_cert = /etc/danerelay/", r"^mode = log-only$",
                 r"^\[admin\]\n(#.*\n)*listen = 127\.0\.0\.1:[0-9]+$"):
        if not re.search(want, text, re.M):
            report("example-values", False, f"no line /{want}/")
            break
    else:
        report("example-values", True)
    if not make_cert(tmp):
        report("example-check-config", False, "openssl req failed")
        return
    text = text.replace("/etc/danerelay/tls/", os.path.join(tmp, "tls/"))
    text = text.replace("/var/lib/danerelay", os.path.join(tmp, "queue"))
    text = re.sub(r"^user = danerelay$", "user = nobody", text, flags=re.M)
    conf = os.path.join(tmp, "danerelay.conf")
    with open(conf, "w") as f:
        f.write(text)
    rc, out, err = run(files["binary"], "-c", conf, "check-config")
    report("example-check-config",
           rc == 0 and "configuration is valid" in out and
           "mode = log-only" in out, f"exit {rc}: {err[:300]}")
    rc, out, err = run(files["binary"], "--version")
    report("installed-version", rc == 0 and out.startswith("danerelay "),
           f"exit {rc}: {err[:200]}")


def verify(unit_text, dest, tmp, name):
    """systemd-analyze verify of unit_text, ExecStart= taken from dest.
    Returns (rc, messages)."""
    d = os.path.join(tmp, "verify-" + name)
    os.makedirs(d)
    text = re.sub(r"^ExecStart=(/\S+)",
                  lambda m: "ExecStart=" + dest + m.group(1), unit_text,
                  flags=re.M)
    path = os.path.join(d, "danerelay.service")
    with open(path, "w") as f:
        f.write(text)
    man = glob.glob(os.path.join(dest, "**", "share", "man"),
                    recursive=True)
    env = dict(os.environ, MANPATH=":".join(man),
               SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat")
    rc, out, err = run("systemd-analyze", "verify", path, env=env)
    return rc, (out + err).strip()


def check_unit(files, dest, tmp):
    if files["unit"] is None:
        report("unit-verify", False, "not installed")
        return
    unit = open(files["unit"]).read()
    rc, msgs = verify(unit, dest, tmp, "good")
    report("unit-verify", rc == 0 and msgs == "",
           f"exit {rc}: {msgs[:400]}")
    broken = {
        "typo": unit.replace("ProtectSystem=strict", "ProtectSytem=strict"),
        "no-binary": re.sub(r"^ExecStart=(\S+)", r"ExecStart=\1-missing",
                            unit, flags=re.M),
        "bad-value": unit.replace("Type=exec", "Type=bogus"),
    }
    for name, text in broken.items():
        if text == unit:
            report(f"unit-verify-fails.{name}", False, "could not break it")
            continue
        rc, msgs = verify(text, dest, tmp, name)
        report(f"unit-verify-fails.{name}", rc != 0 or msgs != "",
               "systemd-analyze verify passed a broken unit")
    need = [r"^ExecStart=/\S+/danerelay -c /\S+/danerelay\.conf serve$",
            r"^ExecReload=/bin/kill -HUP \$MAINPID$",
            r"^StateDirectory=danerelay$", r"^StateDirectoryMode=0700$",
            r"^User=danerelay$", r"^NoNewPrivileges=yes$",
            r"^ProtectSystem=strict$", r"^ProtectHome=yes$",
            r"^PrivateTmp=yes$", r"^PrivateDevices=yes$",
            r"^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$",
            r"^SystemCallFilter=@system-service$",
            r"^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$",
            r"^Restart=on-failure$", r"^LimitNOFILE="]
    lacking = [n for n in need if not re.search(n, unit, re.M)]
    report("unit-content", not lacking, f"lacks {lacking}")
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat")
    rc, out, err = run("systemd-analyze", "security", "--offline=true",
                       files["unit"], env=env)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out + err)
    if m is None:
        report("unit-exposure", False, f"exit {rc}: {(out + err)[-300:]}")
        return
    print(f"systemd-analyze security --offline: exposure {m.group(1)}")
    report("unit-exposure", float(m.group(1)) <= MAX_EXPOSURE,
           f"exposure {m.group(1)} > {MAX_EXPOSURE}")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: installcheck.py /path/to/danerelay")
    builddir = os.path.dirname(os.path.abspath(sys.argv[1]))
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        report("meson-install", False, f"{builddir} is not a build dir")
        return 1
    for tool in ("meson", "systemd-analyze", "openssl"):
        if shutil.which(tool) is None:
            report("tools", False, f"{tool} missing (scripts/deps)")
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        dest = os.path.join(tmp, "dest")
        files = install(builddir, dest)
        check_example(files, tmp)
        check_unit(files, dest, tmp)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
