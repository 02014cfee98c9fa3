# shellcheck shell=sh
# Helpers shared by the guest jobs of tests/vm (sourced; POSIX sh).

# Seconds since boot, for the step timings in a lane's log.
uptime_s() { cut -d' ' -f1 /proc/uptime; }

step() { echo "== [$(uptime_s)s] $*"; }

banner() {
        # shellcheck disable=SC1091
        step "guest: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)," \
                "cgroup fs $(stat -fc %T /sys/fs/cgroup), controllers:" \
                "$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
        step "python $(python3 -c 'import sys, numpy, pandas; print(sys.version.split()[0], "numpy", numpy.__version__, "pandas", pandas.__version__)' 2>&1)"
        step "$(nproc) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB," \
                "$(systemctl --version | head -n 1)"
}

# The tree from the host, unpacked where a developer's clone would be.
unpack_source() {
        rm -rf /root/src && mkdir -p /root/src && tar -xf /job/src.tar -C /root/src
}

# No cgroup of any pyexecd may be left once every test has stopped its servers.
check_no_leaked_cgroups() {
        left=$(find /sys/fs/cgroup -type d -name 'pyexecd-*' 2>/dev/null)
        if [ -n "$left" ]; then
                echo "FAIL: cgroups left behind:"
                echo "$left"
                return 1
        fi
        step "no pyexecd cgroup left behind"
}
