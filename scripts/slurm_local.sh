#!/usr/bin/env bash
# A one-machine SLURM cluster for trying compoptim's SLURM path (and for tests/slurm/):
#
#   scripts/slurm_local.sh start [DIR]   write DIR/slurm.conf for this host, start munged,
#                                        slurmctld and slurmd, wait until the node is idle
#   scripts/slurm_local.sh stop  [DIR]   stop the three daemons (running jobs are killed)
#   scripts/slurm_local.sh status [DIR]  sinfo
#
# Then `source DIR/env.sh` points sbatch, srun, squeue, scancel at it (SLURM_CONF).
# Needs Debian's slurm-wlm and munge (`apt-get install slurm-wlm munge`) and root, because
# slurmd starts jobs as their user. Everything it writes is under DIR (default
# /tmp/compoptim-slurm): its own munge key and socket, state, spool, logs, and two free ports,
# so it neither needs nor touches a system SLURM or munge.
#
# The cluster: one node named after this host with its real core count and memory
# (`slurmd -C`), a partition `debug` (default) with a 30-minute limit where jobs may share
# cores (OverSubscribe=FORCE) and a job may start more tasks than cores with --overcommit,
# KillWait=5 s (SIGTERM to SIGKILL on scancel and time limits), and requeue allowed.
set -euo pipefail

action=${1:-}
dir=${2:-${COMPOPTIM_SLURM_DIR:-/tmp/compoptim-slurm}}
timeout_s=${COMPOPTIM_SLURM_START_TIMEOUT:-60}

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

need() {
  for b in munged slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null 2>&1 \
      || die "$b not found: install Debian's slurm-wlm and munge (apt-get install slurm-wlm munge)"
  done
  [ "$(id -u)" = 0 ] || die "needs root: slurmd starts jobs as their user"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

write_conf() {
  local host cpus mem sockets cores threads
  host=$(hostname -s)
  # slurmd -C prints this host's layout as slurm.conf wants it.
  read -r cpus sockets cores threads mem < <(PATH=$PATH:/usr/sbin slurmd -C | head -1 | python3 -c '
import sys
kv = dict(f.split("=", 1) for f in sys.stdin.read().split() if "=" in f)
print(kv["CPUs"], kv.get("SocketsPerBoard", 1), kv["CoresPerSocket"], kv["ThreadsPerCore"],
      int(kv["RealMemory"]) * 9 // 10)')
  mkdir -p "$dir"/{munge,state,spool,log,jobs}
  chmod 700 "$dir/munge"
  [ -f "$dir/munge/munge.key" ] || { head -c 128 /dev/urandom > "$dir/munge/munge.key"; chmod 400 "$dir/munge/munge.key"; }
  cat > "$dir/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh for $host: one node, its real cores.
ClusterName=compoptim-local
SlurmctldHost=$host
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a job step's credential lifetime, which is also how long a requeued job is held
# (120 s by default; released earlier, its launch fails with "Job credential revoked").
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here (a container may have none): processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# No PMI unless srun asks for one (--mpi=pmi2), as on most sites: what the docs and tests use
# is then what works elsewhere too.
MpiDefault=none
ReturnToService=2
KillWait=5
OverTimeLimit=0
InactiveLimit=0
MinJobAge=600
# Job ids start where no earlier cluster's did (they grow with the clock): MPICH names its
# shared-memory segment after the job and step, and a killed job's segment, left in /dev/shm,
# would otherwise break the next cluster's job of the same id.
FirstJobId=$(( $(date +%s) / 10 % 60000000 + 1 ))
JobRequeue=1
# A job asking for more than the partition allows is refused at submission, not left pending.
EnforcePartLimits=ALL
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=30:00 DefaultTime=30:00 OverSubscribe=FORCE:4 State=UP
EOF
  cat > "$dir/env.sh" <<EOF
# source this file: sbatch, srun, squeue, scancel and sinfo then use the local cluster
export SLURM_CONF=$dir/slurm.conf
export PATH=\$PATH:/usr/sbin
EOF
}

stop() {
  for name in slurmd slurmctld; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
    fi
  done
  # Wait for them to go (slurmd kills its jobs' steps first), then munged.
  for _ in $(seq 50); do
    alive=0
    for name in slurmd slurmctld; do
      [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for name in slurmd slurmctld; do
    [ -f "$dir/$name.pid" ] && kill -9 "$(cat "$dir/$name.pid")" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
  # Any daemon of this cluster the pid files missed (a pid file rewritten or removed): they
  # are the ones whose SLURM_CONF is this DIR's.
  for pid in $(pgrep -x slurmd; pgrep -x slurmctld); do
    { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qx "SLURM_CONF=$dir/slurm.conf" \
      && kill -9 "$pid" 2>/dev/null || true
  done
  if [ -f "$dir/munge/munged.pid" ]; then
    kill "$(cat "$dir/munge/munged.pid")" 2>/dev/null || true
    rm -f "$dir/munge/munged.pid"
  fi
  pkill -f -- "--socket=$dir/munge/munge.socket" 2>/dev/null || true
}

start() {
  need
  stop  # a cluster left over in DIR is replaced, not joined
  write_conf
  export SLURM_CONF=$dir/slurm.conf PATH=$PATH:/usr/sbin
  munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" || die "munged did not start: see $dir/log/munged.log"
  # -i: ignore state from an earlier cluster in DIR (no old jobs come back).
  slurmctld -i || die "slurmctld did not start: see $dir/log/slurmctld.log"
  slurmd || die "slurmd did not start: see $dir/log/slurmd.log"
  local waited=0
  until sinfo -h -o %t 2>/dev/null | grep -qx idle; do
    [ "$waited" -ge $((timeout_s * 5)) ] && { tail -3 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2; stop; die "the node was not idle after ${timeout_s} s (sinfo: $(sinfo -h -o %t 2>&1 | head -1))"; }
    sleep 0.2
    waited=$((waited + 1))
  done
  echo "slurm_local.sh: cluster up in $dir ($(sinfo -h -o '%P %D %c %t' | head -1)); source $dir/env.sh"
}

case $action in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF=$dir/slurm.conf sinfo ;;
  *) die "usage: slurm_local.sh start|stop|status [DIR]" ;;
esac
