# shellcheck shell=sh
# Guest job of the docker lane (tests/vm/vm.py): the image built from deploy/Dockerfile
# on the host, loaded into this guest's Docker engine (cgroup v2, systemd driver), and
# started the ways the README documents: exactly its docker-run block, then (whole lane
# only) --privileged. Every way it must not start (no profile, no AppArmor exception, each
# capability short) is checked to refuse within 5 s with a line that says why. QUICK=1
# runs the contract and security suites against the container instead of both whole
# suites. Every check prints PASS or FAIL; the job fails if any did.
set -u
# shellcheck source=tests/vm/jobs/lib-guest.sh
. /job/lib-guest.sh
banner
unpack_source
cd /root/src || exit 1
IMAGE=localhost/$CONTAINER_IMAGE
PORT=8080
URL=http://127.0.0.1:$PORT
failed=0
pass() { echo "PASS: $*"; }
fail() {
        echo "FAIL: $*"
        failed=1
}

step "systemctl start docker"
if ! systemctl start docker; then
        journalctl -u docker -u containerd --no-pager | tail -n 40
        exit 1
fi
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
docker info --format 'cgroup {{.CgroupVersion}} driver {{.CgroupDriver}}, security {{.SecurityOptions}}'
step "docker load"
docker load -i /job/pyexecd-image.tar || exit 1
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"

# GET a path of the service; prints the status code (000: no answer).
http_status() {
        python3 -c '
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=30).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")' "$1"
}

# POSTs the script $1 (its text, newlines written as \n) to /execute; prints its result.
execute_result() {
        python3 -c '
import json, sys, urllib.request
body = json.dumps({"script": sys.argv[2].replace("\\n", "\n")}).encode()
req = urllib.request.Request(sys.argv[1] + "/execute", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=120)).get("result"))' "$URL" "$1"
}

# Waits (bounded) until the container answers /ready; 0 once it does.
wait_ready() {
        cid=$1
        for _ in $(seq 300); do
                [ "$(http_status "$URL/ready")" = 200 ] && return 0
                [ "$(docker inspect -f '{{.State.Running}}' "$cid" 2>/dev/null)" = true ] || return 1
                sleep 1
        done
        return 1
}

# Milliseconds a finished container ran, from the engine's own start and finish times.
container_ms() {
        docker inspect -f '{{.State.StartedAt}} {{.State.FinishedAt}}' "$1" | python3 -c '
import sys
from datetime import datetime
def t(s):  # RFC 3339 with nanoseconds, which fromisoformat does not take
    day, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(day + "+00:00").timestamp() + float("0." + (frac or "0"))
a, b = sys.stdin.read().split()
print(round((t(b) - t(a)) * 1000))'
}

# A container that must refuse to start: it exits 1 by itself within 5 s of starting, and
# its last log line starts "Cannot start:" and matches PATTERN (what failed, the way out).
expect_refusal() {
        what=$1
        pattern=$2
        shift 2
        if ! cid=$(docker run -d "$@"); then
                fail "$what: docker run itself failed"
                return
        fi
        code=$(timeout 300 docker wait "$cid") || code=timeout
        took=$(container_ms "$cid")
        last=$(docker logs "$cid" 2>&1 | tail -n 1)
        docker rm -f "$cid" >/dev/null
        echo "   $what: exit $code after $took ms in the container; last line:"
        echo "   $last"
        if [ "$code" = timeout ]; then
                fail "$what: still running after 300 s (must refuse to start)"
        elif [ "$code" != 1 ]; then
                fail "$what: exit status $code (must refuse to start with 1)"
        elif [ "$took" -gt 5000 ]; then
                fail "$what: took $took ms to refuse (at most 5000)"
        elif ! printf '%s' "$last" | grep -q "Cannot start: .*$pattern"; then
                fail "$what: the refusal does not match: $pattern"
        else
                pass "$what: refused in $took ms, saying why and what to do"
        fi
}

# The commands of the README's docker-run block (README, "Deploying"), continuations
# joined, with the image name `pyexecd` replaced by this lane's.
readme_commands() {
        # shellcheck disable=SC2016 # Python, not shell
        python3 -c '
import re, sys
text = open("README.md").read()
block = re.search(r"<!-- docker-run:[^\n]*-->\n```sh\n(.*?)\n```", text, re.S).group(1)
for line in block.replace("\\\n", " ").splitlines():
    print(re.sub(r" pyexecd( |$)", " " + sys.argv[1] + r"\1", " ".join(line.split())))
' "$IMAGE"
}

suites() {
        label=$1
        if [ "$QUICK" = 1 ]; then
                set -- tests/integration/test_contract.py tests/integration/test_examples.py \
                        tests/security
        else
                set -- tests/integration tests/security
        fi
        step "suites against the container ($label): $*"
        if PYEXECD_URL=$URL python3 -m pytest -p no:cacheprovider -v --tb=short -rs "$@"; then
                pass "suites against the container ($label)"
        else
                fail "suites against the container ($label)"
        fi
}

check_health() {
        step "HEALTHCHECK"
        health=starting
        for _ in $(seq 60); do
                health=$(docker inspect -f '{{.State.Health.Status}}' "$1")
                [ "$health" = starting ] || break
                sleep 5
        done
        if [ "$health" = healthy ]; then
                pass "HEALTHCHECK: healthy"
        else
                fail "HEALTHCHECK: $health"
        fi
}

# Drain on SIGTERM: a 2 s script started before `docker stop` is answered, and the
# container exits 0.
stop_and_check_drain() {
        cid=$1
        execute_result 'import time\ndef main():\n    time.sleep(2)\n    return "drained"' \
                >/tmp/drain.out 2>&1 &
        client=$!
        sleep 1
        docker stop -t 10 "$cid" >/dev/null
        wait "$client"
        code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
        if [ "$(cat /tmp/drain.out)" = drained ] && [ "$code" = 0 ]; then
                pass "docker stop: the running script was answered, exit status 0"
        else
                fail "docker stop: exit status $code, client got: $(cat /tmp/drain.out)"
        fi
        if docker logs "$cid" 2>&1 | python3 -c '
import json, sys
for line in sys.stdin:
    assert "severity" in json.loads(line), line'; then
                pass "every log line is JSON with a severity"
        else
                fail "log lines that are not JSON with a severity"
        fi
        docker rm "$cid" >/dev/null
}

# 1. The README's block, exactly: fetch the profile from the image, start the container.
step "the README's docker run"
readme_commands >/tmp/readme.sh
cat /tmp/readme.sh
mkdir -p /tmp/run && cd /tmp/run || exit 1
cid=$(sh -e /tmp/readme.sh | tail -n 1)
if cmp -s /tmp/run/pyexecd-seccomp.json /root/src/deploy/seccomp.json; then
        pass "the image's /usr/share/pyexecd/seccomp.json is deploy/seccomp.json"
else
        fail "the profile fetched from the image differs from deploy/seccomp.json"
fi
cd /root/src || exit 1
if [ -n "$cid" ] && wait_ready "$cid"; then
        pass "README's command: /ready answers 200"
        docker exec "$cid" sh -c 'grep -E "^(CapEff|Seccomp|NoNewPrivs)" /proc/1/status'
        if docker logs "$cid" 2>&1 | grep -q "views per sandbox"; then
                fail "README's command: the zygote fell back to views per sandbox"
        else
                pass "README's command: views per slot (SYS_CHROOT)"
        fi
        suites readme
        check_health "$cid"
        stop_and_check_drain "$cid"
else
        fail "README's command: not ready"
        [ -n "$cid" ] && docker logs "$cid" 2>&1 | tail -n 20 && docker rm -f "$cid" >/dev/null
fi

# 1b. Without the optional SYS_CHROOT: it serves, with a view per sandbox, and says so.
step "the README's docker run without --cap-add SYS_CHROOT"
sed 's/ --cap-add SYS_CHROOT//' /tmp/readme.sh | tail -n 1 >/tmp/readme-nochroot.sh
cd /tmp/run || exit 1
cid=$(sh -e /tmp/readme-nochroot.sh)
cd /root/src || exit 1
answer=
if [ -n "$cid" ] && wait_ready "$cid"; then
        answer=$(execute_result 'def main():\n    return 6 * 7')
fi
if [ "$answer" = 42 ] && docker logs "$cid" 2>&1 | grep -q "views per sandbox"; then
        pass "without SYS_CHROOT: serves, and logs views per sandbox"
else
        fail "without SYS_CHROOT: answer '$answer', or no \"views per sandbox\" line"
        [ -n "$cid" ] && docker logs "$cid" 2>&1 | tail -n 20
fi
[ -n "$cid" ] && docker rm -f "$cid" >/dev/null

# 2. Each way short of it refuses, in time, with the command that works. The first is
# what every reference README shows.
SC=/tmp/run/pyexecd-seccomp.json
AA="--security-opt apparmor=unconfined"
CAPS="--cap-drop ALL --cap-add SYS_ADMIN --cap-add SETUID --cap-add SETGID --cap-add SETPCAP"
step "docker run IMAGE, and the README's command short of one flag"
expect_refusal "docker run IMAGE" "docker run .*seccomp=pyexecd-seccomp.json" "$IMAGE"
# shellcheck disable=SC2086 # CAPS and AA are lists of words
{
        expect_refusal "without the seccomp profile" "pivot_root is refused by a seccomp filter" \
                $CAPS --cap-add KILL $AA "$IMAGE"
        expect_refusal "without apparmor=unconfined" "docker run" \
                $CAPS --cap-add KILL --security-opt "seccomp=$SC" "$IMAGE"
        expect_refusal "without SYS_ADMIN" "docker run" \
                --cap-drop ALL --cap-add SETUID --cap-add SETGID --cap-add SETPCAP --cap-add KILL \
                $AA --security-opt "seccomp=$SC" "$IMAGE"
        # Each of the other four (without KILL it would serve, unable to stop a script).
        for cap in SETUID SETGID SETPCAP KILL; do
                others=$(for c in SYS_ADMIN SETUID SETGID SETPCAP KILL; do
                        [ "$c" = "$cap" ] || printf ' --cap-add %s' "$c"
                done)
                expect_refusal "without $cap" "lacks the capabilities CAP_$cap .*docker run" \
                        --cap-drop ALL $others $AA --security-opt "seccomp=$SC" "$IMAGE"
        done
}

# 3. --privileged, which works too (whole lane only: the same code paths as 1).
if [ "$QUICK" != 1 ]; then
        step "docker run -d -p $PORT:8080 --privileged IMAGE"
        cid=$(docker run -d -p "$PORT:8080" --privileged "$IMAGE")
        if wait_ready "$cid"; then
                pass "--privileged: /ready answers 200"
                step "contract suite against the container (privileged)"
                if PYEXECD_URL=$URL python3 -m pytest -p no:cacheprovider -q \
                        tests/integration/test_contract.py; then
                        pass "contract suite against the container (privileged)"
                else
                        fail "contract suite against the container (privileged)"
                fi
                stop_and_check_drain "$cid"
        else
                fail "--privileged: not ready"
                docker logs "$cid" 2>&1 | tail -n 20
                docker rm -f "$cid" >/dev/null
        fi
fi

# 4. gVisor (Cloud Run's first generation): registered as a runtime, it must be refused.
step "runsc as a Docker runtime"
if [ -x /usr/bin/runsc ]; then
        printf '{"runtimes": {"runsc": {"path": "/usr/bin/runsc"}}}\n' >/etc/docker/daemon.json
        if systemctl restart docker; then
                expect_refusal "docker run --runtime=runsc --privileged" "This is gVisor" \
                        --runtime=runsc --privileged "$IMAGE"
        else
                fail "docker did not restart with runsc registered"
        fi
else
        fail "runsc is not installed in the guest image"
fi

check_no_leaked_cgroups || failed=1
step "done, failed=$failed"
exit "$failed"
