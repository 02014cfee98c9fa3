#!/usr/bin/python3
"""A/B of two pyexecd binaries on a noisy machine (not part of `make test`).

Both serve at once (default flags, two slots each, their own uid ranges); one client
sends each request to one and then the other (alternating which goes first), so every
pair of requests sees the same machine. Consecutive runs of bench.py, one binary after
the other, measured load swings on a shared 2-core VM rather than the binaries; this
measures the difference between them. Prints median and p90 latency and the CPU per
request of each service (supervisor, zygote and sandboxes), and the ratios B/A.

    bench/paired.py A_BINARY B_BINARY [--scenario hello] [--requests 400] [--pause-ms 0]
                    [--a-flags '--preload numpy,pandas'] [--b-flags ...]

The same binary twice with different flags compares options (e.g. a preload list).

Scenarios are bench.py's, plus `subprocess` (a script that runs python3).
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

bench.SCENARIOS["subprocess"] = (
    "import subprocess, sys\n"
    "def main():\n"
    "    return subprocess.run([sys.executable, '-c', 'import os']).returncode\n", 200)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--scenario", default="hello", choices=sorted(bench.SCENARIOS))
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--pause-ms", type=float, default=0)
    ap.add_argument("--a-flags", default="", help="more options for A's service, e.g. "
                    "'--preload numpy,pandas' (one string, split at spaces)")
    ap.add_argument("--b-flags", default="", help="the same for B")
    args = ap.parse_args()

    source, expect, *extra = bench.SCENARIOS[args.scenario]
    body = json.dumps({"script": source, **(extra[0] if extra else {})})
    services = {}
    try:
        for i, label in enumerate(("A", "B")):
            bench.BIN = getattr(args, label.lower())
            services[label] = bench.Service("--concurrency", "2", "--uid-base",
                                            str(330000 + 10000 * i),
                                            *getattr(args, label.lower() + "_flags").split())
        conns = {label: http.client.HTTPConnection("127.0.0.1", svc.port, timeout=60)
                 for label, svc in services.items()}
        latency = {label: [] for label in services}
        cpu0 = {label: svc.cpu() for label, svc in services.items()}
        for i in range(args.requests):
            for label in ("A", "B") if i % 2 == 0 else ("B", "A"):
                t0 = time.perf_counter()
                conns[label].request("POST", "/execute", body,
                                     {"Content-Type": "application/json"})
                resp = conns[label].getresponse()
                resp.read()
                if resp.status != expect:
                    sys.exit(f"{label}: HTTP {resp.status}, expected {expect}")
                latency[label].append((time.perf_counter() - t0) * 1000)
                if args.pause_ms:
                    time.sleep(args.pause_ms / 1000)
        cpu = {label: (svc.cpu() - cpu0[label]) * 1000 / args.requests
               for label, svc in services.items()}
    finally:
        for svc in services.values():
            svc.stop()

    p50 = {label: statistics.median(v) for label, v in latency.items()}
    for label in ("A", "B"):
        q = sorted(latency[label])
        print(f"{label} {getattr(args, label.lower())}: p50 {p50[label]:.2f} ms  "
              f"p90 {q[len(q) * 9 // 10]:.2f} ms  cpu/request {cpu[label]:.2f} ms")
    print(f"B/A ({args.scenario}, {args.requests} pairs, pause {args.pause_ms:g} ms): "
          f"p50 {p50['B'] / p50['A']:.3f}  cpu/request {cpu['B'] / cpu['A']:.3f}  "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
