#!/usr/bin/python3
"""pyexecd's benchmark suite (`make bench`; not part of `make test`).

Drives the real HTTP service on loopback with wrk (bench/post.lua) and measures, for each
scenario: sequential latency (1 client with PAUSE_MS between requests, so that each one
finds the warm pool refilled, as a client that is not saturating the service does),
throughput and latency with 1 (back to back), 4 and 16 clients, the
CPU time the whole service spends per request (supervisor + zygote + sandboxes), and
memory (zygote RSS, private memory of a warm sandbox). Baselines measured in the same
run, so that results are ratios that survive a noisy machine:
  (a) pyexecd with --pool-size 0 (every sandbox built on the request path);
  (b) a fresh interpreter per request in a bwrap --unshare-all sandbox (the per-request
      nsjail design; nsjail is not packaged in Debian 12);
  (c) the raw ceiling: fork + exit of a process the size of the zygote, per second, on
      all cores.
Appends a Markdown report to bench/RESULTS.md and prints PASS/FAIL against the targets
of issue 4. Timings here are measurements, never test assertions.

    bench/bench.py [--seconds 5] [--quick]
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PYEXECD_BIN", os.path.join(ROOT, "build", "pyexecd"))
LUA = os.path.join(ROOT, "bench", "post.lua")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
CLK = os.sysconf("SC_CLK_TCK")
PAUSE_MS = 25  # think time of the sequential client: the pool refills in ~15-20 ms

SCENARIOS = {
    "hello": ('def main():\n    print("hello")\n    return {"x": 1}\n', 200),
    "pandas": (
        "import pandas as pd\n"
        "def main():\n"
        "    df = pd.DataFrame({'A': [1, 2, 3], 'B': [4, 5, 6]})\n"
        '    return {"mean_A": df["A"].mean(), "sum_B": df["B"].sum()}\n', 200),
    "numpy": (
        "import numpy as np\n"
        "def main():\n"
        "    arr = np.array([1, 2, 3, 4, 5])\n"
        '    return {"mean": float(np.mean(arr)), "std": float(np.std(arr))}\n', 200),
    "cpu50ms": (
        "import time\n"
        "def main():\n"
        "    end = time.process_time() + 0.05\n"
        "    n = 0\n"
        "    while time.process_time() < end:\n"
        "        n += 1\n"
        "    return n > 0\n", 200),
    "error": ("def some_function():\n    return 1\n", 400),
    # Data in, artifacts out (the service gets --max-body 4M for these):
    # a 1 MiB CSV through "files", read by pandas and summarised ...
    "csv_in": (
        "import pandas as pd\n"
        "def main():\n"
        "    df = pd.read_csv('in/data.csv')\n"
        "    return {'rows': len(df), 'mean': df.mean().round(3).to_dict()}\n", 200,
        {"files": [{"path": "in/data.csv", "content": "a,b,c\n" + "".join(
            f"{i},{i * 7 % 1000},{i % 13}.5\n" for i in range(80000))[:1 << 20].rsplit("\n", 1)[0]
            + "\n"}]}),
    # ... and a script that writes a 1 MiB file, returned with return_files.
    "file_out": (
        "def main():\n"
        "    with open('out.bin', 'wb') as f:\n"
        "        f.write(bytes(range(256)) * 4096)\n"
        "    return 1\n", 200, {"return_files": True}),
    # A matplotlib line plot, returned as a PNG figure.
    "plot": (
        "import matplotlib.pyplot as plt\n"
        "def main():\n"
        "    plt.plot([0, 1, 2, 3, 4], [3, 1, 4, 1, 5], label='series')\n"
        "    plt.title('A line plot')\n"
        "    plt.legend()\n"
        "    return 1\n", 200),
}

# A fresh interpreter per request: what a bwrap/nsjail service runs for each script.
RUNNER = (
    "import json, sys\n"
    "ns = {'__name__': '__script__'}\n"
    "exec(compile(sys.stdin.read(), '<script>', 'exec'), ns)\n"
    "print(json.dumps(ns['main'](), default=lambda o: o.item()))\n"
)
BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
         "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "--ro-bind", "/etc/alternatives",
         "/etc/alternatives", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp",
         "/usr/bin/python3", "-c", RUNNER]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu(pid, children=False):
    """utime + stime (+ cutime + cstime) of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK


def children_of(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def private_kb(pid):
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


class Service:
    def __init__(self, *flags):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [BIN, "--listen", "127.0.0.1", "--port", str(self.port), "--log-format", "json",
             "--zygote-max-spawns", "0", "--zygote-max-age", "0", "--queue-size", "1000",
             "--max-body", "4M", *flags], stderr=self.log)
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("pyexecd did not start")
                time.sleep(0.1)
        want = int(flags[flags.index("--zygotes") + 1]) if "--zygotes" in flags else 1
        preload = flags[flags.index("--preload") + 1] if "--preload" in flags else ""
        plot_off = "--plot-zygote" in flags and flags[flags.index("--plot-zygote") + 1] == "false"
        if not plot_off and "matplotlib" not in preload.split(","):
            # The plot zygote starts at the first script that names matplotlib: start it
            # now, so that a run measures the service as it is once it has seen a plot.
            self.post("# matplotlib\ndef main():\n    return 1\n")
            want += 1
        while len(self.zygotes()) < want and time.monotonic() < deadline:
            time.sleep(0.1)  # the other zygotes start after the first, one at a time
        while self.zygotes_up() < want and time.monotonic() < deadline:
            time.sleep(0.1)
        self.zygote = self.zygotes()[0]
        time.sleep(1)  # let the warm pool fill

    def post(self, script):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("POST", "/execute", json.dumps({"script": script}),
                     {"Content-Type": "application/json"})
        conn.getresponse().read()
        conn.close()

    def zygotes_up(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return int(float(next(line.split()[1] for line in text.splitlines()
                              if line.startswith("pyexecd_zygotes_up "))))

    def zygotes(self):
        return [p for p in children_of(self.proc.pid)
                if b"__zygote" in open(f"/proc/{p}/cmdline", "rb").read()]

    def cpu(self):
        return proc_cpu(self.proc.pid) + sum(proc_cpu(z, children=True) for z in self.zygotes())

    def zygote_cpu(self):
        """The zygotes' own CPU (cloning, reaping), without their sandboxes'."""
        return sum(proc_cpu(z) for z in self.zygotes())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def wrk(port, scenario, clients, seconds, pause_ms=0):
    source, expect, *extra = SCENARIOS[scenario]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as body:
        json.dump({"script": source, **(extra[0] if extra else {})}, body)
        body.flush()
        env = dict(os.environ, BENCH_BODY_FILE=body.name, BENCH_EXPECT=str(expect),
                   BENCH_PAUSE_MS=str(pause_ms))
        threads = min(clients, 2)
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, int(seconds))}s", "--timeout",
             "30s", "-s", LUA, f"http://127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["errors"] = res["bad_status"] + res["socket_errors"]
    return res


def measure_service(label, flags, seconds, scenarios, client_counts, sequential=True):
    svc = Service(*flags)
    rows = {}
    try:
        mem = {"zygote_rss_mib": status_kb(svc.zygote, "VmRSS") / 1024,
               "zygotes_rss_mib": [status_kb(z, "VmRSS") / 1024 for z in svc.zygotes()]}
        warm = [p for p in children_of(svc.zygote)]
        if warm:
            mem["warm_private_mib"] = statistics.median(private_kb(p) for p in warm) / 1024
        for sc in scenarios:
            if sequential:
                r = wrk(svc.port, sc, 1, seconds, PAUSE_MS)
                rows[(sc, "seq")] = r
                print(f"{label:10} {sc:8} sequential ({PAUSE_MS} ms pause)  "
                      f"p50 {r['p50'] / 1000:7.2f} ms  p90 {r['p90'] / 1000:7.2f} ms  "
                      f"p99 {r['p99'] / 1000:7.2f} ms  errors {r['errors']}", flush=True)
            for clients in client_counts:
                cpu0, zcpu0 = svc.cpu(), svc.zygote_cpu()
                r = wrk(svc.port, sc, clients, seconds)
                r["cpu_ms_per_req"] = (svc.cpu() - cpu0) * 1000 / max(r["requests"], 1)
                r["zygote_ms_per_req"] = ((svc.zygote_cpu() - zcpu0) * 1000 /
                                          max(r["requests"], 1))
                rows[(sc, clients)] = r
                print(f"{label:10} {sc:8} c={clients:<3} {r['rps']:8.1f} req/s  "
                      f"p50 {r['p50'] / 1000:7.2f} ms  p99 {r['p99'] / 1000:7.2f} ms  "
                      f"errors {r['errors']}  cpu/req {r['cpu_ms_per_req']:.2f} ms", flush=True)
    finally:
        svc.stop()
    return rows, mem


def bwrap_baseline(scenario, n):
    source = SCENARIOS[scenario][0]
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(BWRAP, input=source, capture_output=True, text=True, check=True)
        lat.append((time.perf_counter() - t0) * 1000)
    return statistics.median(lat)


def bwrap_throughput(scenario, workers, seconds):
    source = SCENARIOS[scenario][0]
    end = time.monotonic() + seconds
    done = 0
    running = []
    while time.monotonic() < end or running:
        while time.monotonic() < end and len(running) < workers:
            p = subprocess.Popen(BWRAP, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, text=True)
            p.stdin.write(source)
            p.stdin.close()
            running.append(p)
        for p in running[:]:
            if p.poll() is not None:
                running.remove(p)
                done += 1
        time.sleep(0.005)
    return done / seconds


FORK_CEILING = (
    "import os, sys, time\n"
    "import numpy, pandas\n"
    "end = time.monotonic() + float(sys.argv[1]); n = 0\n"
    "while time.monotonic() < end:\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        os._exit(0)\n"
    "    os.waitpid(pid, 0); n += 1\n"
    "print(n)\n"
)


def fork_ceiling(seconds):
    """fork + exit + wait of a numpy+pandas-sized process, on every core at once."""
    env = dict(os.environ, NUMEXPR_MAX_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", FORK_CEILING, str(seconds)],
                              stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(os.cpu_count())]
    return sum(int(p.communicate()[0]) for p in procs) / seconds


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "cpu": model, "cores": os.cpu_count(),
            "kernel": platform.release(), "load": os.getloadavg()[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 5)))
    ap.add_argument("--quick", action="store_true", help="hello and pandas only")
    args = ap.parse_args()
    secs = args.seconds
    scenarios = ["hello", "pandas"] if args.quick else list(SCENARIOS)
    m = machine()
    print(f"# {m['date']} commit {m['commit']}: {m['cpu']}, {m['cores']} cores, "
          f"kernel {m['kernel']}, load {m['load']:.2f}")

    pool, mem = measure_service("pool", [], secs, scenarios, [1, 4, 16])
    cold, _ = measure_service("pool=0", ["--pool-size", "0"], secs, scenarios, [1, 4])
    # Scaling: the same service with one and with two zygotes (--zygotes), hello and pandas.
    scale = {z: measure_service(f"zygotes={z}", ["--zygotes", str(z)], secs,
                                ["hello", "pandas"], [4, 16], sequential=False)[0]
             for z in (1, 2)}
    ceiling = fork_ceiling(secs)
    print(f"fork+exit ceiling: {ceiling:.0f}/s on {m['cores']} cores")
    bw = {sc: bwrap_baseline(sc, 20 if sc != "hello" else 30) for sc in ("hello", "pandas")}
    bw_rps = bwrap_throughput("pandas", 4, max(secs, 5))
    print(f"bwrap per request: hello p50 {bw['hello']:.1f} ms, pandas p50 {bw['pandas']:.1f} ms, "
          f"pandas {bw_rps:.1f} req/s with 4 workers")

    def ms(v):
        return v / 1000.0

    targets = [
        ("pandas p50 <= 2 ms sequential", ms(pool[("pandas", "seq")]["p50"]) <= 2),
        ("pandas p99 <= 8 ms sequential", ms(pool[("pandas", "seq")]["p99"]) <= 8),
        ("pandas p50 >= 200x faster than bwrap",
         bw["pandas"] / ms(pool[("pandas", "seq")]["p50"]) >= 200),
        ("hello p50 <= 1 ms sequential", ms(pool[("hello", "seq")]["p50"]) <= 1),
        ("hello >= 400 req/s at 4 clients", pool[("hello", 4)]["rps"] >= 400),
        ("pandas >= 300 req/s at 4 clients", pool[("pandas", 4)]["rps"] >= 300),
        ("hello >= 50% of fork ceiling", pool[("hello", 4)]["rps"] >= 0.5 * ceiling),
        ("pandas >= 50% of fork ceiling", pool[("pandas", 4)]["rps"] >= 0.5 * ceiling),
        ("zero errors at 4 clients",
         all(pool[(sc, 4)]["errors"] == 0 for sc in scenarios)),
        ("pandas p50 <= 2 ms, 1 client back to back", ms(pool[("pandas", 1)]["p50"]) <= 2),
        ("hello p50 <= 1 ms, 1 client back to back", ms(pool[("hello", 1)]["p50"]) <= 1),
        ("hello CPU/request <= 4 ms", pool[("hello", 4)]["cpu_ms_per_req"] <= 4),
        ("zygote RSS <= 100 MiB (each zygote)", max(mem["zygotes_rss_mib"]) <= 100),
        ("warm sandbox private memory <= 4 MiB", mem.get("warm_private_mib", 1e9) <= 4),
    ]

    lines = [
        f"\n## {m['date']} — commit {m['commit']}\n",
        f"{m['cpu']}, {m['cores']} cores, kernel {m['kernel']}; load average at start "
        f"{m['load']:.2f}; {secs:g} s per wrk run; every sandbox layer on.\n",
        f"Sequential latency: one client, {PAUSE_MS} ms between requests (so each finds the "
        "warm pool refilled; the pause is not in the latency), ms:\n",
        "| scenario | pool p50 | p90 | p99 | max | pool=0 p50 | p90 | p99 | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scenarios:
        r, cr = pool[(sc, "seq")], cold[(sc, "seq")]
        lines.append(f"| {sc} | {ms(r['p50']):.2f} | {ms(r['p90']):.2f} | {ms(r['p99']):.2f} | "
                     f"{ms(r['max']):.2f} | {ms(cr['p50']):.2f} | {ms(cr['p90']):.2f} | "
                     f"{ms(cr['p99']):.2f} | {r['errors'] + cr['errors']} |")
    lines += [
        "",
        "Throughput (clients back to back):\n",
        "| scenario | clients | pool req/s | p50 ms | p90 ms | p99 ms | max ms | errors | "
        "CPU ms/req | pool=0 req/s | pool=0 p50 ms | pool=0 p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scenarios:
        for c in (1, 4, 16):
            r = pool[(sc, c)]
            cr = cold.get((sc, c))
            cold_cols = (f"{cr['rps']:.0f} | {ms(cr['p50']):.2f} | {ms(cr['p99']):.2f}"
                         if cr else "– | – | –")
            lines.append(f"| {sc} | {c} | {r['rps']:.0f} | {ms(r['p50']):.2f} | "
                         f"{ms(r['p90']):.2f} | {ms(r['p99']):.2f} | {ms(r['max']):.2f} | "
                         f"{r['errors']} | {r['cpu_ms_per_req']:.2f} | {cold_cols} |")
    lines += [
        "",
        "Scaling (`--zygotes 1` and `2`, clients back to back; \"zygote ms/req\" is the zygotes' "
        "own CPU, cloning and reaping, per request; a zygote clones one sandbox at a time, so "
        "one zygote serves at most 1000 / that many requests per second):\n",
        "| scenario | clients | zygotes | req/s | p50 ms | p99 ms | errors | CPU ms/req | "
        "zygote ms/req | one zygote's ceiling req/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in ("hello", "pandas"):
        for c in (4, 16):
            for z in (1, 2):
                r = scale[z][(sc, c)]
                lines.append(f"| {sc} | {c} | {z} | {r['rps']:.0f} | {ms(r['p50']):.2f} | "
                             f"{ms(r['p99']):.2f} | {r['errors']} | {r['cpu_ms_per_req']:.2f} | "
                             f"{r['zygote_ms_per_req']:.2f} | "
                             f"{1000 / r['zygote_ms_per_req'] if r['zygote_ms_per_req'] else 0:.0f} |")
    lines += [
        "",
        f"Baselines: (b) bwrap + fresh python3 per request: hello p50 {bw['hello']:.1f} ms, "
        f"pandas p50 {bw['pandas']:.1f} ms, pandas {bw_rps:.1f} req/s with 4 workers; "
        f"(c) fork+exit ceiling of a numpy+pandas-sized process: {ceiling:.0f}/s on "
        f"{m['cores']} cores.",
        f"Ratios: pandas sequential p50 {bw['pandas'] / ms(pool[('pandas', 'seq')]['p50']):.0f}x "
        f"faster than (b) ({bw['pandas'] / ms(pool[('pandas', 1)]['p50']):.0f}x back to back); "
        f"hello at 4 clients = {pool[('hello', 4)]['rps'] / ceiling:.0%} of (c), pandas "
        f"{pool[('pandas', 4)]['rps'] / ceiling:.0%}; pool vs pool=0 sequential hello p50 "
        f"{ms(cold[('hello', 'seq')]['p50']) / ms(pool[('hello', 'seq')]['p50']):.1f}x.",
        f"Memory: zygote RSS {mem['zygote_rss_mib']:.1f} MiB (every zygote: "
        f"{', '.join(f'{v:.1f}' for v in mem['zygotes_rss_mib'])} MiB, the last the plot "
        f"zygote); warm sandbox private "
        f"{mem.get('warm_private_mib', float('nan')):.2f} MiB.",
        "",
        "| target | result |",
        "|---|---|",
    ] + [f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in targets]
    report = "\n".join(lines) + "\n"
    with open(RESULTS, "a") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
