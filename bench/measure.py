"""What the benchmark measures of a sender's processes, read from /proc:
CPU seconds (utime+stime of the live processes plus cutime+cstime of the
top one, so children that already exited count too) and memory (the sum of
Pss from smaps_rollup of every process, sampled in a thread; the peak is
kept).  A sender is described by its top pid; its processes are that pid
and all its descendants.
"""

import os
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK,
            (int(fields[13]) + int(fields[14])) / TICK)


def tree(top):
    """top and all its live descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
    out, stack = [], [top]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def cpu_seconds(top):
    """CPU of the whole tree so far: reaped children are in top's cutime."""
    total = 0.0
    for pid in tree(top):
        st = _stat(pid)
        if st is None:
            continue
        total += st[1] + (st[2] if pid == top else 0.0)
    return total


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


class Sampler:
    """Peak summed PSS of a process tree, and its process count, sampled
    every `every` seconds while running; plus CPU between start and stop."""

    def __init__(self, top, every=0.25):
        self.top, self.every = top, every
        self.peak_kib = self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.cpu0 = cpu_seconds(self.top)
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def sample(self):
        pids = tree(self.top)
        self.peak_kib = max(self.peak_kib, pss_kib(pids))
        self.peak_procs = max(self.peak_procs, len(pids))

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.sample()
        self.cpu = cpu_seconds(self.top) - self.cpu0
        self.seconds = time.monotonic() - self.t0
        return self
