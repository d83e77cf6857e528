#!/bin/bash
# --version, --help, COMMAND --help for every command and option, and the
# man pages danerelay(8) and danerelay.conf(5) against the binary's own
# tables: tests/integration/mancheck.py does the work (no test world).
# Usage: test_man.sh /path/to/danerelay   (prints PASS/FAIL lines)
exec /usr/bin/python3 "$(dirname "$0")/mancheck.py" "$@"
