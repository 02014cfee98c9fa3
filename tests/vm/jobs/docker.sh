# shellcheck shell=sh
# Guest job of the docker lane (tests/vm/vm.py): the image built from deploy/Dockerfile
# on the host, loaded into this guest's Docker engine (cgroup v2, systemd driver), and
# started the ways the README documents. QUICK=1 runs the contract and security suites
# against the container instead of both whole suites. Every check prints PASS or FAIL;
# the job fails if any check did.
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
ms() { date +%s%3N; }

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

# A container that must refuse to start: it exits non-zero by itself, and its last log
# line names what is missing and the command that works.
expect_refusal() {
        what=$1
        shift
        t=$(ms)
        out=$(timeout 300 docker run --rm "$@" 2>&1)
        code=$?
        took=$(($(ms) - t))
        last=$(printf '%s\n' "$out" | tail -n 1)
        echo "   $what: exit $code after $took ms (container start included); last line:"
        echo "   $last"
        if [ "$code" = 124 ]; then
                fail "$what: still running after 300 s (must refuse to start)"
        elif [ "$code" = 0 ]; then
                fail "$what: exited 0 (must refuse to start)"
        elif ! printf '%s' "$last" | grep -q 'docker run'; then
                fail "$what: the refusal does not give the docker run command that works"
        else
                pass "$what: refused to start, naming the command that works"
        fi
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
        if PYEXECD_URL=$URL python3 -m pytest -p no:cacheprovider -q -rs "$@"; then
                pass "suites against the container ($label)"
        else
                fail "suites against the container ($label)"
        fi
}

# Drain on SIGTERM: a 2 s script started before `docker stop` is answered, and the
# container exits 0.
stop_and_check_drain() {
        cid=$1
        python3 - "$URL" >/tmp/drain.out 2>&1 <<'EOF' &
import json, sys, urllib.request
body = json.dumps({"script": "import time\ndef main():\n    time.sleep(2)\n    return 'drained'"}).encode()
req = urllib.request.Request(sys.argv[1] + "/execute", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=120)).get("result"))
EOF
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

# 1. What every reference README shows, without the flags pyexecd needs.
step "plain docker run (no flags)"
expect_refusal "docker run IMAGE" "$IMAGE"

# 2. The README's command, exactly.
step "docker run -d -p $PORT:8080 --privileged IMAGE"
cid=$(docker run -d -p "$PORT:8080" --privileged "$IMAGE")
if wait_ready "$cid"; then
        pass "--privileged: /ready answers 200"
        suites privileged
        step "HEALTHCHECK"
        health=starting
        for _ in $(seq 60); do
                health=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
                [ "$health" = starting ] || break
                sleep 5
        done
        if [ "$health" = healthy ]; then
                pass "HEALTHCHECK: healthy"
        else
                fail "HEALTHCHECK: $health"
        fi
        stop_and_check_drain "$cid"
else
        fail "--privileged: not ready"
        docker logs "$cid" 2>&1 | tail -n 20
        docker rm -f "$cid" >/dev/null
fi

# 3. gVisor (Cloud Run's first generation): registered as a runtime, it must be refused.
step "runsc as a Docker runtime"
if [ -x /usr/bin/runsc ]; then
        printf '{"runtimes": {"runsc": {"path": "/usr/bin/runsc"}}}\n' >/etc/docker/daemon.json
        if systemctl restart docker; then
                expect_refusal "docker run --runtime=runsc" --runtime=runsc "$IMAGE"
        else
                fail "docker did not restart with runsc registered"
        fi
else
        fail "runsc is not installed in the guest image"
fi

check_no_leaked_cgroups || failed=1
step "done, failed=$failed"
exit "$failed"
