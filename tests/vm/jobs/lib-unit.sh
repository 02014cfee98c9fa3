# shellcheck shell=sh
# The systemd unit of deploy/systemd, run on the guest (sourced by native.sh; POSIX sh):
# pyexecd installed as the unit says, a script stopped at its memory limit, and the service
# still active and serving. Then the control: the same unit without its Delegate= and
# OOMPolicy= lines is stopped by systemd at the first such script, which is what those
# lines are there for. Prints PASS/FAIL lines; returns 1 if any check failed.

UNIT_PORT=18090

# POSTs the growth bomb, then a plain script; prints "<error code of the bomb> <result>".
unit_probe() {
        python3 - "http://127.0.0.1:$UNIT_PORT" <<'PY'
import json, sys, time, urllib.error, urllib.request
url = sys.argv[1]
def post(script):
    req = urllib.request.Request(url + "/execute", json.dumps({"script": script}).encode(),
                                 {"Content-Type": "application/json"})
    try:
        return json.load(urllib.request.urlopen(req, timeout=120))
    except urllib.error.HTTPError as e:
        return json.load(e)
    except OSError as e:
        return {"code": "no answer: %s" % e}
for _ in range(120):  # until ready
    try:
        urllib.request.urlopen(url + "/ready", timeout=5)
        break
    except OSError:
        time.sleep(1)
bomb = post("def main():\n    chunks = []\n    for _ in range(400):\n"
            "        chunks.append(b'\\x01' * (1 << 20))\n    return len(chunks)\n")
time.sleep(3)  # systemd acts on the OOM event asynchronously
after = post("def main():\n    return 42\n")
print(bomb.get("code"), after.get("result", after.get("code")))
PY
}

# Installs deploy/systemd/pyexecd.service as NAME with this lane's port and uid range,
# minus the lines matching DROP (a regex; '^$' drops nothing).
unit_install() {
        name=$1
        drop=$2
        grep -v -E "$drop" deploy/systemd/pyexecd.service |
                sed -e "s/^Environment=PORT=8080$/Environment=PORT=$UNIT_PORT PYEXECD_MEMORY_MB=64 PYEXECD_UID_BASE=400000/" \
                        >"/etc/systemd/system/$name.service"
        grep -q "PORT=$UNIT_PORT" "/etc/systemd/system/$name.service" || {
                echo "FAIL: deploy/systemd/pyexecd.service has no Environment=PORT=8080 line"
                return 1
        }
        systemctl daemon-reload
}

check_systemd_unit() {
        bad=0
        install -m 0755 build/pyexecd /usr/local/bin/pyexecd
        unit_install pyexecd '^$' || return 1
        systemctl start pyexecd || {
                journalctl -u pyexecd --no-pager | tail -n 20
                return 1
        }
        got=$(unit_probe)
        active=$(systemctl is-active pyexecd)
        if [ "$got" = "MEMORY_LIMIT 42" ] && [ "$active" = active ]; then
                echo "PASS: systemd unit: a script at its memory limit is MEMORY_LIMIT, the service serves on"
        else
                echo "FAIL: systemd unit: got '$got', unit $active"
                journalctl -u pyexecd --no-pager | tail -n 20
                bad=1
        fi
        systemctl stop pyexecd
        result=$(systemctl show -P Result pyexecd)
        if [ "$result" = success ]; then
                echo "PASS: systemd unit: systemctl stop, result $result"
        else
                echo "FAIL: systemd unit: systemctl stop, result $result"
                bad=1
        fi
        rm /etc/systemd/system/pyexecd.service

        unit_install pyexecd-control '^(Delegate|OOMPolicy)=' || return 1
        systemctl start pyexecd-control || return 1
        pid=$(systemctl show -P MainPID pyexecd-control)
        got=$(unit_probe)
        # How systemd stops it varies: 252 sends SIGTERM, which pyexecd answers by draining
        # and exiting 0 (inactive, result success); 257 records oom-kill and, with
        # Restart=on-failure, starts a new process. Either way the process that served is
        # gone, the next request found no server, and the journal says why.
        state=$(systemctl show -P ActiveState pyexecd-control)
        now=$(systemctl show -P MainPID pyexecd-control)
        said=$(journalctl -u pyexecd-control --no-pager | grep -c "killed by the OOM killer")
        if [ "$said" = 0 ] || { [ "$state" = active ] && [ "$now" = "$pid" ]; } ||
                [ "${got##* }" = 42 ]; then
                echo "FAIL: control: without Delegate= and OOMPolicy= the unit was not stopped" \
                        "(state $state, main pid $pid then $now, OOM-killer lines $said," \
                        "got '$got'): the unit's two lines are not shown to matter"
                bad=1
        else
                echo "PASS: control: without Delegate= and OOMPolicy=, systemd stopped the unit" \
                        "at the OOM kill (state $state, main pid $pid then $now, got '$got')"
        fi
        systemctl stop pyexecd-control 2>/dev/null
        systemctl reset-failed pyexecd-control 2>/dev/null
        rm /etc/systemd/system/pyexecd-control.service /usr/local/bin/pyexecd
        systemctl daemon-reload
        return $bad
}
