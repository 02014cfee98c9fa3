"""The documented `docker run` and the container seccomp profile it names, kept in step:
the README's command (which the docker lane of tests/vm runs), the hint pyexecd prints when
it cannot start (src/main.c), the Dockerfile's comment, and deploy/seccomp.json against
the generator that writes it (scripts/gen-seccomp-profile). No Docker engine needed.
"""

import importlib.machinery
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "deploy" / "seccomp.json"
ENOSYS, EPERM = 38, 1


def load_generator():
    path = REPO / "scripts" / "gen-seccomp-profile"
    loader = importlib.machinery.SourceFileLoader("gen_seccomp_profile", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


GEN = load_generator()


def readme_docker_lines(readme=REPO / "README.md"):
    """The commands of the README's docker-run block, continuations joined, as words."""
    text = readme.read_text()
    m = re.search(r"<!-- docker-run:[^\n]*-->\n```sh\n(.*?)\n```", text, re.S)
    assert m, "README: no <!-- docker-run: ... --> block followed by ```sh"
    return [shlex.split(line) for line in m.group(1).replace("\\\n", " ").splitlines()]


def flags_of(words):
    """The flags of a `docker run ... IMAGE` command, as (flag, value) pairs, in order."""
    assert words[:2] == ["docker", "run"], words
    out, i = [], 2
    while i < len(words) - 1:
        w = words[i]
        if w in ("-d", "--rm", "--read-only"):
            out.append((w, None))
            i += 1
        else:
            out.append((w, words[i + 1]))
            i += 2
    return out


def main_c_flags():
    src = (REPO / "src" / "main.c").read_text()
    m = re.search(r"#define DOCKER_FLAGS((?:[^\n]*\\\n)+[^\n]*)", src)
    assert m, "src/main.c: no DOCKER_FLAGS"
    joined = "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
    return flags_of(["docker", "run", *shlex.split(joined), "IMAGE"])


def test_readme_runs_the_image_with_the_profile_it_ships():
    fetch, run = readme_docker_lines()
    assert fetch[-1] == ">pyexecd-seccomp.json" or fetch[-2:] == [">", "pyexecd-seccomp.json"]
    assert "/usr/share/pyexecd/seccomp.json" in fetch
    flags = flags_of(run)
    assert ("--security-opt", "seccomp=pyexecd-seccomp.json") in flags
    assert ("--privileged", None) not in flags and "--privileged" not in run
    assert ("--security-opt", "seccomp=unconfined") not in flags
    assert run[-1] == "pyexecd"


def test_start_hint_gives_the_readme_flags():
    # The one line a refused start prints must be a command that works: every flag the
    # hint gives is in the README's tested command, and every one the README has beyond
    # the hint is optional hardening.
    hint = main_c_flags()
    readme = flags_of(readme_docker_lines()[1])
    assert all(f in readme for f in hint), (hint, readme)
    extra = [f for f in readme if f not in hint]
    optional = {("-d", None), ("-p", "8080:8080"), ("--read-only", None),
                ("--security-opt", "no-new-privileges"), ("--cap-add", "SYS_CHROOT")}
    assert set(extra) <= optional, extra


def test_dockerfile_comment_gives_the_same_flags():
    text = (REPO / "deploy" / "Dockerfile").read_text()
    m = re.search(r"#\s+docker run --rm -p 8080:8080 (.*?) pyexecd\n", re.sub(
        r"\\\n#\s*", "", text), re.S)
    assert m, "Dockerfile: no `docker run` line in the opening comment"
    flags = flags_of(["docker", "run", *shlex.split(m.group(1)), "IMAGE"])
    want = [(f, v if v != "seccomp=pyexecd-seccomp.json" else "seccomp=deploy/seccomp.json")
            for f, v in main_c_flags()]
    assert flags == want


def test_image_carries_the_profile():
    text = (REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^COPY deploy/seccomp.json /usr/share/pyexecd/seccomp.json$", text, re.M)


def profile():
    return json.loads(PROFILE.read_text())


def test_profile_refuses_by_default_with_enosys_and_denies_with_eperm():
    p = profile()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == ENOSYS
    assert sorted(p["architectures"]) == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_X86_64"]
    allow, deny = p["syscalls"]
    assert allow["action"] == "SCMP_ACT_ALLOW" and "args" not in allow
    assert deny == {"names": sorted(GEN.DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}
    assert not set(allow["names"]) & set(deny["names"])
    for name in GEN.REQUIRED:
        assert name in allow["names"], f"pyexecd needs {name}"
    for name in ("bpf", "keyctl", "ptrace", "kexec_load", "init_module", "io_uring_setup",
                 "perf_event_open", "userfaultfd", "open_by_handle_at"):
        assert name in deny["names"], name


def test_profile_is_what_the_generator_writes(tmp_path):
    if not all(h.exists() for h in GEN.HEADERS):
        pytest.skip("no kernel headers (linux-libc-dev) to regenerate from")
    out = tmp_path / "seccomp.json"
    GEN.main.__globals__["sys"].argv = ["gen", str(out)]
    GEN.main()
    fresh, shipped = json.loads(out.read_text()), profile()
    version = (Path("/usr/include/linux/version.h").read_text()
               if Path("/usr/include/linux/version.h").exists() else "")
    if re.search(r"LINUX_VERSION_MAJOR 6\n#define LINUX_VERSION_PATCHLEVEL 1\n", version):
        assert fresh == shipped, "deploy/seccomp.json is stale: run scripts/gen-seccomp-profile"
    else:
        # Newer headers know newer calls; everything shipped must still be generated.
        assert set(shipped["syscalls"][0]["names"]) <= set(fresh["syscalls"][0]["names"])
        assert fresh["syscalls"][1] == shipped["syscalls"][1]
