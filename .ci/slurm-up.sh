#!/usr/bin/env bash
# CI: a single-node Slurm on this machine (munge, slurmctld, slurmd from Debian's packages), for the test
# of the pipeline's Slurm launcher (tests/test_slurm.py). Needs root and apt-get; where either is missing,
# or this machine already has a Slurm configuration of its own, it says so and leaves the machine alone
# (the test then skips with the reason). Spool, state and logs go under ${GENLAB_SLURM_DIR:-/tmp/genlab-slurm}.
set -uo pipefail
say() { echo "CI: slurm: $*" >&2; }
if command -v sinfo >/dev/null 2>&1 && timeout 10 sinfo -h >/dev/null 2>&1; then
  say "already up"; exit 0
fi
if [ "$(id -u)" != 0 ]; then say "not root: not installing or starting Slurm; its test will be skipped"; exit 0; fi
conf=/etc/slurm/slurm.conf
mark="# single-node Slurm written by genlab's .ci/slurm-up.sh"
if [ -e "$conf" ] && ! head -1 "$conf" | grep -qF "$mark"; then
  say "$conf exists and is not ours: leaving it alone; the Slurm test will be skipped if sinfo fails"; exit 0
fi
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { say "no apt-get to install slurm-wlm and munge; its test will be skipped"; exit 0; }
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q slurm-wlm munge; } >/dev/null 2>&1 \
    || { say "could not install slurm-wlm and munge; its test will be skipped"; exit 0; }
fi

dir=${GENLAB_SLURM_DIR:-/tmp/genlab-slurm}
host=$(hostname -s)
memory=$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')
mkdir -p "$dir/state" "$dir/spool" /etc/slurm /run/munge /var/log/munge /var/lib/munge
cat >"$conf" <<EOF
$mark
ClusterName=genlab-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName=$host CPUs=2 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged || { say "munged did not start"; exit 0; }
pgrep -x slurmctld >/dev/null || slurmctld || { say "slurmctld did not start (see $dir/slurmctld.log)"; exit 0; }
pgrep -x slurmd >/dev/null || slurmd -N "$host" || { say "slurmd did not start (see $dir/slurmd.log)"; exit 0; }
for _ in $(seq 30); do
  if timeout 10 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    timeout 60 srun -N1 hostname >/dev/null 2>&1 && { say "up: $(sinfo -h -o '%P %D %T %C')"; exit 0; }
  fi
  sleep 1
done
say "started but not answering (see $dir/slurmctld.log and $dir/slurmd.log); its test will be skipped"
exit 0
