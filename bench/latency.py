#!/usr/bin/python3
"""Sequential latency of pyexecd over HTTP on loopback, and what the sandbox set-up costs.

Starts its own pyexecd (extra flags after --), sends N sequential requests of one scenario,
and prints client-side latency percentiles next to the median sandbox set-up time the
service logs for each request (clone to "every layer in place"). With --baseline it also
times `python3 -c 'import pandas'`, the floor of a fresh-interpreter-per-request design.

    bench/latency.py -n 1000 --scenario hello
    bench/latency.py -n 1000 --scenario hello -- --disable-layers netns,mountns,...
    bench/latency.py -n 20 --scenario pandas --baseline

Not a test: nothing here asserts a timing."""
import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCENARIOS = {
    "hello": 'def main():\n    print("hello")\n    return {"x": 1}\n',
    "pandas": (
        "import pandas as pd\n"
        "def main():\n"
        "    df = pd.DataFrame({'A': [1, 2, 3], 'B': [4, 5, 6]})\n"
        '    return {"mean_A": df["A"].mean(), "sum_B": df["B"].sum()}\n'
    ),
    "numpy": (
        "import numpy as np\n"
        "def main():\n"
        "    arr = np.array([1, 2, 3, 4, 5])\n"
        '    return {"mean": float(np.mean(arr)), "std": float(np.std(arr))}\n'
    ),
}


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def start(binary, flags):
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1", "--port", "0", "--log-format", "json", *flags],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    port = None
    deadline = time.monotonic() + 120
    while port is None:
        line = proc.stderr.readline()
        if not line:
            sys.exit(f"pyexecd exited: {proc.wait()}")
        rec = json.loads(line)
        if rec.get("message", "").startswith("listening") and "port" in rec:
            port = rec["port"]
        if time.monotonic() > deadline:
            sys.exit("pyexecd did not start")

    def drain():
        for ln in proc.stderr:
            lines.append(ln)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    return proc, port, lines, t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="hello")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--bin", default=os.environ.get("PYEXECD_BIN", os.path.join(ROOT, "build", "pyexecd")))
    ap.add_argument("flags", nargs="*")
    args = ap.parse_args()

    proc, port, lines, drainer = start(args.bin, args.flags)
    body = json.dumps({"script": SCENARIOS[args.scenario]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    try:
        for _ in range(10):  # warm-up: page cache, first-touch in the zygote
            conn.request("POST", "/execute", body, {"Content-Type": "application/json"})
            conn.getresponse().read()
        for _ in range(args.n):
            t0 = time.perf_counter()
            conn.request("POST", "/execute", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            lat.append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                sys.exit(f"unexpected {resp.status}: {data[:200]!r}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        drainer.join(timeout=5)

    setup = [
        json.loads(ln)["setup_ms"]
        for ln in lines
        if '"setup_ms"' in ln and json.loads(ln).get("code") == "OK"
    ][-args.n:]
    print(f"# {platform.node()} {platform.processor() or platform.machine()} "
          f"{os.cpu_count()} CPUs, kernel {platform.release()}")
    print(f"scenario={args.scenario} n={args.n} flags={' '.join(args.flags) or '(defaults)'}")
    print(f"latency ms: p50 {pct(lat, 50):.2f}  p90 {pct(lat, 90):.2f}  "
          f"p99 {pct(lat, 99):.2f}  max {max(lat):.2f}")
    if setup:
        print(f"sandbox set-up ms (clone -> ready): median {statistics.median(setup):.3f}  "
              f"p99 {pct(setup, 99):.3f}")
    if args.baseline:
        runs = []
        for _ in range(min(args.n, 20)):
            t0 = time.perf_counter()
            subprocess.run(["/usr/bin/python3", "-c", "import pandas"], check=True)
            runs.append((time.perf_counter() - t0) * 1000)
        print(f"baseline python3 -c 'import pandas': median {statistics.median(runs):.1f} ms")


if __name__ == "__main__":
    main()
