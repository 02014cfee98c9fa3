#!/usr/bin/env bash
# Verifies deploy/Dockerfile on a machine without a Docker engine, with Debian's podman
# (or buildah for the build alone) and a base image made locally by debootstrap:
#
#   1. base image: debootstrap --variant=minbase SUITE (the suite of the Dockerfile's
#      FROM debian:SUITE-slim), trimmed like the official slim image (no docs/man/locales,
#      no apt lists), imported under the name the Dockerfile uses
#      (docker.io/library/debian:SUITE-slim) unless already present;
#   2. podman build --pull=never -f deploy/Dockerfile (image size reported);
#   3. podman run --privileged --cgroupns=private -p HOST_PORT:8080, then GET /health,
#      GET /ready (every layer on), POST /execute (the README's pandas example), the
#      image's HEALTHCHECK, and podman stop (SIGTERM) during a 2 s script: the script's
#      answer arrives, the exit status is 0, every log line is JSON with "severity";
#   4. the same image with a read-only root file system (deploy/k8s/deployment.yaml sets
#      readOnlyRootFilesystem) runs a script; and, if Debian's runsc is installed, under
#      gVisor (what Cloud Run gen1 uses) it refuses to start with exit status 1.
#
# Host quirks handled (found on the development VM, a cgroup v1 + v2 "hybrid" host
# whose root lacks CAP_SYS_RESOURCE):
#   - crun refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported"): runc is
#     used there (apt-get install -y runc);
#   - podman's default rlimits (nofile 1048576, nproc) are above this host's hard limits
#     and cannot be raised without CAP_SYS_RESOURCE: --ulimit with values at or below them;
#   - --cgroupns=private: with cgroup v1 and the host cgroup namespace the container sees
#     only its own cgroup directory mounted at /sys/fs/cgroup/<controller>, while
#     /proc/self/cgroup names the full host path, and pyexecd refuses to start ("cannot
#     create cgroup .../libpod-ID/pyexecd-1: No such file or directory").
#
# Usage (as root, from anywhere in the repository):
#   deploy/verify-image.sh [--build-only]
#
# Environment:
#   ENGINE      podman or buildah (default: podman if installed, else buildah; buildah
#               implies --build-only)
#   IMAGE_TAG   tag of the built image (default pyexecd:verify)
#   HOST_PORT   host port for the run step (default 18480; must be free)
#   WORKDIR     where the debootstrap tree goes (default /var/tmp/pyexecd-verify)
#   MIRROR      Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   NICE        niceness of debootstrap and the build (default 19: do not disturb others)
#   RUNTIME     OCI runtime for podman/buildah (default: runc on a hybrid cgroup host,
#               else the engine's default)
#   REBUILD_BASE=1  make the base image again even if one exists
#
# Exit status: 0 all steps passed; 1 a step failed; 2 a tool is missing or not root.
# Debian packages: apt-get install -y podman debootstrap curl (buildah optional).
set -euo pipefail

BUILD_ONLY=0
case "${1:-}" in
"") ;;
--build-only) BUILD_ONLY=1 ;;
-h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0
        ;;
*)
        echo "verify-image: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
esac

IMAGE_TAG=${IMAGE_TAG:-pyexecd:verify}
HOST_PORT=${HOST_PORT:-18480}
WORKDIR=${WORKDIR:-/var/tmp/pyexecd-verify}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NICE=${NICE:-19}
SUITE=
while read -r word image _; do # the suite of the first FROM debian:SUITE-slim (bash only:
        # this runs before the check for missing tools)
        if [ "$word" = FROM ] && [[ $image =~ ^debian:([a-z]+)-slim$ ]]; then
                SUITE=${BASH_REMATCH[1]}
                break
        fi
done <"${BASH_SOURCE[0]%/*}/Dockerfile"
BASE=docker.io/library/debian:$SUITE-slim
NAME=pyexecd-verify-$$

say() { printf 'verify-image: %s\n' "$*" >&2; }
die() {
        say "FAILED: $*"
        exit 1
}
missing() {
        say "missing: $1. $2"
        exit 2
}

# --- tools ------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || missing "root" "Run as root: rootful podman is needed for --privileged with cgroups and namespaces."
if [ -z "${ENGINE:-}" ]; then
        if command -v podman >/dev/null 2>&1; then
                ENGINE=podman
        elif command -v buildah >/dev/null 2>&1; then
                ENGINE=buildah
        else
                missing "podman (or buildah)" "Install with: apt-get install -y podman (no Docker engine is needed)."
        fi
fi
command -v "$ENGINE" >/dev/null 2>&1 || missing "$ENGINE" "Install with: apt-get install -y $ENGINE"
case "$ENGINE" in
podman) ;;
buildah)
        if [ "$BUILD_ONLY" -eq 0 ]; then
                say "ENGINE=buildah can build but not run containers: only the build is verified"
                BUILD_ONLY=1
        fi
        ;;
*) missing "a supported ENGINE" "ENGINE must be podman or buildah, not '$ENGINE'." ;;
esac
if [ "$BUILD_ONLY" -eq 0 ]; then
        command -v curl >/dev/null 2>&1 || missing "curl" "Install with: apt-get install -y curl"
        command -v python3 >/dev/null 2>&1 || missing "python3" "Install with: apt-get install -y python3"
fi

# OCI runtime: crun (podman's default on Debian) does not support hybrid cgroup hosts
# (v1 controllers plus a cgroup2 mount with controllers at /sys/fs/cgroup/unified).
if [ -z "${RUNTIME:-}" ] && grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then
        command -v runc >/dev/null 2>&1 ||
                missing "runc" "This host mixes cgroup v1 and v2 (hybrid), which crun refuses. Install with: apt-get install -y runc"
        RUNTIME=runc
fi
# Rlimits no higher than this shell's hard limits: podman's defaults may exceed them, and
# raising a hard limit needs CAP_SYS_RESOURCE.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nofile" -gt 1048576 ] && nofile=1048576
ULIMIT_OPTS=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=4096:4096")
ENGINE_OPTS=("${ULIMIT_OPTS[@]}")
if [ -n "${RUNTIME:-}" ]; then
        ENGINE_OPTS+=(--runtime "$RUNTIME")
        say "OCI runtime: $RUNTIME"
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$REPO/deploy/Dockerfile" ] || die "no deploy/Dockerfile under $REPO"

image_exists() {
        if [ "$ENGINE" = podman ]; then
                podman image exists "$1"
        else
                buildah inspect --type image "$1" >/dev/null 2>&1
        fi
}

[ -n "$SUITE" ] || die "deploy/Dockerfile: no FROM debian:SUITE-slim line to take the base suite from"

# --- 1. base image ----------------------------------------------------------------------
if image_exists "$BASE" && [ "${REBUILD_BASE:-0}" != 1 ]; then
        say "[1/4] base image $BASE already present, reused (REBUILD_BASE=1 to make it again)"
else
        command -v debootstrap >/dev/null 2>&1 ||
                missing "debootstrap" "Install with: apt-get install -y debootstrap (or provide $BASE in $ENGINE's storage)."
        say "[1/4] debootstrap --variant=minbase $SUITE $WORKDIR/rootfs $MIRROR"
        rm -rf "$WORKDIR/rootfs"
        mkdir -p "$WORKDIR"
        nice -n "$NICE" debootstrap --variant=minbase "$SUITE" "$WORKDIR/rootfs" "$MIRROR" \
                >"$WORKDIR/debootstrap.log" 2>&1 ||
                die "debootstrap (log: $WORKDIR/debootstrap.log): $(tail -n 3 "$WORKDIR/debootstrap.log")"
        ROOTFS=$WORKDIR/rootfs
        # What the official slim image does (debuerreotype): no docs, man pages or locales,
        # for this and every later apt-get install; the same apt sources (with updates and
        # security); no downloaded packages or package lists.
        cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
        find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        rm -rf "$ROOTFS"/usr/share/{groff,info,linda,lintian,locale,man}/*
        rm -f "$ROOTFS/etc/apt/sources.list"
        cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log
        say "[1/4] importing $ROOTFS as $BASE"
        if [ "$ENGINE" = podman ]; then
                tar --numeric-owner -C "$ROOTFS" -c . | podman import - "$BASE" >/dev/null ||
                        die "podman import"
        else
                tar --numeric-owner -C "$ROOTFS" -cf "$WORKDIR/rootfs.tar" .
                ctr=$(buildah from scratch)
                buildah add "$ctr" "$WORKDIR/rootfs.tar" / >/dev/null
                buildah commit --rm "$ctr" "$BASE" >/dev/null || die "buildah commit"
                rm -f "$WORKDIR/rootfs.tar"
        fi
        rm -rf "$ROOTFS"
fi

# --- 2. build ---------------------------------------------------------------------------
# --format docker: the OCI image format has no HEALTHCHECK; keep it as Docker would.
# --pull=never: the base must be the local one (only Debian's archive is reachable here).
# --network host: the RUN steps reach the Debian archive without a container network.
say "[2/4] $ENGINE build -f deploy/Dockerfile -t $IMAGE_TAG (nice -n $NICE)"
start=$(date +%s)
revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
nice -n "$NICE" "$ENGINE" build "${ENGINE_OPTS[@]}" --pull=never --format docker --network host \
        --build-arg REVISION="$revision" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        -f "$REPO/deploy/Dockerfile" -t "$IMAGE_TAG" "$REPO" ||
        die "$ENGINE build (see the output above)"
if [ "$ENGINE" = podman ]; then
        size=$(podman image inspect --format '{{.Size}}' "$IMAGE_TAG")
        size="$size bytes ($((size / 1000000)) MB)"
        labels=$(podman image inspect --format '{{json .Config.Labels}}' "$IMAGE_TAG")
else
        size=$(buildah images --noheading --format '{{.Size}}' "$IMAGE_TAG")
        labels=$(buildah inspect --type image --format '{{.OCIv1.Config.Labels}}' "$IMAGE_TAG")
fi
say "[2/4] built $IMAGE_TAG in $(($(date +%s) - start)) s; size: $size"
say "[2/4] labels: $labels"

if [ "$BUILD_ONLY" -eq 1 ]; then
        say "build verified; --build-only: not run"
        exit 0
fi

# --- 3. run -----------------------------------------------------------------------------
cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
URL=http://127.0.0.1:$HOST_PORT
if curl -s -o /dev/null "$URL/" 2>/dev/null; then
        die "port $HOST_PORT is already in use on this machine; choose another: HOST_PORT=NNNNN $0"
fi
RUN_OPTS=("${ENGINE_OPTS[@]}" --privileged --cgroupns=private)
say "[3/4] podman run ${RUN_OPTS[*]} -p $HOST_PORT:8080 $IMAGE_TAG"
if ! podman run -d --name "$NAME" "${RUN_OPTS[@]}" -p "$HOST_PORT:8080" "$IMAGE_TAG" >/dev/null; then
        # Without a working container network (CNI/netavark, iptables) -p cannot work; the
        # host network still shows whether the image serves.
        say "podman run -p failed; retrying with --network host -e PORT=$HOST_PORT"
        cleanup
        podman run -d --name "$NAME" "${RUN_OPTS[@]}" --network host -e PORT="$HOST_PORT" "$IMAGE_TAG" \
                >/dev/null || die "podman run"
fi

up=0
for _ in $(seq 1 120); do
        if [ "$(podman inspect --format '{{.State.Running}}' "$NAME")" != true ]; then
                podman logs "$NAME" >&2 || true
                die "the container exited (status $(podman inspect --format '{{.State.ExitCode}}' "$NAME")) before /health answered; its log is above"
        fi
        if curl -fsS -o /dev/null "$URL/health" 2>/dev/null; then
                up=1
                break
        fi
        sleep 1
done
[ "$up" -eq 1 ] || {
        podman logs "$NAME" >&2 || true
        die "GET /health did not answer within 120 s"
}
say "GET /health: $(curl -fsS "$URL/health")"
ready=$(curl -sS -w ' HTTP %{http_code}' "$URL/ready")
say "GET /ready: $ready"
case "$ready" in *'"disabled_layers":[]'*' HTTP 200') ;; *) die "GET /ready is not 200 with every layer on" ;; esac

body='{"script": "import pandas as pd\ndef main():\n    df = pd.DataFrame({\"A\": [1, 2, 3], \"B\": [4, 5, 6]})\n    return {\"mean_A\": df[\"A\"].mean(), \"sum_B\": df[\"B\"].sum()}"}'
resp=$(curl -sS -w '\n%{http_code}' "$URL/execute" -H 'Content-Type: application/json' -d "$body")
say "POST /execute: $resp"
printf '%s' "$resp" | python3 -c '
import json, sys
text, code = sys.stdin.read().rsplit("\n", 1)
assert code == "200", code
assert json.loads(text)["result"] == {"mean_A": 2.0, "sum_B": 15}, text
' || die "POST /execute did not return the expected result"

if podman healthcheck run "$NAME" >/dev/null 2>&1; then
        say "HEALTHCHECK (podman healthcheck run): healthy"
else
        die "the image's HEALTHCHECK failed (podman healthcheck run $NAME)"
fi

say "podman stop -t 15 (SIGTERM) while a 2 s script runs"
inflight=$(mktemp)
curl -sS -o "$inflight" -w '%{http_code}' "$URL/execute" -H 'Content-Type: application/json' \
        -d '{"script": "import time\ndef main():\n    time.sleep(2)\n    return \"drained\""}' \
        >"$inflight.code" 2>&1 &
curl_pid=$!
sleep 0.5
start=$(date +%s)
podman stop -t 15 "$NAME" >/dev/null
status=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
say "stopped in $(($(date +%s) - start)) s, exit status $status"
wait "$curl_pid" || true
say "in-flight request: HTTP $(cat "$inflight.code") $(cat "$inflight")"
grep -q '"result":"drained"' "$inflight" || die "the in-flight request was not answered during the drain"
rm -f "$inflight" "$inflight.code"
[ "$status" = 0 ] || die "exit status $status after SIGTERM (expected 0)"
podman logs "$NAME" 2>&1 | python3 -c '
import json, sys
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
assert lines, "no log lines"
for l in lines:
    assert "severity" in json.loads(l), l
print("verify-image: %d log lines, all JSON with severity; last: %s" % (len(lines), lines[-1]), file=sys.stderr)
' || die "the log is not JSON lines with severity"

# --- 4. read-only root; gVisor ----------------------------------------------------------
script='def main():\n    open("/tmp/f", "w").write("x")\n    return 6 * 7\n'
out=$(printf '%b' "$script" | podman run -i --rm "${RUN_OPTS[@]}" --read-only --read-only-tmpfs=false \
        "$IMAGE_TAG" exec - 2>/dev/null) || die "exec with a read-only root failed: $out"
say "[4/4] read-only root file system: pyexecd exec -> $out"
case "$out" in *'"result":42'*) ;; *) die "unexpected answer with a read-only root" ;; esac
if command -v runsc >/dev/null 2>&1; then
        set +e
        log=$(podman --runtime "$(command -v runsc)" --runtime-flag ignore-cgroups \
                --runtime-flag network=host run --rm "${ULIMIT_OPTS[@]}" --network host \
                "$IMAGE_TAG" 2>&1 | grep '"severity"')
        status=${PIPESTATUS[0]}
        set -e
        say "[4/4] under gVisor (runsc): exit status $status: $log"
        [ "$status" = 1 ] || die "under gVisor pyexecd must refuse to start with exit status 1"
else
        say "[4/4] runsc not installed: the gVisor (Cloud Run gen1) refusal was not checked"
fi

say "OK: $IMAGE_TAG builds, serves /health, /ready and /execute, passes its HEALTHCHECK, stops with 0 on SIGTERM, runs with a read-only root and refuses gVisor"
