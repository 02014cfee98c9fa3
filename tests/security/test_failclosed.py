"""Fail closed: pyexecd refuses to serve rather than run a script with a configured layer
missing, and an operator's disabled layer is never silent."""

import json
import shutil
import subprocess

import pytest

from .conftest import BINARY, clean_env, require, require_binary, require_root


def run_server_briefly(*argv, timeout=120):
    """Runs a pyexecd command that is expected to exit on its own (a refusal)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=clean_env(), stdin=subprocess.DEVNULL)


def test_refuses_to_start_under_gvisor():
    # gVisor is Cloud Run's first generation: no usable cgroups, no mount propagation.
    require_binary()
    require_root()
    require(shutil.which("runsc"), "runsc (gVisor) is not installed")
    proc = run_server_briefly("runsc", "--network=none", "do", BINARY, "--listen",
                              "127.0.0.1", "--port", "0", "--log-format", "json")
    assert proc.returncode != 0, proc.stderr
    assert "Cannot start" in proc.stderr, proc.stderr
    assert "listening" not in proc.stderr, proc.stderr


def test_refuses_to_start_without_root():
    require_binary()
    require_root()
    require(shutil.which("setpriv"), "setpriv is not installed")
    proc = run_server_briefly("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              BINARY, "--listen", "127.0.0.1", "--port", "0")
    assert proc.returncode != 0
    assert "must run as root" in proc.stderr
    assert "listening" not in proc.stderr


def test_refuses_before_the_zygote_without_cap_sys_admin():
    # Docker's default container: root, but no CAP_SYS_ADMIN. The start-up probe refuses
    # before the zygote is started (and imports pandas), with the namespace error.
    require_binary()
    require_root()
    require(shutil.which("setpriv"), "setpriv is not installed")
    proc = run_server_briefly("setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
                              BINARY, "--listen", "127.0.0.1", "--port", "0",
                              "--log-format", "json")
    assert proc.returncode == 1, proc.stderr
    assert "Cannot start: cannot create the sandbox's namespaces" in proc.stderr, proc.stderr
    assert "zygote" not in proc.stderr and "listening" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("cap", ["kill", "setpcap", "setuid", "setgid"])
def test_refuses_before_the_zygote_without_a_credentials_capability(cap):
    """A container granted CAP_SYS_ADMIN but not one of these: without CAP_KILL pyexecd
    would start and serve, and then fail to stop a script at its time limit (measured in a
    Docker container: "Failed to kill sandbox: Operation not permitted", the script ran
    on); without the others the self-check would fail later, after the zygote."""
    require_binary()
    require_root()
    require(shutil.which("setpriv"), "setpriv is not installed")
    proc = run_server_briefly("setpriv", f"--bounding-set=-{cap}", f"--inh-caps=-{cap}",
                              BINARY, "--listen", "127.0.0.1", "--port", "0",
                              "--log-format", "json")
    assert proc.returncode == 1, proc.stderr
    assert f"Cannot start: it lacks the capabilities CAP_{cap.upper()} (" in proc.stderr, \
        proc.stderr
    assert "zygote" not in proc.stderr and "listening" not in proc.stderr, proc.stderr


def test_starts_without_those_capabilities_when_sandboxes_stay_root():
    """With the credentials layer off the sandboxes keep root, and need none of them: the
    check is the layer's, not a blanket one."""
    require_binary()
    require_root()
    require(shutil.which("setpriv"), "setpriv is not installed")
    drop = "-kill,-setpcap,-setuid,-setgid"
    proc = subprocess.run(["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}",
                           BINARY, "exec", "--preload", "", "--disable-layers", "credentials",
                           "-"], input="def main():\n    return 42\n", capture_output=True,
                          text=True, timeout=120, env=clean_env())
    assert "it lacks the capabilities" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["result"] == 42, proc.stderr


def test_disabled_layer_is_logged_and_shown(layer_off_server):
    srv = layer_off_server("seccomp,netns")
    warnings = [json.loads(line) for line in srv.log_lines if "DISABLED" in line]
    assert warnings and warnings[0]["severity"] == "WARNING", srv.stderr_text()
    assert "netns,seccomp" in warnings[0]["message"]
    resp = srv.request("GET", "/ready")
    assert resp.status == 200
    assert resp.json["disabled_layers"] == ["netns", "seccomp"]


def test_print_config_shows_disabled_layers():
    require_binary()
    out = subprocess.run([BINARY, "--print-config", "--disable-layers", "cgroups"],
                         capture_output=True, text=True, check=True, env=clean_env()).stdout
    assert json.loads(out)["disabled_layers"] == "cgroups"


def test_unknown_layer_name_is_refused():
    require_binary()
    proc = subprocess.run([BINARY, "--print-config", "--disable-layers", "seccomp,everything"],
                          capture_output=True, text=True, env=clean_env())
    assert proc.returncode != 0
    assert "disable-layers" in proc.stderr
