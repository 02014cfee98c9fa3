# shellcheck shell=sh
# Guest job of the v2-native and debian-13 lanes (tests/vm/vm.py): pyexecd built from the
# host's tree and tested on a cgroup v2 host with systemd. QUICK=1: the unit tests and the
# suites that matter for a host (the cgroup, namespace, fail-closed and lock security tests, the
# cgroup and contract integration tests); else the whole `make test`,
# exactly as on a developer's machine. pytest runs verbose, so that a lane stopped at its
# time limit still shows which tests failed.
set -u
# shellcheck source=tests/vm/jobs/lib-guest.sh
. /job/lib-guest.sh
# shellcheck source=tests/vm/jobs/lib-unit.sh
. /job/lib-unit.sh
banner
unpack_source
cd /root/src || exit 1
rc=0
if [ "$QUICK" = 1 ]; then
        step "make build"
        make build >/job/out/build.log 2>&1 || { tail -n 40 /job/out/build.log; exit 1; }
        step "unit tests"
        meson test -C build --print-errorlogs || rc=1
        step "security: resources, namespaces, fail-closed, kill before answering, each sandbox's view"
        # The layers a host changes: cgroups (limits, OOM), namespaces, start-up refusals,
        # how a request is killed before its answer (cgroup.kill on v2), and the overlays of
        # each sandbox's own view (overlayfs of the host's kernel; the record-lock channel).
        PYEXECD_BIN=$PWD/build/pyexecd python3 -m pytest -p no:cacheprovider -v --tb=short --durations=25 \
                tests/security/test_resources.py tests/security/test_namespaces.py \
                tests/security/test_failclosed.py tests/security/test_answer.py \
                tests/security/test_locks.py || rc=1
        step "integration: cgroups, contract"
        PYEXECD_BIN=$PWD/build/pyexecd python3 -m pytest -p no:cacheprovider -v --tb=short --durations=25 \
                tests/integration/test_cgroups.py tests/integration/test_contract.py || rc=1
else
        step "make test"
        make test PYTEST_FLAGS="-v --tb=short" || rc=1
fi
step "systemd unit (deploy/systemd/pyexecd.service)"
check_systemd_unit || rc=1
check_no_leaked_cgroups || rc=1
step "done, rc=$rc"
exit $rc
