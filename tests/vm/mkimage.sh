#!/bin/sh
# Builds one guest image for tests/vm from Debian packages only:
#
#   mkimage.sh SUITE OUTDIR [EXTRA_PACKAGE ...]
#
# SUITE is a Debian suite (bookworm, trixie). OUTDIR receives vmlinuz, initrd.img and
# rootfs.img (ext4, label vmroot): a debootstrap minbase root with systemd, the cloud
# kernel, every package `scripts/install-deps --list` names for that suite (so `make
# test` finds them installed and needs no network in the guest), the EXTRA_PACKAGEs, and
# the job runner (guest/vmjob, started at boot). Services that a job starts itself
# (docker, containerd) are disabled at boot. OUTDIR/ready is written last: a directory
# without it is an interrupted build.
#
# Needs root, debootstrap and e2fsprogs. MIRROR overrides the Debian mirror.
set -eu

[ $# -ge 2 ] || {
        echo "usage: $0 SUITE OUTDIR [EXTRA_PACKAGE ...]" >&2
        exit 2
}
suite=$1
out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mirror=${MIRROR:-http://deb.debian.org/debian}
size=${VM_IMAGE_SIZE:-6G}

root="$out/root"
rm -rf "$out"
mkdir -p "$out"

unmount_all() {
        for m in dev/pts dev proc sys; do
                umount "$root/$m" 2>/dev/null || true
        done
}
trap unmount_all EXIT INT TERM

echo "mkimage: debootstrap $suite" >&2
debootstrap --variant=minbase \
        --include=systemd-sysv,udev,kmod,iproute2,procps,util-linux,e2fsprogs,linux-image-cloud-amd64,initramfs-tools \
        "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 || {
        tail -n 30 "$out/debootstrap.log" >&2
        exit 1
}

# apt in the chroot: no daemon may start there (policy-rc.d), /proc and /dev for
# maintainer scripts.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"

# The suite's own package list: install-deps reads the chroot's /etc/os-release.
cp "$repo/scripts/install-deps" "$root/tmp/install-deps"
packages=$(chroot "$root" sh /tmp/install-deps --list | tr '\n' ' ')
echo "mkimage: apt-get install $packages $*" >&2
# shellcheck disable=SC2086
chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages $*" \
        >"$out/apt.log" 2>&1 || {
        tail -n 30 "$out/apt.log" >&2
        exit 1
}
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d" "$root/tmp/install-deps"
rm -rf "$root/var/lib/apt/lists/"*
unmount_all

# The job runner, and a quiet, quick boot.
install -m 0755 "$here/guest/vmjob" "$root/usr/local/sbin/vmjob"
install -m 0644 "$here/guest/vmjob.service" "$root/etc/systemd/system/vmjob.service"
ln -sf /etc/systemd/system/vmjob.service "$root/etc/systemd/system/multi-user.target.wants/vmjob.service"
# Jobs start the engine themselves (disabled, not masked); no getty on the job's console.
for unit in docker.service docker.socket containerd.service; do
        find "$root/etc/systemd/system" -name "$unit" -type l -delete
done
for unit in serial-getty@ttyS0.service getty@tty1.service getty.target apt-daily.timer \
        apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
echo "pyexecd-vm" >"$root/etc/hostname"
echo "/dev/vda / ext4 rw,relatime 0 1" >"$root/etc/fstab"
: >"$root/etc/machine-id"

kver=$(find "$root/boot" -name 'vmlinuz-*' | sort | tail -n 1)
kver=${kver##*/vmlinuz-}
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
echo "mkimage: mkfs.ext4 $size (kernel $kver)" >&2
mkfs.ext4 -q -F -L vmroot -d "$root" "$out/rootfs.img" "$size" >/dev/null
{
        echo "suite=$suite"
        echo "kernel=$kver"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$out/ready.tmp"
# Never remove a tree with the host's /dev or /proc still mounted in it.
if grep -q " $root/" /proc/self/mounts; then
        echo "mkimage: $root still has mounts; not removing it" >&2
        exit 1
fi
rm -rf "$root"
mv "$out/ready.tmp" "$out/ready"
