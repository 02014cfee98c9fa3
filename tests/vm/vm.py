#!/usr/bin/python3
"""make test-vm: pyexecd on the hosts its users run, in qemu guests.

Each lane boots a Debian guest (cgroup v2, systemd) from an image built here from
Debian packages only (mkimage.sh), hands it a job on a second disk, streams the guest's
console, and reads the job's exit status and output back from that disk (debugfs; the
guest has no network and no shared folder). Lanes:

  v2-native   Debian 12 guest: the whole `make test`, built from this tree in the guest
              (unit, integration with the short soak, security with PYEXECD_MUST_WORK=1,
              deploy), then deploy/systemd/pyexecd.service run as a unit (and a control
              without its Delegate= and OOMPolicy= lines), then no cgroup left behind
              (jobs/native.sh, jobs/lib-unit.sh).
  docker      Debian 12 guest with Docker's engine: the image of deploy/Dockerfile, built
              on the host with podman and `docker load`ed in the guest, started exactly as
              the README's docker-run block says and tested through its port, every flag of
              it shown to be needed, --privileged, gVisor refused (jobs/docker.sh).
  debian-13   Debian 13 guest (its own Python, numpy, pandas): as v2-native.
  quick       the three, each with the tests that matter for a host (the cgroup,
              namespace, fail-closed and contract tests, the systemd unit; against the
              container, the contract and security suites) instead of the whole suite:
              CI's lane (`.ci/run`).

Images are cached in --cache (default /var/cache/pyexecd-vm, kept across clones) under a
key of everything they are built from (mkimage.sh, guest/, scripts/install-deps, the
suite and extra packages); a changed input builds a new image and removes the old one.
Every guest runs under a hard time limit: a boot failure, a panic or a hang fails its lane
with the console's last lines. The accelerator is KVM where the host has hardware
virtualisation (vmx/svm) and /dev/kvm, else qemu's TCG; VM_ACCEL=tcg|kvm forces one.

Usage: tests/vm/vm.py [--lane LANE ...] [--quick] [--build-dir DIR] [--cache DIR] [--keep]
       tests/vm/vm.py --check
Exit status: 0 every lane passed, 1 a lane failed, 2 this host cannot run guests.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Images: suite and the packages on top of scripts/install-deps's list.
IMAGES = {
    "bookworm": ("bookworm", ["docker.io", "apparmor"]),
    "trixie": ("trixie", []),
}

# Lanes: image, job script, whether the job needs the container image, minutes allowed
# (under TCG, boot included), guest memory in MiB.
LANES = {
    "v2-native": dict(image="bookworm", job="native.sh", container=False, minutes=50, mem=3072),
    "docker": dict(image="bookworm", job="docker.sh", container=True, minutes=50, mem=3072),
    "debian-13": dict(image="trixie", job="native.sh", container=False, minutes=50, mem=3072),
}
QUICK = {"v2-native": 15, "docker": 15, "debian-13": 15}  # lane: minutes allowed in quick form
ALL = ["v2-native", "docker", "debian-13"]

CONTAINER_IMAGE = "pyexecd:vm"


def log(msg):
    print(f"test-vm: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# -- host checks ----------------------------------------------------------------------


def missing_tools():
    need = ["qemu-system-x86_64", "debootstrap", "mkfs.ext4", "debugfs", "podman"]
    return [t for t in need if not shutil.which(t)]


def accelerator():
    """qemu's -accel/-cpu arguments and a name. /dev/kvm alone is not enough: on a host
    that is itself a PVM guest, KVM_CREATE_VM works but a Debian kernel does not run."""
    forced = os.environ.get("VM_ACCEL")
    cpuinfo = Path("/proc/cpuinfo").read_text()
    hw = re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.M) is not None
    if forced == "kvm" or (forced is None and hw and os.access("/dev/kvm", os.R_OK | os.W_OK)):
        return ["-accel", "kvm", "-cpu", "host"], "kvm"
    return ["-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max"], "tcg"


# -- images ---------------------------------------------------------------------------


def image_key(name):
    suite, extra = IMAGES[name]
    h = hashlib.sha256()
    for f in [HERE / "mkimage.sh", *sorted((HERE / "guest").iterdir()),
              REPO / "scripts" / "install-deps"]:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(f"{suite} {' '.join(extra)} {os.environ.get('MIRROR', '')}".encode())
    return h.hexdigest()[:16]


def ensure_image(name, cache):
    suite, extra = IMAGES[name]
    key = image_key(name)
    d = cache / f"{name}-{key}"
    if (d / "ready").exists():
        log(f"image {name}: cached ({d})")
        return d
    for old in cache.glob(f"{name}-*"):  # an older key, or an interrupted build
        shutil.rmtree(old, ignore_errors=True)
    log(f"image {name}: building ({d}); a few minutes")
    t = time.monotonic()
    run(["nice", "-n", "10", str(HERE / "mkimage.sh"), suite, str(d), *extra])
    log(f"image {name}: built in {time.monotonic() - t:.0f} s")
    return d


def build_container_image(out):
    """deploy/Dockerfile built on this host with podman (no registry is reachable from
    the guest), saved as a docker-archive for `docker load`."""
    t = time.monotonic()
    env = dict(os.environ, IMAGE_TAG=CONTAINER_IMAGE)
    run([str(REPO / "deploy" / "verify-image.sh"), "--build-only"], env=env, cwd=REPO)
    tar = out / "pyexecd-image.tar"
    tar.unlink(missing_ok=True)
    run(["podman", "save", "--format", "docker-archive", "-o", str(tar),
         f"localhost/{CONTAINER_IMAGE}"])
    log(f"container image: built and saved in {time.monotonic() - t:.0f} s "
        f"({tar.stat().st_size / 1e6:.0f} MB archive)")
    return tar


# -- jobs -----------------------------------------------------------------------------


def source_tar(dest):
    """The tree as a fresh clone would have it, plus uncommitted changes to tracked and
    new (not ignored) files: what `git ls-files` lists."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, check=True, capture_output=True).stdout
    files = b"\0".join(f for f in files.split(b"\0") if f and (REPO / f.decode()).exists())
    run(["tar", "-C", str(REPO), "--null", "-T", "-", "-cf", str(dest)], input=files)


def make_job_disk(lane, quick, workdir, job_script, container_tar):
    jobdir = workdir / "job"
    shutil.rmtree(jobdir, ignore_errors=True)
    (jobdir / "out").mkdir(parents=True)
    shutil.copy(job_script, jobdir / "job.sh")
    for helper in (HERE / "jobs").glob("lib-*.sh"):
        shutil.copy(helper, jobdir / helper.name)
    source_tar(jobdir / "src.tar")
    env = {"LANE": lane, "QUICK": "1" if quick else "0", "CI": "true",
           "PYEXECD_MUST_WORK": "1", "HOME": "/root", "LANG": "C.UTF-8",
           "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    size_mb = 256
    if container_tar is not None:
        try:
            os.link(container_tar, jobdir / "pyexecd-image.tar")
        except OSError:
            shutil.copy(container_tar, jobdir / "pyexecd-image.tar")
        env["CONTAINER_IMAGE"] = CONTAINER_IMAGE
        size_mb += container_tar.stat().st_size // (1 << 20) + 128
    (jobdir / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    img = workdir / "job.img"
    img.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "vmjob", "-d", str(jobdir), str(img), f"{size_mb}M"],
        stdout=subprocess.DEVNULL)
    shutil.rmtree(jobdir)
    return img


def debugfs_cat(img, path):
    r = subprocess.run(["debugfs", "-R", f"cat {path}", str(img)], capture_output=True)
    return r.stdout if r.returncode == 0 else b""


# -- boot -----------------------------------------------------------------------------


def boot(lane, image_dir, job_img, workdir, minutes, mem):
    """Runs the guest to completion or to its time limit. Returns (rc or None, why)."""
    accel, accel_name = accelerator()
    console = workdir / "console.log"
    console.write_bytes(b"")
    cmd = ["qemu-system-x86_64", *accel, "-smp", str(os.cpu_count() or 2), "-m", str(mem),
           "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
           "-nic", "none", "-no-reboot",
           "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
           "-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 "
                      "systemd.show_status=false",
           "-drive", f"file={image_dir / 'rootfs.img'},format=raw,if=virtio,"
                     "snapshot=on,cache=unsafe",
           "-drive", f"file={job_img},format=raw,if=virtio,cache=writeback"]
    log(f"{lane}: booting ({accel_name}, {mem} MiB, limit {minutes} min)")
    qemu_log = open(workdir / "qemu.log", "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qemu_log,
                            stderr=subprocess.STDOUT)
    stop = threading.Event()
    streamer = threading.Thread(target=stream_console, args=(lane, console, stop), daemon=True)
    streamer.start()
    try:
        proc.wait(timeout=minutes * 60)
        why = None
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        why = f"time limit of {minutes} min reached"
    stop.set()
    streamer.join(timeout=5)
    qemu_log.close()
    text = console.read_bytes().decode("utf-8", "replace")
    m = re.search(r"VMJOB-END rc=(\d+)", text)
    if m and why is None:
        return int(m.group(1)), None
    if why is None:
        if "Kernel panic" in text:
            why = "the guest kernel panicked"
        elif "VMJOB-START" not in text:
            why = f"the guest did not start the job (qemu exit {proc.returncode})"
        else:
            why = f"the guest stopped before the job ended (qemu exit {proc.returncode})"
    return None, why


def stream_console(lane, console, stop):
    """Echoes the job's console lines, prefixed with the lane, while the guest runs."""
    with open(console, "rb") as f:
        started = False
        buf = b""
        while True:
            chunk = f.read(65536)
            if not chunk:
                if stop.is_set():
                    break
                time.sleep(0.5)
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                if "VMJOB-START" in line:
                    started = True
                if started:
                    print(f"[{lane}] {line}", flush=True)


def console_tail(workdir, n=40):
    lines = (workdir / "console.log").read_bytes().decode("utf-8", "replace").splitlines()
    qemu = (workdir / "qemu.log").read_text(errors="replace").strip()
    tail = "\n".join(f"    {line.rstrip()}" for line in lines[-n:])
    return tail + (f"\n    qemu: {qemu}" if qemu else "")


# -- lanes ----------------------------------------------------------------------------


def run_lane(lane, quick, args, images, container):
    spec = LANES[lane]
    quick = quick and lane in QUICK
    workdir = args.build_dir / "vm" / lane
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    job = make_job_disk(lane, quick, workdir, args.job or HERE / "jobs" / spec["job"],
                        container if spec["container"] else None)
    minutes = QUICK[lane] if quick else spec["minutes"]
    rc, why = boot(lane, images[spec["image"]], job, workdir, minutes, spec["mem"])
    wall = time.monotonic() - t0
    (workdir / "out.log").write_bytes(debugfs_cat(job, "/out.log"))
    outdir = workdir / "out"
    shutil.rmtree(outdir, ignore_errors=True)
    subprocess.run(["debugfs", "-R", f"rdump /out {workdir}", str(job)], capture_output=True)
    if not args.keep:
        job.unlink()
    if rc is None:
        log(f"{lane}: FAILED: {why}; console tail:\n{console_tail(workdir)}")
        return False, wall, why
    ok = rc == 0
    log(f"{lane}: {'passed' if ok else f'FAILED (job exit {rc})'} in {wall:.0f} s "
        f"(output: {workdir / 'out.log'})")
    return ok, wall, None if ok else f"job exit {rc}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lane", action="append", choices=[*ALL, "quick", "all"],
                   help="lane to run (repeatable; default: all three, whole suites)")
    p.add_argument("--build-dir", type=Path, default=REPO / "build")
    p.add_argument("--cache", type=Path,
                   default=Path(os.environ.get("PYEXECD_VM_CACHE", "/var/cache/pyexecd-vm")))
    p.add_argument("--quick", action="store_true",
                   help="the quick form of each lane that has one (--lane quick implies it)")
    p.add_argument("--keep", action="store_true", help="keep the job disks")
    p.add_argument("--check", action="store_true",
                   help="only tell whether this host can run the guests (exit 0, or 2)")
    p.add_argument("--job", type=Path,
                   help="instead of the lanes: run this job script in the guest of --lane's "
                        "image (with the lane's payload), print its output, exit with its status")
    args = p.parse_args()
    args.build_dir = args.build_dir.resolve()

    if os.geteuid() != 0:
        log("needs root (debootstrap, mkfs.ext4 -d of a root tree, podman)")
        return 2
    if missing := missing_tools():
        log(f"cannot run guests here: missing {', '.join(missing)} "
            "(scripts/install-deps --vm installs them)")
        return 2

    if args.check:
        log(f"this host can run guests ({accelerator()[1]})")
        return 0
    wanted = args.lane or ["all"]
    if args.job and len(wanted) != 1:
        log("--job runs in one lane's guest: give exactly one --lane")
        return 2
    quick = args.quick or "quick" in wanted
    lanes = []
    for w in wanted:
        for lane in {"quick": list(QUICK), "all": ALL}.get(w, [w]):
            if lane not in lanes:
                lanes.append(lane)

    args.cache.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    images = {}
    for lane in lanes:
        name = LANES[lane]["image"]
        if name not in images:
            images[name] = ensure_image(name, args.cache)
    container = None
    if any(LANES[lane]["container"] for lane in lanes):
        (args.build_dir / "vm").mkdir(parents=True, exist_ok=True)
        container = build_container_image(args.build_dir / "vm")
    prep = time.monotonic() - t0

    results = {lane: run_lane(lane, quick, args, images, container) for lane in lanes}
    total = time.monotonic() - t0
    print(f"\ntest-vm summary (images and container image: {prep:.0f} s; total {total:.0f} s)")
    for lane, (ok, wall, why) in results.items():
        form = "quick" if quick else "full"
        print(f"  {lane:10} {form:5} {'PASS' if ok else 'FAIL'}  {wall:6.0f} s"
              + (f"  ({why})" if why else ""))
    return 0 if all(ok for ok, _, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
