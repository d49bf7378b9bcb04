#!/usr/bin/env bash
# A one-node Slurm (Debian's slurm-wlm 22.05 + munge) on localhost, for running the SLURM profile
# end to end (.ci/slurm/e2e.sh). Root only; no systemd: each daemon is started by hand and its pid
# file is kept, so `stop` ends exactly the daemons `start` started and nothing else.
# No accounting (no slurmdbd): `sacct` fails here, so Snakemake must use
# --slurm-status-command squeue, which profiles/slurm sets; MinJobAge keeps finished jobs visible
# to squeue long enough (>= 120 s, the plugin's own threshold).
#
#   bash .ci/slurm/local_cluster.sh start   install (apt) if missing, write slurm.conf, start daemons
#   bash .ci/slurm/local_cluster.sh stop    stop what `start` started (by pid file)
#   bash .ci/slurm/local_cluster.sh status
set -euo pipefail
HOST="$(hostname -s)"
STARTED=/run/slurm/started-by-ubench   # pid files of the daemons this script started

log() { echo "[local_cluster] $*" >&2; }

install_packages() {
  if dpkg -s slurm-wlm munge >/dev/null 2>&1; then return; fi
  log "installing slurm-wlm and munge (apt)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; }; then
    log "ERROR: could not install slurm-wlm/munge with apt (is the Debian archive reachable?)"
    exit 3
  fi
}

write_slurm_conf() {
  local cpus mem
  if [ -s /etc/slurm/slurm.conf ] && ! grep -q "written by .ci/slurm/local_cluster.sh" /etc/slurm/slurm.conf; then
    log "ERROR: /etc/slurm/slurm.conf exists and is not ours: this script is for a machine without Slurm"
    exit 5
  fi
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 2048 ))   # leave ~2 GB to the OS
  cat >/etc/slurm/slurm.conf <<CONF
# One-node Slurm on localhost, written by .ci/slurm/local_cluster.sh (no cgroups, no GPUs, no accounting).
ClusterName=ubench-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=120
SlurmdTimeout=300
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
  log "slurm.conf: node $HOST, CPUs=$cpus, RealMemory=$mem MB, partition debug"
}

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  if [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    log "munged already running (not ours to stop)"; return
  fi
  runuser -u munge -- /usr/sbin/munged
  echo /run/munge/munged.pid >>"$STARTED"
  munge -n | unmunge >/dev/null
}

start_daemon() {   # name pidfile
  local name=$1 pidfile=$2
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "$name already running (not ours to stop)"; return
  fi
  "$name"
  echo "$pidfile" >>"$STARTED"
}

start() {
  [ "$(id -u)" = 0 ] || { log "ERROR: run as root (it installs packages and starts daemons)"; exit 2; }
  install_packages
  mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  : >"$STARTED"
  start_munge
  write_slurm_conf
  start_daemon slurmctld /run/slurm/slurmctld.pid
  start_daemon slurmd /run/slurm/slurmd.pid
  for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 1
  done
  if sinfo -h -o %T | grep -qE 'down|drain'; then scontrol update nodename="$HOST" state=resume || true; fi
  sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || { log "ERROR: the node did not come up: $(sinfo -h -o '%T %E')"; exit 4; }
  sinfo
}

stop() {
  [ -s "$STARTED" ] || { log "nothing started by this script"; return 0; }
  # daemons in reverse start order: slurmd, slurmctld, munged
  tac "$STARTED" | while read -r pidfile; do
    [ -s "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      log "stopped $(basename "$pidfile" .pid) (pid $pid)"
    fi
  done
  rm -f "$STARTED"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo; squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
