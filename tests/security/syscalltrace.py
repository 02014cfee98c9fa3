"""The system calls a script's sandbox makes once its seccomp filter is installed, seen
with strace: `pyexecd exec` runs under `strace -f`, and only the calls of the process
that installed the filter (from that point on) and of every process or thread it or its
descendants created afterwards are counted. That is exactly the set of calls the filter
judges: the script's, the harness's after the script, and those of the programs it
starts (python3, sh, sleep).

Used by test_seccomp_allowlist.py (every entry of the allow-list is exercised by some
workload) and, as a command, to see what a script needs:

    tests/security/syscalltrace.py [--args] SCRIPT.py [pyexecd exec flags...]

strace reports host pids; clone's return value inside the sandbox's pid namespace is
translated with --pidns-translation (strace 5.9 or later).
"""

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

LINE = re.compile(r"^(\d+)\s+(.*)$")
START = re.compile(r"^([a-z_0-9]+)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$")
RET_PID = re.compile(r"= (-?\d+)(?: /\* (\d+) in strace's PID NS \*/)?\s*$")
RET_ERR = re.compile(r"= -1 (E[A-Z0-9]+) ")
FILTER_INSTALL = "SECCOMP_SET_MODE_FILTER, 0, {len="
SPAWNING = {"clone", "clone3", "fork", "vfork"}
# For these, the first argument (or the second, for fcntl and ioctl) is recorded too.
ARG_OF = {"fcntl": 1, "ioctl": 1, "madvise": 2, "prctl": 0, "socket": 0, "arch_prctl": 0,
          "personality": 0, "prlimit64": 1, "clone": 0, "futex": 1, "mmap": 2,
          "mprotect": 2, "rt_sigprocmask": 0, "setsockopt": 1, "getsockopt": 1}


class Call(NamedTuple):
    index: int
    pid: int
    name: str
    args: str
    result: str  # "ok", an errno name, or "?" (never returned: exit, execve's old image)
    child: int  # for clone/fork/vfork: the new task's host pid, else 0


class Trace(NamedTuple):
    counts: collections.Counter  # syscall name -> calls
    results: dict  # syscall name -> Counter of results ("ok", errno names)
    args: dict  # syscall name -> Counter of the argument of ARG_OF
    installed: int  # processes that installed the filter


def _split_args(text):
    """The top-level comma-separated arguments of a strace argument list (without the
    closing parenthesis and return value)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _result(rest):
    m = RET_ERR.search(rest)
    if m:
        return m.group(1), 0
    if re.search(r"\) += \?", rest) or rest.endswith("= ?"):
        return "?", 0
    m = RET_PID.search(rest)
    return "ok", int(m.group(2) or m.group(1)) if m else 0


def parse(lines):
    """The calls of an `strace -f` log (one line per event, each starting with the pid)."""
    calls, pending = [], {}
    for raw in lines:
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        start, resumed = START.match(rest), RESUMED.match(rest)
        if start:
            name, tail = start.group(1), start.group(2)
            if tail.endswith("<unfinished ...>"):
                pending[pid] = (len(calls), name, tail[: -len("<unfinished ...>")].rstrip())
                calls.append(None)
                continue
            result, child = _result(tail)
            calls.append(Call(len(calls), pid, name, tail, result, child))
        elif resumed and pid in pending:
            index, name, tail = pending.pop(pid)
            result, child = _result(resumed.group(2))
            calls[index] = Call(index, pid, name, tail + resumed.group(2), result, child)
    for index, name, tail in pending.values():  # killed while in the call
        calls[index] = Call(index, -1, name, tail, "?", 0)
    return [c for c in calls if c is not None]


def filtered_calls(calls):
    """The calls made under the filter (see the module's docstring)."""
    since = {}  # pid -> index from which its calls are filtered
    for c in calls:
        if c.name == "seccomp" and FILTER_INSTALL in c.args and c.result == "ok":
            since.setdefault(c.pid, c.index + 1)
    # A task created by a filtered task after its filter was installed is filtered from
    # birth. Parents' clone lines may come after the child's first lines: hence the loop.
    changed = True
    while changed:
        changed = False
        for c in calls:
            if (c.name in SPAWNING and c.child > 0 and c.pid in since
                    and since[c.pid] <= c.index and c.child not in since):
                since[c.child] = -1
                changed = True
    installers = sum(1 for v in since.values() if v >= 0)
    return [c for c in calls if c.pid in since and c.index >= since[c.pid]], installers


def summarize(calls, installers):
    counts = collections.Counter(c.name for c in calls)
    results, args = {}, {}
    for c in calls:
        results.setdefault(c.name, collections.Counter())[c.result] += 1
        if c.name in ARG_OF:
            parts = _split_args(c.args)
            i = ARG_OF[c.name]
            args.setdefault(c.name, collections.Counter())[parts[i] if i < len(parts) else ""] += 1
    return Trace(counts, results, args, installers)


def strace_binary():
    return shutil.which("strace")


def trace_exec(binary, source, flags=(), env=None, timeout=300):
    """Runs `binary exec [flags] -` with `source` on stdin under strace. Returns (the
    completed process, Trace)."""
    strace = strace_binary()
    if not strace:
        raise FileNotFoundError("strace")
    with tempfile.TemporaryDirectory(prefix="pyexecd-strace-") as tmp:
        log = os.path.join(tmp, "trace")
        args = [strace, "-f", "-qq", "--pidns-translation", "-e", "signal=none", "-s", "24",
                "-o", log, binary, "exec", *flags, "-"]
        proc = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                              env=env, timeout=timeout)
        with open(log, encoding="utf-8", errors="replace") as f:
            calls, installers = filtered_calls(parse(f))
    return proc, summarize(calls, installers)


def main(argv):
    show_args = "--args" in argv
    argv = [a for a in argv if a != "--args"]
    if not argv:
        sys.exit(__doc__)
    binary = os.environ.get("PYEXECD_BIN", "build/pyexecd")
    with open(argv[0], encoding="utf-8") as f:
        source = f.read()
    flags = argv[1:] or ["--preload", "", "--uid-base", "310000"]
    proc, trace = trace_exec(binary, source, flags)
    sys.stderr.write(proc.stdout.decode("utf-8", "replace")[:2000] + "\n")
    print(f"# {trace.installed} filtered processes")
    for name in sorted(trace.counts):
        res = ", ".join(f"{k}:{v}" for k, v in sorted(trace.results[name].items()))
        print(f"{name} {trace.counts[name]} [{res}]")
        if show_args and name in trace.args:
            for a, n in trace.args[name].most_common():
                print(f"    {a} {n}")


if __name__ == "__main__":
    main(sys.argv[1:])
