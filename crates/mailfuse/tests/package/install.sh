#!/bin/sh
# Installs the Debian package with dpkg -i on a throwaway copy of this
# system, looks at what it installed, removes it, purges it; prints each
# step's output after a line "=== STEP" for crates/mailfuse/tests/package.rs.
#
# Usage (as root): unshare --mount sh install.sh SCRATCH DEB DDEB
#
# In the mount namespace of its own that `unshare --mount` gives it, /etc,
# /usr and /var are overlays whose changes go to a tmpfs on SCRATCH: dpkg,
# the maintainer scripts and the checks see this system, with its dpkg
# database, and write only there. Nothing is left when the namespace ends
# with this script. /run/systemd is hidden where systemd runs, so the
# scripts do not ask the system's systemd to reload.
set -eu
scratch=$1 deb=$2 ddeb=$3

mount -t tmpfs mailfuse-test "$scratch"
for dir in /etc /usr /var; do
    mkdir -p "$scratch/upper$dir" "$scratch/work$dir"
    mount -t overlay mailfuse-test \
        -o "lowerdir=$dir,upperdir=$scratch/upper$dir,workdir=$scratch/work$dir" "$dir"
done
if [ -d /run/systemd/system ]; then
    mount -t tmpfs mailfuse-test /run/systemd
fi

step() { echo "=== $1"; }

# man-db's trigger would rebuild the whole index of man pages at each
# install and removal (seconds); man finds a page without it.
rm -f /var/lib/man-db/auto-update

# Docker's Debian images tell dpkg to leave man pages out: the package's
# are what is tested.
step install
dpkg -i --path-include='/usr/share/man/*' "$deb" "$ddeb" 2>&1
step status
dpkg-query -W -f='${Status}\n' mailfuse mailfuse-dbgsym
step pages
ls -1 /usr/share/man/man1/mailfuse*
step conffiles
dpkg-query -W -f='${Conffiles}\n' mailfuse
step secrets
stat -c '%a %U' /etc/mailfuse/secrets.toml
step version
/usr/bin/mailfuse --version
step man
MANWIDTH=100 man mailfuse-scan 2>&1
step verify
systemd-analyze verify mailfuse.service mailfuse-policy.service 2>&1
step enabled
find /etc/systemd/system -name 'mailfuse*' 2>&1
step postinst
cat /var/lib/dpkg/info/mailfuse.postinst
step stripped
readelf -S /usr/bin/mailfuse | grep -c '[.]debug_info' || true
step build-id
readelf -n /usr/bin/mailfuse | sed -n 's/.*Build ID: //p'
step debug
for file in $(dpkg -L mailfuse-dbgsym | grep '[.]debug$'); do
    ls "$file"
done
step bash
bash -c '. /usr/share/bash-completion/completions/mailfuse &&
    COMP_WORDS=(mailfuse s) COMP_CWORD=1 && _mailfuse mailfuse s mailfuse &&
    echo "${COMPREPLY[@]}"'
step zsh-fish
ls /usr/share/zsh/vendor-completions/_mailfuse /usr/share/fish/vendor_completions.d/mailfuse.fish
# A state as watch leaves it: removing keeps it and the configuration,
# purging deletes both.
mkdir -p /var/lib/mailfuse
echo state >/var/lib/mailfuse/state.db
step remove
dpkg -r mailfuse 2>&1
ls /etc/mailfuse /var/lib/mailfuse /usr/bin/mailfuse 2>&1 || true
step purge
dpkg -P mailfuse 2>&1
ls /etc/mailfuse /var/lib/mailfuse 2>&1 || true
