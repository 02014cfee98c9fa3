"""The service's own cgroup tree on this host, cgroup v2 or v1: every slot carries the
configured limits in the kernel's files, and nothing is left behind after a SIGTERM, nor
(from the next start on) after a SIGKILL. `make test-vm` runs this on cgroup v2 guests;
the development VM is cgroup v1 (hybrid).

What the limits do to a script (an OOM kill reported as MEMORY_LIMIT, a fork bomb
stopped) is tested in tests/security/test_resources.py and test_processes.py, each shown
to fail with the cgroup layer off."""

import glob
import os
import signal
import time
from pathlib import Path

import pytest

from .conftest import Server, clean_env, children_of, run_ok

CG = Path("/sys/fs/cgroup")
V2 = (CG / "cgroup.controllers").exists() and "memory" in (CG / "cgroup.controllers").read_text()
MEMORY_MB = 97  # odd values, so that a default cannot pass for the configured one
PIDS_MAX = 53
FLAGS = ("--memory-mb", str(MEMORY_MB), "--pids-max", str(PIDS_MAX), "--concurrency", "2",
         "--uid-base", "500000")

def trees_of(pid):
    """The service's pyexecd-<pid> cgroup directories (one on v2; memory, pids, cpu on v1)."""
    return [Path(p) for p in glob.glob(f"{CG}/**/pyexecd-{pid}", recursive=True)]


def read(path):
    return path.read_text().strip()


def start():
    return Server(FLAGS, clean_env()).start()


def wait_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"process {pid} still exists"
        time.sleep(0.05)


def test_slot_limits_are_the_configured_ones():
    srv = start()
    try:
        trees = trees_of(srv.pid)
        assert trees, f"no pyexecd-{srv.pid} cgroup under {CG}"
        slots = [s for t in trees for s in sorted(t.glob("slot-*"))]
        assert slots, f"no slot cgroups in {trees}"
        if V2:
            assert len(trees) == 1, trees
            for s in slots:
                assert read(s / "memory.max") == str(MEMORY_MB << 20), s
                assert read(s / "pids.max") == str(PIDS_MAX), s
                # An OOM kill takes the whole sandbox, not one process of it.
                assert read(s / "memory.oom.group") == "1", s
                if (s / "memory.swap.max").exists():  # absent without swap accounting
                    assert read(s / "memory.swap.max") == "0", s
            # The controllers are on for the slots (delegation worked).
            enabled = read(trees[0] / "cgroup.subtree_control").split()
            assert {"memory", "pids"} <= set(enabled), enabled
        else:
            limits = {t.parent.name: t for t in trees}
            for s in slots:
                if (s / "memory.limit_in_bytes").exists():
                    assert read(s / "memory.limit_in_bytes") == str(MEMORY_MB << 20), s
                if (s / "pids.max").exists():
                    assert read(s / "pids.max") == str(PIDS_MAX), s
            assert any((t / "slot-0" / "memory.limit_in_bytes").exists() for t in trees), limits
            assert any((t / "slot-0" / "pids.max").exists() for t in trees), limits
        run_ok(srv, "def main():\n    return 1\n")
    finally:
        assert srv.stop() == 0
    assert trees_of(srv.pid) == [], "cgroups left behind after SIGTERM"


def test_sigkill_leftovers_are_removed_by_the_next_start():
    first = start()
    pid = first.pid
    zygotes = children_of(pid)
    assert trees_of(pid)
    os.kill(pid, signal.SIGKILL)
    first.stop()  # reaps it
    for z in zygotes:  # the zygote and its sandboxes follow their parent
        wait_gone(z)
    assert trees_of(pid), "a SIGKILLed service cannot have removed its own cgroups"
    second = start()
    try:
        assert trees_of(pid) == [], "the next start did not remove the stale cgroups"
        assert trees_of(second.pid)
        run_ok(second, "def main():\n    return 1\n")
    finally:
        assert second.stop() == 0
    assert trees_of(second.pid) == []


def test_instances_side_by_side_share_one_parent():
    """Two services started from the same cgroup: the second finds the first's delegation
    (v2) and puts its tree beside the first's, not in a new nested level."""
    a = start()
    b = start()
    try:
        ta, tb = trees_of(a.pid), trees_of(b.pid)
        assert ta and tb
        assert sorted(t.parent for t in ta) == sorted(t.parent for t in tb), (ta, tb)
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_read_only_cgroupfs_is_mounted_writable_for_pyexecd_alone():
    """A container's default: /sys/fs/cgroup read-only (Docker, containerd, Kubernetes
    without privilege). pyexecd mounts the same cgroup2 hierarchy writable in a mount
    namespace of its own, and the slots get their limits. v2 only (a v1 host has no
    single hierarchy to mount)."""
    if not V2:
        pytest.skip("cgroup v1 host: the read-only remount is a cgroup v2 feature")
    srv = Server(FLAGS, clean_env())
    srv.args = ["unshare", "--mount", "--propagation", "slave", "sh", "-c",
                'mount -o remount,bind,ro /sys/fs/cgroup && exec "$0" "$@"', *srv.args]
    srv.start()
    try:
        assert any("read-only here" in line for line in srv.log_lines), srv.stderr_text()
        trees = trees_of(srv.pid)
        assert len(trees) == 1, trees
        assert read(trees[0] / "slot-0" / "memory.max") == str(MEMORY_MB << 20)
        # What pyexecd sees at /sys/fs/cgroup is a writable cgroup2 mount of its own.
        with open(f"/proc/{srv.pid}/mountinfo") as f:
            own = [line.split() for line in f if " /sys/fs/cgroup " in line]
        assert own and own[-1][5].split(",")[0] == "rw" and "cgroup2" in own[-1], own
        run_ok(srv, "def main():\n    return 1\n")
    finally:
        assert srv.stop() == 0
    assert trees_of(srv.pid) == []
