#!/usr/bin/python3
"""Where a request's CPU goes, step by step (`make bench-phases`; not part of `make test`).

Needs a build with `-Dphase_trace=true` (make bench-phases makes one in build-phases/):
each sandbox then writes one line to its own stderr, before its result frame,

    pyexecd-phases after_fork=<us>/<faults> layers=... warmup=... reseed=... job=... run=... reap=...

the CPU time (CLOCK_THREAD_CPUTIME_ID) and minor page faults of each step of its life:
after_fork (PyOS_AfterFork_Child), layers (every sandbox layer: cgroups, namespaces,
mounts, rlimits, credentials, seccomp), warmup (the warm pool's throw-away script),
reseed, job (reading the job), run (the script through the harness), reap (PID 1 killing
and reaping the rest of its namespace). What no sandbox can see of itself comes from
/proc: the supervisor's CPU, the zygote's own CPU (mostly clone()), and all sandboxes'
CPU, whose remainder after the steps above is their exit.

For each scenario: the steps of warm sandboxes (pool refilled between requests, 25 ms
pause) and of cold ones (--pool-size 0, 4 clients), medians; then CPU per request of each
process at 4 clients. Prints Markdown and appends it to bench/RESULTS.md.

    bench/phases.py [--requests 200]
"""
import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import subprocess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

PHASES = ["after_fork", "layers", "warmup", "reseed", "job", "run", "reap"]
LINE = re.compile(r"pyexecd-phases((?: \w+=\d+/\d+)+)")
PAUSE_MS = 25


def requests(port, scenario, clients, seconds, pause_ms):
    """Runs wrk with a Lua script that keeps every response's phase line."""
    source, _ = bench.SCENARIOS[scenario]
    lua = r"""
wrk.method = "POST"
wrk.path = "/execute"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY")
local pause = tonumber(os.getenv("PAUSE_MS"))
local out = io.open(os.getenv("OUT") .. tostring(math.random(1, 1e9)), "w")
if pause > 0 then
        function delay() return pause end
end
function response(status, headers, body)
        local line = body:match("pyexecd%-phases[^\\]*")
        if line then out:write(line, "\n") end
end
"""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "phases.lua")
        with open(script, "w") as f:
            f.write(lua)
        env = dict(os.environ, BODY=json.dumps({"script": source}), PAUSE_MS=str(pause_ms),
                   OUT=os.path.join(tmp, "out."))
        subprocess.run(["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds}s",
                        "--timeout", "30s", "-s", script, f"http://127.0.0.1:{port}"],
                       env=env, capture_output=True, text=True, check=True)
        samples = []
        for name in os.listdir(tmp):
            if name.startswith("out."):
                with open(os.path.join(tmp, name)) as f:
                    for line in f:
                        m = LINE.search(line)
                        if m:
                            samples.append({k: tuple(map(int, v.split("/")))
                                            for k, v in (kv.split("=") for kv in
                                                         m.group(1).split())})
    return samples


def medians(samples):
    out = {}
    for p in PHASES:
        vals = [s[p] for s in samples if p in s]
        if vals:
            out[p] = (statistics.median(v[0] for v in vals) / 1000.0,
                      statistics.median(v[1] for v in vals))
    return out


def cpu_split(flags, scenario, seconds):
    """CPU ms per request of supervisor, zygote (own) and sandboxes (all), 4 clients."""
    svc = bench.Service(*flags)
    try:
        s0 = bench.proc_cpu(svc.proc.pid)
        z0 = bench.proc_cpu(svc.zygote)
        a0 = bench.proc_cpu(svc.zygote, children=True)
        r = bench.wrk(svc.port, scenario, 4, seconds)
        n = max(r["requests"], 1)
        s1 = bench.proc_cpu(svc.proc.pid)
        z1 = bench.proc_cpu(svc.zygote)
        a1 = bench.proc_cpu(svc.zygote, children=True)
    finally:
        svc.stop()
    return {"supervisor": (s1 - s0) * 1000 / n, "zygote": (z1 - z0) * 1000 / n,
            "sandboxes": ((a1 - z1) - (a0 - z0)) * 1000 / n, "rps": r["rps"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    args = ap.parse_args()
    m = bench.machine()
    lines = [f"\n## Per-step breakdown, {m['date']} — commit {m['commit']}\n",
             f"{m['cpu']}, {m['cores']} cores, kernel {m['kernel']}; load average at start "
             f"{m['load']:.2f}; build with -Dphase_trace=true (bench/phases.py). CPU ms / "
             "minor faults per step, medians. Warm: pool refilled between requests "
             f"({PAUSE_MS} ms pause), the steps up to reseed happened before the request "
             "arrived. Cold: --pool-size 0, 4 clients.\n",
             "| scenario | sandbox | " + " | ".join(PHASES) + " | requests |",
             "|---|---|" + "---|" * len(PHASES) + "---|"]
    split_lines = ["", "CPU per request at 4 clients (ms), from /proc; the sandboxes' "
                   "remainder after the steps above is their exit:", "",
                   "| scenario | pool | req/s | supervisor | zygote (clone) | sandboxes | "
                   "steps in sandboxes | exit and rest |", "|---|---|---|---|---|---|---|---|"]
    for sc in ("hello", "pandas"):
        for label, flags, clients, pause in (("warm", [], 1, PAUSE_MS),
                                             ("cold", ["--pool-size", "0"], 4, 0)):
            svc = bench.Service(*flags)
            try:
                samples = requests(svc.port, sc, clients, args.seconds, pause)
            finally:
                svc.stop()
            med = medians(samples)
            cells = " | ".join(f"{med[p][0]:.2f} / {med[p][1]:.0f}" if p in med else "–"
                               for p in PHASES)
            lines.append(f"| {sc} | {label} | {cells} | {len(samples)} |")
            print(lines[-1], flush=True)
            if label == "cold":
                steps_cold = sum(v[0] for v in med.values())
        for label, flags in (("2 (default)", []), ("0", ["--pool-size", "0"])):
            c = cpu_split(flags, sc, args.seconds)
            steps = steps_cold  # at 4 clients nearly every sandbox is cold
            split_lines.append(
                f"| {sc} | {label} | {c['rps']:.0f} | {c['supervisor']:.2f} | "
                f"{c['zygote']:.2f} | {c['sandboxes']:.2f} | {steps:.2f} | "
                f"{c['sandboxes'] - steps:.2f} |")
            print(split_lines[-1], flush=True)
    report = "\n".join(lines + split_lines) + "\n"
    with open(bench.RESULTS, "a") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
