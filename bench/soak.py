#!/usr/bin/python3
"""Soak: mixed, partly hostile traffic against one running pyexecd, and what it left behind.

    bench/soak.py [--requests 50000] [--clients 8] [--progress 10] [--fail-fast]

Traffic: hello, pandas and plot scripts, syntax/missing-main/runtime errors, timeouts, memory,
fork and thread bombs, output floods, malformed HTTP and bad JSON. Every answer is checked
against the code its kind must get. Before and after (once the service is idle again):
the supervisor's RSS, open fds and threads, the processes under it (and zombies), its
cgroups, and the host's mounts. Pass = every request answered as expected, and nothing
grew beyond the bounds below. `make test` runs a short version (tests/integration).
Exit status 0 on pass.

Every --progress seconds a line says how far it got: requests done, unexpected answers so
far, the rate (overall and over the last interval), the time left at that rate, and the
service's RSS and open fds. --fail-fast stops the traffic at the first unexpected answer
(after printing it in full); the run then ends as usual, with the resource table, and fails.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PYEXECD_BIN", os.path.join(ROOT, "build", "pyexecd"))

# (weight, name, body or raw bytes, acceptable answers {(status, code)}). A bomb may end on
# whichever limit it meets first: the pids limit (the script sees EAGAIN), the time limit,
# or the memory cgroup (every forked copy is charged to it; in an ASan build, with its
# shadow memory and no RLIMIT_AS, that is the usual one).
KINDS = [
    (30, "hello", {"script": "def main():\n    print('hi')\n    return {'x': 1}\n"}, {(200, None)}),
    (15, "pandas", {"script": "import pandas as pd\ndef main():\n    return pd.Series([1, 2]).sum()\n"},
     {(200, None)}),
    (5, "syntax", {"script": "def main(:\n"}, {(400, "SYNTAX_ERROR")}),
    (5, "no-main", {"script": "x = 1\n"}, {(400, "MISSING_MAIN")}),
    (5, "exception", {"script": "def main():\n    raise ValueError('x')\n"}, {(422, "RUNTIME_ERROR")}),
    # Under load a 0.2 s request may wait in the queue past its timeout: then it is
    # answered 503 and not run (back-pressure), which is as correct as a TIMEOUT.
    (4, "timeout", {"script": "def main():\n    while True: pass\n", "timeout": 0.2},
     {(422, "TIMEOUT"), (503, "OVERLOADED")}),
    (4, "memory", {"script": "def main():\n    return list(range(100000000))\n"},
     {(422, "MEMORY_LIMIT")}),
    (3, "fork-bomb", {"script": "import os\ndef main():\n    while True:\n        try:\n"
                      "            os.fork()\n        except OSError:\n            return 'stopped'\n",
                      "timeout": 2},
     {(200, None), (422, "TIMEOUT"), (422, "RUNTIME_ERROR"), (422, "MEMORY_LIMIT"),
      (503, "OVERLOADED")}),
    (3, "thread-bomb", {"script": "import threading, time\ndef main():\n    n = 0\n    try:\n"
                        "        while True:\n            threading.Thread(target=time.sleep, args=(5,),"
                        " daemon=True).start(); n += 1\n    except RuntimeError:\n        return n\n",
                        "timeout": 3},
     {(200, None), (422, "TIMEOUT"), (422, "MEMORY_LIMIT"), (503, "OVERLOADED")}),
    (4, "flood", {"script": "def main():\n    while True: print('x' * 1000)\n"},
     {(422, "OUTPUT_LIMIT")}),
    # Routed to the plot zygote (started in the warm-up): its lane, warm plot sandboxes.
    (3, "plot", {"script": "import matplotlib.pyplot as plt\ndef main():\n"
                 "    plt.plot([1, 2, 3])\n    return 1\n"}, {(200, None)}),
    (3, "background", {"script": "import subprocess\ndef main():\n"
                       "    subprocess.Popen(['sleep', '30'])\n    return 1\n"}, {(200, None)}),
    (3, "bad-json", b'{"script": ', {(400, "INVALID_REQUEST")}),
    (3, "malformed-http", None, {"any"}),
]


def pick(rng):
    total = sum(k[0] for k in KINDS)
    x = rng.uniform(0, total)
    for kind in KINDS:
        x -= kind[0]
        if x <= 0:
            return kind
    return KINDS[-1]


def request(port, kind):
    """Sends one request of `kind`. Returns (as expected?, (status, code), the body)."""
    _, name, body, ok = kind
    if name == "malformed-http":
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(random.choice([b"GARBAGE\r\n\r\n", b"POST /execute HTTP/1.1\r\nContent-Length: 5\r\n\r\n{",
                                     b"GET / HTTP/9.9\r\n\r\n", b"\x00\xff" * 100 + b"\r\n\r\n"]))
            try:
                s.recv(4096)
            except OSError:
                pass
        return True, "any", b""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/execute", raw, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        data = json.loads(raw)
    finally:
        conn.close()
    got = (resp.status, None if resp.status == 200 else data.get("code"))
    return got in ok, got, raw


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def snapshot(pid):
    kids = descendants(pid)
    zombies = 0
    for k in kids:
        try:
            with open(f"/proc/{k}/stat") as f:
                zombies += f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            pass
    cgroups = 0
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        cgroups += sum(1 for d in dirs if d.startswith(f"pyexecd-{pid}"))
    with open("/proc/self/mountinfo") as f:
        mounts = sum(1 for _ in f)
    return {"rss_kib": proc_status(pid, "VmRSS"), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": proc_status(pid, "Threads"), "processes": len(kids), "zombies": zombies,
            "cgroups": cgroups, "host_mounts": mounts}


# What may differ between the two snapshots (absolute bounds). RSS: allocator caches and
# MHD's connection pool settle after the first thousand requests. (A sanitizer build keeps
# freed memory in quarantine: run it with --no-rss.)
BOUNDS = {"rss_kib": 16 * 1024, "fds": 0, "threads": 0, "processes": 0, "zombies": 0,
          "cgroups": 0, "host_mounts": 0}


def fd_targets(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)


ZYGOTES = 2  # the zygote, and the plot zygote (started in the warm-up)


def wait_idle(pid, warm, fds=None, deadline=60):
    """Until the service is back to its idle shape: zygotes + warm sandboxes only, and (when
    fds is given) no more open descriptors than that. A connection the client has closed
    stays open until the server reads its end, and a finished sandbox's descriptors until
    its exit is collected: a moment, not a leak. A real leak outlasts the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if len(descendants(pid)) == ZYGOTES + warm and (
                fds is None or len(os.listdir(f"/proc/{pid}/fd")) <= fds):
            return
        time.sleep(0.2)


def zygotes_up(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return int(float(next(line.split()[1] for line in text.splitlines()
                          if line.startswith("pyexecd_zygotes_up "))))


def describe_unexpected(n, kind, got, raw):
    _, name, body, ok = kind
    sent = json.dumps(body) if isinstance(body, dict) else repr(body)
    return (f"unexpected answer to request {n} ({name}): got {got}, expected one of "
            f"{sorted(ok, key=str)}\n  sent: {sent}\n  body: {raw[:2000]!r}")


def duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


class Progress(threading.Thread):
    """Prints a progress line every `interval` seconds until stop(). `counters()` returns
    (requests done, unexpected answers, requests to do)."""

    def __init__(self, pid, interval, counters):
        super().__init__(daemon=True)
        self.pid, self.interval, self.counters = pid, interval, counters
        self.stopped = threading.Event()

    def service(self):
        try:
            return (f"RSS {proc_status(self.pid, 'VmRSS')} KiB, "
                    f"{len(os.listdir(f'/proc/{self.pid}/fd'))} fds")
        except OSError:
            return "the service is gone"

    def run(self):
        t0 = last_time = time.monotonic()
        last_done = 0
        while not self.stopped.wait(self.interval):
            done, bad, total = self.counters()
            now = time.monotonic()
            rate, recent = done / (now - t0), (done - last_done) / (now - last_time)
            left = duration((total - done) / rate) if rate > 0 else "?"
            print(f"[{duration(now - t0)}] {done}/{total} done, {bad} unexpected, "
                  f"{rate:.1f} req/s ({recent:.1f} in the last {self.interval:g} s), "
                  f"{left} left; {self.service()}", flush=True)
            last_done, last_time = done, now

    def stop(self):
        self.stopped.set()
        self.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-rss", action="store_true", help="do not bound RSS (ASan builds)")
    ap.add_argument("--progress", type=float, default=10, metavar="SECONDS",
                    help="print a progress line this often (default 10)")
    ap.add_argument("--fail-fast", action="store_true",
                    help="stop the traffic at the first unexpected answer")
    args = ap.parse_args()

    pool = 2
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([BIN, "--listen", "127.0.0.1", "--port", str(port), "--log-level",
                             "warning", "--pool-size", str(pool), "--concurrency", "2",
                             "--queue-size", "1000"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("pyexecd did not start")
            time.sleep(0.1)

    # Warm up (first-time allocations; the plot zygote started, and up before any plot is
    # sent: before, a plot imports matplotlib in its sandbox, more than 256 MiB under ASan),
    # then take the "before" picture.
    for _ in range(20):
        request(port, KINDS[0])
    request(port, (0, "start-plot", {"script": "# matplotlib\ndef main():\n    return 1\n"},
                   {(200, None)}))
    while zygotes_up(port) < ZYGOTES:
        if time.monotonic() > deadline + 300:
            sys.exit("the plot zygote did not start")
        time.sleep(0.2)
    wait_idle(proc.pid, pool)
    before = snapshot(proc.pid)
    before_fds = fd_targets(proc.pid)

    lock = threading.Lock()
    counts, bad = {}, []
    remaining = [args.requests]
    total = [args.requests]  # fewer once --fail-fast stopped the traffic

    def counters():
        with lock:
            return sum(counts.values()), len(bad), total[0]

    def worker(seed):
        rng = random.Random(seed)
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            kind = pick(rng)
            try:
                ok, got, raw = request(port, kind)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                ok, got, raw = False, repr(e), b""
            with lock:
                counts[kind[1]] = counts.get(kind[1], 0) + 1
                if ok:
                    continue
                bad.append((kind[1], got))
                if args.fail_fast and len(bad) == 1:
                    total[0] -= remaining[0]
                    remaining[0] = 0
                    print(describe_unexpected(sum(counts.values()), kind, got, raw), flush=True)
                    print("--fail-fast: no new requests; waiting for those under way", flush=True)

    print(f"pyexecd {proc.pid} on port {port}: {args.requests} requests from {args.clients} "
          f"clients; before: {before}", flush=True)
    progress = Progress(proc.pid, args.progress, counters)
    t0 = time.monotonic()
    progress.start()
    threads = [threading.Thread(target=worker, args=(args.seed * 100 + i,))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    progress.stop()
    done = sum(counts.values())
    wait_idle(proc.pid, pool, fds=before["fds"])
    after = snapshot(proc.pid)
    after_fds = fd_targets(proc.pid)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)

    print(f"{done} requests, {args.clients} clients, {elapsed:.1f} s "
          f"({done / elapsed:.1f} req/s): {counts}")
    print("| resource | before | after | allowed growth |\n|---|---|---|---|")
    grew = []
    for k in BOUNDS:
        bound = "not checked" if k == "rss_kib" and args.no_rss else BOUNDS[k]
        print(f"| {k} | {before[k]} | {after[k]} | {bound} |")
        if bound != "not checked" and after[k] - before[k] > BOUNDS[k]:
            grew.append(k)
    if "fds" in grew:
        extra = list(after_fds)
        for t in before_fds:
            if t in extra:
                extra.remove(t)
        print(f"descriptors open after the run and not before: {extra}")
    print(f"unexpected answers: {len(bad)} {bad[:10]}")
    print(f"service alive after the run: {alive}; exit status on SIGTERM: {code}")
    ok = not bad and not grew and alive and code == 0
    print("PASS" if ok else f"FAIL (grew: {grew})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
