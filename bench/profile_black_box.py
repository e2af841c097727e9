"""One batch of the black-box benchmark with the daemon's CPU and, optionally, a py-spy
profile of it: ``python -m bench.profile_black_box WORKDIR [--spy] [--stream]``.

The same lab, daemon, warm-up and batch as ``bench/bench_black_box.py`` (its functions,
one latency batch, or with ``--stream`` one intake batch), so a change can be judged by
the daemon's CPU seconds per 100-ban batch, which move less with the machine's load
than the latencies do. ``--spy`` records ``py-spy record --gil -r 200 -f raw`` of the
daemon during the batch into ``WORKDIR/spy.txt`` (py-spy is in the dev extra; it needs
ptrace rights over the daemon). Prints one JSON line; records nothing in
``bench/results``.
"""

from __future__ import annotations

import json
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.bench_black_box import (
    PER_CMTS,
    TOPOLOGY,
    _exe,
    _zip_longest,
    batch,
    lab_modems,
    loadavg,
    pct,
    start_stack,
    warm_up,
)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    work = Path(argv[0])
    spy, stream = "--spy" in argv, "--stream" in argv
    by_cmts = lab_modems(TOPOLOGY)
    warm = [v[-1] for v in by_cmts.values()]
    burst = [m for i in range(PER_CMTS) for v in by_cmts.values() for m in (v[i],)]
    used = set(warm) | set(burst)
    spare = [m for row in _zip_longest([[m for m in v if m not in used]
                                        for v in by_cmts.values()]) for m in row]
    shutil.rmtree(work, ignore_errors=True)
    stack = start_stack(work)
    try:
        warm_up(stack, warm)
        recorder = None
        if spy:
            recorder = subprocess.Popen(
                [_exe("py-spy"), "record", "--gil", "-r", "200", "-f", "raw",
                 "-o", str(work / "spy.txt"), "-p", str(stack.daemon.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached before the first webhook
        b = batch(stack, burst, "pb", stream_modems=spare if stream else None)
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(30)
        out = {"load_before": b.load, "span_s": round(b.span_s, 2),
               "daemon_cpu_s": round(b.daemon_cpu_s, 2), "lab_cpu_s": round(b.lab_cpu_s, 2),
               "server_p50": round(statistics.median(b.server), 3),
               "server_p99": round(pct(b.server, 99), 3),
               "client_p50": round(statistics.median(b.client), 3),
               "load_after": loadavg()}
        if stream and b.stream:
            out["stream_p99_ms"] = round(pct(b.stream, 99) * 1000, 1)
            out["stream_p50_ms"] = round(statistics.median(b.stream) * 1000, 1)
        print(json.dumps(out))
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
