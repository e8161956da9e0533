#!/usr/bin/env python3
"""Memory as a user's ps and smem see it, sampled every 100 ms, peaks kept.

usage: memwatch.py OUT NAME=PID [NAME=PID ...]
Until SIGTERM (or every process is gone), reads each process's
/proc/PID/smaps_rollup: RSS, PSS (shared pages divided among their users) and
USS (private pages: what the process alone costs), and VmHWM. Then writes OUT,
one line a process: "NAME peak_rss_kb peak_pss_kb peak_uss_kb uss_peak_at_s",
and a line "sum - peak_pss_sum_kb peak_uss_sum_kb" with the peaks of the sums.
"""
import signal
import sys
import time


def sample(pid):
    v = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    v[parts[0][:-1]] = int(parts[1])
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    v["VmHWM"] = int(line.split()[1])
    except OSError:
        return None
    return (v.get("VmHWM", v.get("Rss", 0)), v.get("Pss", 0),
            v.get("Private_Clean", 0) + v.get("Private_Dirty", 0))


def main():
    out = sys.argv[1]
    procs = [a.split("=", 1) for a in sys.argv[2:]]
    peak = {name: [0, 0, 0, 0.0] for name, _ in procs}
    start = time.monotonic()
    sums = [0, 0]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        alive = 0
        pss_sum = uss_sum = 0
        for name, pid in procs:
            s = sample(pid)
            if s is None:
                continue
            alive += 1
            p = peak[name]
            if s[2] > p[2]:
                p[3] = time.monotonic() - start
            for i in range(3):
                p[i] = max(p[i], s[i])
            pss_sum += s[1]
            uss_sum += s[2]
        sums = [max(sums[0], pss_sum), max(sums[1], uss_sum)]
        if not alive:
            break
        time.sleep(0.1)
    with open(out, "w") as f:
        for name, _ in procs:
            f.write("%s %d %d %d %.1f\n" % (name, *peak[name]))
        f.write("sum - %d %d\n" % tuple(sums))


if __name__ == "__main__":
    main()
