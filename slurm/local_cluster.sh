#!/bin/bash
# A one-node Slurm cluster on 127.0.0.1 (for CI and trying the batch scripts; needs root and
# Debian's slurm-wlm + munge). State, spool, logs and pid files live under DIR.
#   slurm/local_cluster.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   slurm/local_cluster.sh stop DIR    # stops slurmd, slurmctld and munged by their pids
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?state folder}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
host=$(hostname -s)
case "$cmd" in
start)
  mkdir -p "$dir"/{state,spool,log} /run/munge
  chown munge:munge /run/munge
  if [ ! -s "$dir/munged.pid" ] || ! kill -0 "$(cat "$dir/munged.pid")" 2>/dev/null; then
    if [ ! -s /etc/munge/munge.key ]; then
      mkdir -p /etc/munge
      mungekey -c -f 2>/dev/null || /usr/sbin/create-munge-key -f
      chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    rm -f /run/munge/munged.pid
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid --socket=/run/munge/munge.socket.2"
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$dir/munged.pid"
  fi
  cpus=$(nproc); mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=snarm-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -i
  slurmd
  for _ in $(seq 100); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
    sleep 0.2
  done
  sinfo -h -o %T | grep -qE '^idle' || { echo "slurm node did not come up" >&2; exit 1; }
  echo "export SLURM_CONF=$dir/slurm.conf"
  ;;
stop)
  for p in slurmd slurmctld munged; do
    f="$dir/$p.pid"
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
