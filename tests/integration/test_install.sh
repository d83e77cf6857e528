#!/bin/bash
# `meson install` of the build the binary belongs to, into a temporary
# DESTDIR: binary, man pages, systemd unit (checked with systemd-analyze
# verify, and shown to fail when broken) and the example configuration
# (accepted by the installed binary's check-config). No test world.
# Usage: test_install.sh /path/to/danerelay   (prints PASS/FAIL lines)
exec /usr/bin/python3 "$(dirname "$0")/installcheck.py" "$@"
