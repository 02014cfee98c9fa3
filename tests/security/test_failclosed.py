"""Fail closed: pyexecd refuses to serve rather than run a script with a configured layer
missing, and an operator's disabled layer is never silent."""

import json
import shutil
import subprocess

import pytest

from .conftest import BINARY, COMMON_FLAGS, clean_env, require, require_binary, require_root


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


# -- each sandbox's own view (src/sandbox/view.c) -----------------------------------------


def start_in_mount_namespace(setup):
    """Starts a server in a private mount namespace that the shell commands `setup` have
    prepared (the host as it would look in such a container); it is expected to refuse."""
    require_binary()
    require_root()
    require(shutil.which("unshare"), "unshare (util-linux) is not installed")
    script = (f"set -e\n{setup}\nexec {BINARY} --listen 127.0.0.1 --port 0 --log-format json "
              f"--preload '' {' '.join(COMMON_FLAGS)}\n")
    return run_server_briefly("unshare", "--mount", "--propagation", "private", "sh", "-c",
                              script)


VIEW_REFUSED = "Cannot start: cannot build a sandbox's own read-only view (overlayfs"


def test_refuses_to_start_where_device_nodes_are_bind_mounts(tmp_path):
    """A user-namespaced container binds /dev/null and the others from outside onto empty
    files. The overlay of /dev then shows those files, not devices: a sandbox's /dev/null
    would be an empty read-only file (writes to it failing as the script's error), so the
    start-up probe refuses, saying which node."""
    real = tmp_path / "dev"
    real.mkdir()
    nodes = " ".join(("null", "zero", "random", "urandom"))
    proc = start_in_mount_namespace(
        f"mount --bind /dev {real}\nmount -t tmpfs -o mode=0755 tmpfs /dev\n"
        f"for n in {nodes}; do touch /dev/$n; mount --bind {real}/$n /dev/$n; done")
    assert proc.returncode == 1, proc.stderr
    assert VIEW_REFUSED in proc.stderr, proc.stderr
    assert "the overlay of /dev shows no device node for /dev/null" in proc.stderr, proc.stderr
    assert "listening" not in proc.stderr, proc.stderr


def test_refuses_to_start_where_usr_cannot_be_overlaid(tmp_path):
    """Overlayfs stacks at most two deep: a /usr that is already an overlay of an overlay
    (a container nested in one) cannot have a sandbox's overlay on top. The start-up probe
    refuses, naming overlayfs and /usr, instead of failing every request."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    proc = start_in_mount_namespace(
        "\n".join(f"mount -t tmpfs tmpfs {tmp_path / d}\n"
                  f"mount -t overlay overlay -o lowerdir=/usr:{tmp_path / d} /usr"
                  for d in ("a", "b")))
    assert proc.returncode == 1, proc.stderr
    assert VIEW_REFUSED in proc.stderr, proc.stderr
    assert "mount an overlay (overlayfs) of /usr: Invalid argument" in proc.stderr, proc.stderr
    assert "listening" not in proc.stderr, proc.stderr
