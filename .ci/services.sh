#!/usr/bin/env bash
# Installs the binaries behind the tests that start a real single-node SLURM and a real PostgreSQL
# (tests/services.py starts and stops its own daemons; nothing here starts one), and the headless Chromium in which
# the generated project's tests/test_sweep_views.py looks at TensorBoard's HPARAMS tab and at optuna-dashboard.
# Idempotent: when every binary is present it returns at once, without calling apt.
# Not root or no apt: says which tests will skip and exits 0 (the tests skip themselves too).
set -euo pipefail

have_slurm() { command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged; } >/dev/null
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' && compgen -G '/usr/lib/postgresql/*/bin/initdb'; } >/dev/null
have_chromium() { command -v chromium; } >/dev/null

packages=()
want_slurm=0 want_postgres=0
have_slurm || { want_slurm=1; packages+=(slurmctld slurmd slurm-client munge); }
have_postgres || { want_postgres=1; packages+=(postgresql); }
have_chromium || packages+=(chromium)
[ ${#packages[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "services.sh: cannot install ${packages[*]} (needs root and apt-get): the SLURM/PostgreSQL/browser tests will skip"
    exit 0
fi

# Maintainer scripts must not start daemons (a system PostgreSQL on 5432, a slurmctld with the
# packaged config): a policy-rc.d that denies every start, unless the image already has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# Belt and braces, in case something started anyway: stop what the packages just installed
# (only those: a munged or PostgreSQL that was running before is someone else's). Under systemd
# also keep them from starting at boot.
if [ $want_postgres = 1 ] && command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [ "$status" = online ]; then pg_ctlcluster "$ver" "$name" stop || true; fi
    done
    [ -d /run/systemd/system ] && systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
if [ $want_slurm = 1 ]; then
    for svc in slurmctld slurmd munge; do
        if [ -d /run/systemd/system ]; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi
echo "services.sh: installed ${packages[*]}"
