"""Credentials: an unprivileged uid per slot, no capabilities (bounding set
included), no_new_privs, so that neither setuid(0) nor a setuid binary gives
root back."""

import os

import pytest

from .conftest import (MAX_SLOTS, UID_BASE, assert_still_serving, exec_script, result_of,
                       run_concurrently, script)

STATUS = script('''
    def main():
        out = {}
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
                       "CapAmb", "NoNewPrivs"):
                out[key] = value.split()
        return out
''')

ZERO = ["0000000000000000"]


def test_credentials_unprivileged_without_capabilities(server):
    status = result_of(server.execute(STATUS))
    uid = int(status["Uid"][0])
    assert UID_BASE <= uid < UID_BASE + MAX_SLOTS, status
    assert status["Uid"] == [str(uid)] * 4
    assert status["Gid"] == [str(uid)] * 4
    assert status["Groups"] == []
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert status[key] == ZERO, (key, status)
    assert status["NoNewPrivs"] == ["1"]


def test_credentials_root_with_capabilities_without_layer():
    status = result_of(exec_script(STATUS, disable="credentials"))
    assert status["Uid"] == ["0"] * 4
    assert status["CapEff"] != ZERO and status["CapBnd"] != ZERO
    assert status["NoNewPrivs"] == ["0"]


SET_ID = script('''
    def main():
        return {"setuid(0)": outcome(os.setuid, 0),
                "setgid(0)": outcome(os.setgid, 0),
                "setgroups([0])": outcome(os.setgroups, [0]),
                "setresuid(0)": outcome(os.setresuid, 0, 0, 0),
                "seteuid(0)": outcome(os.seteuid, 0)}
''')


def test_credentials_setuid_0_is_refused_by_the_filter_first(server):
    """With every layer, the seccomp allow-list refuses the set*id calls before the
    kernel's credential checks are reached: the uid is final (docs/SECCOMP.md)."""
    got = result_of(server.execute(SET_ID))
    assert set(got.values()) == {"ENOSYS"}, got
    assert_still_serving(server)


def test_credentials_setuid_0_is_eperm():
    """The credentials layer alone (the filter off): no capability, so EPERM."""
    got = result_of(exec_script(SET_ID, disable="seccomp"))
    assert got == {"setuid(0)": "EPERM", "setgid(0)": "EPERM", "setgroups([0])": "EPERM",
                   "setresuid(0)": "EPERM", "seteuid(0)": "EPERM"}


def test_credentials_setuid_0_allowed_without_layer():
    got = result_of(exec_script(SET_ID, disable="credentials,seccomp"))
    assert set(got.values()) == {"ok"}, got


# The credentials of a setuid-root binary are fixed at execve(): read them from
# /proc/PID/status before reaping it (alive or a zombie, the status is there).
SETUID_BINARIES = script('''
    import subprocess, signal

    def creds(pid):
        out = {}
        for line in open("/proc/%d/status" % pid):
            key, _, value = line.partition(":")
            if key in ("Uid", "CapEff"):
                out[key] = value.split()
        return out

    def main():
        out = {}
        for argv in (["/usr/bin/su", "root", "-c", "id -u"], ["/usr/bin/passwd", "root"],
                     ["/usr/bin/newgrp", "root"], ["/usr/bin/chsh", "-s", "/bin/sh"],
                     ["/usr/bin/mount", "-t", "tmpfs", "x", "/tmp"]):
            if not os.path.exists(argv[0]):
                continue
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            seen = creds(p.pid)
            try:
                stdout, _ = p.communicate(b"\\n", timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                stdout, _ = p.communicate()
            out[argv[0]] = {**seen, "status": p.returncode, "stdout": stdout.decode()}
        out["uid after"] = os.getuid()
        return out
''')


def test_credentials_setuid_binaries_give_no_root(server):
    got = result_of(server.execute(SETUID_BINARIES))
    uid = got.pop("uid after")
    assert UID_BASE <= uid < UID_BASE + MAX_SLOTS
    assert "/usr/bin/su" in got, "no /usr/bin/su to try"
    for binary, seen in got.items():
        assert seen["Uid"] == [str(uid)] * 4, (binary, seen)
        assert seen["CapEff"] == ZERO, (binary, seen)
        assert seen["status"] != 0, (binary, seen)
        assert seen["stdout"].strip() != "0", (binary, seen)
    assert_still_serving(server)


def test_credentials_setuid_binaries_run_as_root_without_layer():
    """Without the layer the script is root already: the binaries run with uid 0."""
    got = result_of(exec_script(SETUID_BINARIES, disable="credentials"))
    assert got.pop("uid after") == 0
    assert got and all(seen["Uid"] == ["0"] * 4 for seen in got.values()), got


def test_credentials_no_new_privs_holds_without_nosuid_mounts():
    """With the host's /usr (mount namespace off: no nosuid), no_new_privs alone
    still keeps the setuid bit from working."""
    # (pidns off too: /proc is then the host's, and the pids must be its own.)
    got = result_of(exec_script(SETUID_BINARIES, disable="mountns,pidns"))
    uid = got.pop("uid after")
    assert uid >= UID_BASE
    assert got and all(seen["Uid"] == [str(uid)] * 4 for seen in got.values()), got


@pytest.mark.parametrize("path", ["/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches",
                                  "/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger"])
def test_credentials_proc_knobs_not_writable(server, path):
    body = script(f'''
        def main():
            return outcome(os.open, {path!r}, os.O_WRONLY)
    ''')
    got = result_of(server.execute(body))
    if path == "/proc/sysrq-trigger" and not os.path.exists(path):
        assert got == "ENOENT"  # a kernel without CONFIG_MAGIC_SYSRQ
    else:
        assert got == "EACCES"
    assert_still_serving(server)


def test_credentials_cannot_lower_oom_score(server):
    """Lowering its OOM badness (to make a neighbour the victim) needs privilege."""
    body = script('''
        def write(value):
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(value)

        def main():
            return outcome(write, "-1000")
    ''')
    assert result_of(server.execute(body)) == "EACCES"


def test_every_slot_uid_has_a_name(server):
    """Two requests at once run in two slots, so under two uids: each uid has a name in
    the generated /etc/passwd (getpass.getuser() and `id -un` work), whatever the slot."""
    who = ("import getpass, os, subprocess, time\ndef main():\n    time.sleep(1)\n"
           "    return [os.getuid(), getpass.getuser(),\n"
           "            subprocess.run(['id', '-un'], capture_output=True, text=True).stdout]\n")
    first, second = run_concurrently(server, who, who, head_start=0.3)
    uids = {result_of(first)[0], result_of(second)[0]}
    assert len(uids) == 2, (first, second)  # two slots, really
    for body in (first, second):
        assert result_of(body)[1:] == ["sandbox", "sandbox\n"], body
    assert_still_serving(server)
