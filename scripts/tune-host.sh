#!/usr/bin/env bash
# Checks a host for running corelane's shards on dedicated cores, and says how to fix what it
# finds. Reads only, unless `--apply` is given (as root): then it changes what can be changed
# at run time among the items the report lists, and prints the kernel parameters that need a
# reboot. Nothing else is ever touched. docs/deployment.md explains each item.
#
#   scripts/tune-host.sh [--cores LIST] [--nic IFACE] [--format text|tsv] [--apply]
#
#   --cores LIST   the cores the shards (and the net thread) will be pinned to, e.g. 2-5 or
#                  2,3,6 (default: $CORELANE_CORES, else every core this process may run on)
#   --nic IFACE    the network interface remote traffic uses (default: the default route's)
#   --format tsv   one line per item: item<TAB>status<TAB>detail<TAB>fix (status: ok, warn,
#                  fail or unknown; unknown when the host does not let us read it)
#   --apply        as root: apply the run-time fixes listed (governor, transparent huge pages,
#                  IRQ affinity, irqbalance, timer migration, UDP buffer limits, DAMON's threads
#                  onto housekeeping cores); without root it refuses and lists what it would
#                  change
#
# Exit status: 0 when the check ran (whatever it found), 2 for bad usage or a refused --apply.
set -uo pipefail

cores_arg="${CORELANE_CORES:-}"
nic=""
format=text
apply=0
while [ $# -gt 0 ]; do
    case "$1" in
        --cores) cores_arg="${2:-}"; shift 2 ;;
        --cores=*) cores_arg="${1#*=}"; shift ;;
        --nic) nic="${2:-}"; shift 2 ;;
        --nic=*) nic="${1#*=}"; shift ;;
        --format) format="${2:-}"; shift 2 ;;
        --format=*) format="${1#*=}"; shift ;;
        --apply) apply=1; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "tune-host: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$format" in text|tsv) ;; *) echo "tune-host: --format is text or tsv" >&2; exit 2 ;; esac

# ---- helpers ----------------------------------------------------------------------------

# Expands a CPU list ("0-2,5") into one number per line.
expand() {
    local part a b
    IFS=',' read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        [ -z "$part" ] && continue
        if [[ "$part" == *-* ]]; then
            a="${part%-*}"; b="${part#*-}"
            [[ "$a" =~ ^[0-9]+$ && "$b" =~ ^[0-9]+$ ]] || return 1
            seq "$a" "$b"
        else
            [[ "$part" =~ ^[0-9]+$ ]] || return 1
            echo "$part"
        fi
    done
}

# Whether number $1 is in CPU list $2.
in_list() {
    expand "$2" 2>/dev/null | grep -qx "$1"
}

# Joins lines with commas.
join() { paste -sd, -; }

read_file() { cat "$1" 2>/dev/null; }

# The value of kernel parameter $1 on the command line (empty if absent).
cmdline_param() {
    tr ' ' '\n' </proc/cmdline 2>/dev/null | sed -n "s/^$1=//p" | tail -1
}

# Strips the flag words of isolcpus= (managed_irq, domain, nohz) leaving the CPU list.
cpus_of_param() {
    echo "$1" | tr ',' '\n' | grep -E '^[0-9]+(-[0-9]+)?$' | join
}

declare -a rows=()
declare -a changes=()
report() { # item status detail fix
    rows+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"${4:-}")
}
would() { # description command
    changes+=("$1"$'\t'"$2")
}

# ---- the host ---------------------------------------------------------------------------

online="$(read_file /sys/devices/system/cpu/online)"
allowed="$(sed -n 's/^Cpus_allowed_list:\s*//p' /proc/self/status 2>/dev/null)"
[ -z "$allowed" ] && allowed="$online"
if [ -z "$cores_arg" ]; then
    cores_arg="$allowed"
fi
if ! cores_list="$(expand "$cores_arg")" || [ -z "$cores_list" ]; then
    echo "tune-host: --cores: not a CPU list: $cores_arg" >&2
    exit 2
fi
cores="$(echo "$cores_list" | join)"
# The online cores left out of the chosen ones: where IRQs and kernel threads can go.
housekeeping="$(for c in $(expand "$online"); do in_list "$c" "$cores" || echo "$c"; done | join)"

# The chosen cores that are not in CPU list $1, comma-separated.
missing_from() {
    local c out=""
    for c in $cores_list; do in_list "$c" "$1" || out="$out${out:+,}$c"; done
    echo "$out"
}

virt="none"
if command -v systemd-detect-virt >/dev/null 2>&1; then
    virt="$(systemd-detect-virt 2>/dev/null || true)"
    [ -z "$virt" ] && virt="none"
elif grep -qw hypervisor /proc/cpuinfo 2>/dev/null; then
    virt="unknown hypervisor"
fi
container="no"
if [ -f /.dockerenv ] || [ -f /run/.containerenv ] || grep -qE '(docker|containerd|kubepods|lxc)' /proc/1/cgroup 2>/dev/null; then
    container="yes"
fi

# environment: what limits this report
if [ "$virt" != "none" ] || [ "$container" = "yes" ]; then
    report environment warn "virtualization: $virt, container: $container; a guest's cores are host threads: isolation, frequency, C-states and IRQs are the host's to set, and some items below cannot be read" "run on bare metal for the latencies in docs/deployment.md, or apply this check on the hypervisor host"
else
    report environment ok "bare metal, not in a container"
fi

# cores: exist, online, allowed
missing=""
for c in $cores_list; do
    if ! in_list "$c" "$online" || ! in_list "$c" "$allowed"; then
        missing="$missing${missing:+,}$c"
    fi
done
if [ -n "$missing" ]; then
    report cores fail "cores $missing are not online or not allowed to this process (online: $online, allowed: $allowed)" "choose cores from $allowed (taskset/cgroup cpuset limit them)"
else
    report cores ok "cores $cores online and allowed (online: $online)"
fi

# isolcpus
iso="$(read_file /sys/devices/system/cpu/isolated)"
[ -z "$iso" ] && iso="$(cpus_of_param "$(cmdline_param isolcpus)")"
not_iso="$(missing_from "$iso")"
if [ -z "$not_iso" ]; then
    report isolcpus ok "cores $cores isolated from the scheduler (isolated: $iso)"
else
    report isolcpus warn "cores $not_iso not isolated (isolated: ${iso:-none}): other threads and kernel work run there" "kernel parameter isolcpus=managed_irq,domain,$cores (reboot), or a cpuset that holds everything else off them"
fi

# nohz_full
nohz="$(read_file /sys/devices/system/cpu/nohz_full)"
[ -z "$nohz" ] && nohz="$(cpus_of_param "$(cmdline_param nohz_full)")"
[ "$nohz" = "(null)" ] && nohz=""
not_nohz="$(missing_from "$nohz")"
if [ -z "$not_nohz" ]; then
    report nohz_full ok "cores $cores run tickless with one task (nohz_full: $nohz)"
else
    report nohz_full warn "cores $not_nohz keep the scheduler tick (nohz_full: ${nohz:-none}): a spinning shard is interrupted every tick" "kernel parameter nohz_full=$cores (reboot)"
fi

# rcu_nocbs
rcu="$(cpus_of_param "$(cmdline_param rcu_nocbs)")"
not_rcu="$(missing_from "$rcu")"
if [ -z "$not_rcu" ]; then
    report rcu_nocbs ok "RCU callbacks offloaded from cores $cores"
else
    report rcu_nocbs warn "RCU callbacks still run on cores $not_rcu" "kernel parameter rcu_nocbs=$cores (reboot)"
fi

# IRQs: default affinity, per-IRQ affinity on the chosen cores, irqbalance
irqaff="$(cmdline_param irqaffinity)"
if [ ! -r /proc/irq/default_smp_affinity ]; then
    report irq_affinity unknown "cannot read /proc/irq (a container?)" ""
else
    on_cores=""
    for d in /proc/irq/[0-9]*; do
        [ -r "$d/smp_affinity_list" ] || continue
        list="$(read_file "$d/smp_affinity_list")"
        # An IRQ that may go to every online core is "anywhere", not pinned to ours.
        [ "$list" = "$online" ] && continue
        for c in $cores_list; do
            if in_list "$c" "$list"; then
                on_cores="$on_cores${on_cores:+ }${d##*/}"
                break
            fi
        done
    done
    if [ -z "$on_cores" ] && [ -n "$irqaff" ]; then
        report irq_affinity ok "no IRQ pinned to cores $cores (irqaffinity=$irqaff)"
    elif [ -z "$housekeeping" ]; then
        report irq_affinity warn "every online core is chosen: IRQs have nowhere else to go" "leave at least one housekeeping core out of --cores"
    else
        report irq_affinity warn "IRQs that may run on cores $cores: ${on_cores:-the default affinity}" "kernel parameter irqaffinity=$housekeeping; now: echo $housekeeping > /proc/irq/N/smp_affinity_list for each IRQ (--apply does it)"
        if [ -z "$irqaff" ]; then
            mask=0
            for c in $(expand "$housekeeping"); do [ "$c" -lt 63 ] && mask=$((mask | (1 << c))); done
            would "default IRQ affinity to cores $housekeeping" "echo $(printf '%x' "$mask") > /proc/irq/default_smp_affinity"
        fi
        for n in $on_cores; do
            would "IRQ $n to cores $housekeeping" "echo $housekeeping > /proc/irq/$n/smp_affinity_list"
        done
    fi
fi
if pgrep -x irqbalance >/dev/null 2>&1; then
    report irqbalance warn "irqbalance runs: it moves IRQs back onto the chosen cores" "systemctl disable --now irqbalance, or IRQBALANCE_BANNED_CPULIST=$cores in /etc/default/irqbalance"
    would "stop irqbalance" "systemctl stop irqbalance"
else
    report irqbalance ok "irqbalance is not running"
fi

# CPU frequency: governor and limits
gov_bad=""; gov_seen=""; freq_bad=""
for c in $cores_list; do
    f="/sys/devices/system/cpu/cpu$c/cpufreq"
    [ -d "$f" ] || continue
    g="$(read_file "$f/scaling_governor")"
    gov_seen="yes"
    if [ -n "$g" ] && [ "$g" != "performance" ]; then
        gov_bad="$gov_bad${gov_bad:+,}$c:$g"
        would "governor of core $c to performance" "echo performance > $f/scaling_governor"
    fi
    min="$(read_file "$f/scaling_min_freq")"; max="$(read_file "$f/cpuinfo_max_freq")"
    if [ -n "$min" ] && [ -n "$max" ] && [ "$min" -lt "$max" ]; then
        freq_bad="$freq_bad${freq_bad:+,}$c:${min}-${max}kHz"
    fi
done
if [ -z "$gov_seen" ]; then
    report governor unknown "no cpufreq in sysfs for cores $cores (a VM, or frequency fixed by firmware)" "on bare metal: cpupower frequency-set -g performance"
elif [ -n "$gov_bad" ]; then
    report governor warn "governors other than performance: $gov_bad" "cpupower -c $cores frequency-set -g performance (--apply does it)"
else
    report governor ok "performance on cores $cores"
fi
if [ -z "$gov_seen" ]; then
    report frequency unknown "frequency limits not readable" ""
elif [ -n "$freq_bad" ]; then
    report frequency warn "the frequency may drop below the maximum: $freq_bad" "cpupower -c $cores frequency-set -d <max>; disable turbo for steadier latency"
else
    report frequency ok "minimum frequency is the maximum on cores $cores"
fi

# C-states
cs_deep=""; cs_seen=""
for c in $cores_list; do
    for s in /sys/devices/system/cpu/cpu$c/cpuidle/state*; do
        [ -d "$s" ] || continue
        cs_seen="yes"
        name="$(read_file "$s/name")"; lat="$(read_file "$s/latency")"; dis="$(read_file "$s/disable")"
        if [ "${dis:-0}" = "0" ] && [ -n "$lat" ] && [ "$lat" -gt 10 ]; then
            cs_deep="$cs_deep${cs_deep:+, }cpu$c:$name(${lat}us)"
        fi
    done
done
maxc="$(cmdline_param intel_idle.max_cstate)$(cmdline_param processor.max_cstate)"
if [ -z "$cs_seen" ]; then
    report cstates unknown "no cpuidle states in sysfs" "kernel parameters intel_idle.max_cstate=1 processor.max_cstate=1 on bare metal"
elif [ -n "$cs_deep" ]; then
    report cstates warn "deep idle states enabled (exit latency > 10 us): $cs_deep; a parked shard wakes through them" "kernel parameters intel_idle.max_cstate=1 processor.max_cstate=1, or keep /dev/cpu_dma_latency open at 0; Idle::Spin never enters them"
else
    report cstates ok "no idle state deeper than 10 us exit latency on cores $cores${maxc:+ (max_cstate=$maxc)}"
fi

# SMT siblings
smt_conflict=""; smt_shared=""
for c in $cores_list; do
    sib="$(read_file /sys/devices/system/cpu/cpu$c/topology/thread_siblings_list)"
    [ -z "$sib" ] && continue
    for s in $(expand "$sib"); do
        [ "$s" = "$c" ] && continue
        if in_list "$s" "$cores"; then
            [ "$s" -gt "$c" ] && smt_conflict="$smt_conflict${smt_conflict:+ }$c+$s"
        else
            smt_shared="$smt_shared${smt_shared:+ }$c+$s"
        fi
    done
done
smt_active="$(read_file /sys/devices/system/cpu/smt/active)"
if [ -n "$smt_conflict" ]; then
    report smt warn "chosen cores that are SMT siblings of each other (they share one physical core): $smt_conflict" "choose one thread per physical core, or nosmt (kernel parameter)"
elif [ -n "$smt_shared" ]; then
    report smt warn "the siblings of chosen cores run other work: $smt_shared" "isolate the siblings too (leave them idle), or nosmt"
else
    report smt ok "no chosen core shares a physical core with other work (SMT active: ${smt_active:-unknown})"
fi

# Transparent huge pages
thp="$(read_file /sys/kernel/mm/transparent_hugepage/enabled | sed -n 's/.*\[\(.*\)\].*/\1/p')"
if [ -z "$thp" ]; then
    report thp unknown "cannot read /sys/kernel/mm/transparent_hugepage" ""
elif [ "$thp" = "always" ]; then
    report thp warn "transparent huge pages: always (khugepaged compaction stalls)" "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (--apply does it)"
    would "transparent huge pages to madvise" "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
else
    report thp ok "transparent huge pages: $thp"
fi

# NUMA: node of each core and of the NIC
if [ -z "$nic" ]; then
    nic="$(awk '$2 == "00000000" { print $1; exit }' /proc/net/route 2>/dev/null)"
fi
core_nodes=""
for c in $cores_list; do
    n="$(ls -d /sys/devices/system/cpu/cpu$c/node* 2>/dev/null | head -1 | sed 's/.*node//')"
    core_nodes="$core_nodes${core_nodes:+,}$c:${n:-?}"
done
nodes_used="$(echo "$core_nodes" | tr ',' '\n' | cut -d: -f2 | sort -u | join)"
nic_node=""
[ -n "$nic" ] && nic_node="$(read_file /sys/class/net/$nic/device/numa_node)"
if [ -z "$nic" ] || [ -z "$nic_node" ] || [ "$nic_node" = "-1" ]; then
    detail="cores on NUMA nodes $nodes_used ($core_nodes)"
    if [[ "$nodes_used" == *,* ]]; then
        report numa warn "$detail: shards on more than one node" "keep shards on one node, the NIC's"
    else
        report numa unknown "$detail; the NIC (${nic:-none found}) reports no NUMA node (virtual, or one node)" ""
    fi
elif [[ "$nodes_used" == *,* ]] || [ "$nodes_used" != "$nic_node" ]; then
    report numa warn "cores on nodes $nodes_used ($core_nodes), NIC $nic on node $nic_node" "choose cores of node $nic_node (lscpu -e)"
else
    report numa ok "cores and NIC $nic on node $nic_node"
fi

# RLIMIT_MEMLOCK (io_uring's buffers)
memlock="$(ulimit -l)"
if [ "$memlock" = "unlimited" ] || [ "$memlock" -ge 65536 ] 2>/dev/null; then
    report memlock ok "locked-memory limit: $memlock KiB"
else
    report memlock warn "locked-memory limit: $memlock KiB; the runtime raises the soft limit up to the hard one and sizes glommio's buffers to fit" "LimitMEMLOCK=infinity (systemd), ulimit -l unlimited, or --ulimit memlock=-1 (docker)"
fi

# UDP socket buffer limits (a node asks for RemoteConfig::socket_buffer, 8 MiB by default; the
# kernel grants at most these, and a burst beyond the receive buffer is dropped)
want_buf=$((8 << 20))
rmem="$(read_file /proc/sys/net/core/rmem_max)"
wmem="$(read_file /proc/sys/net/core/wmem_max)"
if [ -z "$rmem" ] || [ -z "$wmem" ]; then
    report udp_buffers unknown "cannot read net.core.rmem_max / wmem_max (a network namespace may hide them)" ""
elif [ "$rmem" -ge "$want_buf" ] && [ "$wmem" -ge "$want_buf" ]; then
    report udp_buffers ok "UDP socket buffers up to $rmem (receive) / $wmem (send) bytes: a node's $want_buf are granted"
else
    report udp_buffers warn "net.core.rmem_max=$rmem, wmem_max=$wmem: a node's socket gets less than its $want_buf bytes, so bursts are dropped and QUIC slows down" "sysctl -w net.core.rmem_max=$want_buf net.core.wmem_max=$want_buf (--apply does it; persist in /etc/sysctl.d)"
    would "net.core.rmem_max and wmem_max to $want_buf" "echo $want_buf > /proc/sys/net/core/rmem_max && echo $want_buf > /proc/sys/net/core/wmem_max"
fi

# io_uring: allowed by the kernel and by seccomp
uring="$(read_file /proc/sys/kernel/io_uring_disabled)"
seccomp="$(sed -n 's/^Seccomp:\s*//p' /proc/self/status 2>/dev/null)"
if [ "${uring:-0}" != "0" ]; then
    report io_uring warn "kernel.io_uring_disabled=$uring: glommio cannot start, the runtime falls back to its portable executor" "sysctl kernel.io_uring_disabled=0"
elif [ "${seccomp:-0}" = "2" ]; then
    report io_uring warn "a seccomp filter is on (containers: Docker's default profile refuses io_uring); the runtime falls back to its portable executor if it refuses" "allow io_uring_setup, io_uring_enter, io_uring_register in the profile (docs/operations.md)"
elif [ -z "$uring" ] && [ -z "$seccomp" ]; then
    report io_uring unknown "neither kernel.io_uring_disabled nor the seccomp status is readable" ""
else
    report io_uring ok "io_uring allowed (io_uring_disabled=${uring:-absent}, seccomp=${seccomp:-0})"
fi

# clocksource
clk="$(read_file /sys/devices/system/clocksource/clocksource0/current_clocksource)"
if [ -z "$clk" ]; then
    report clocksource unknown "cannot read the clocksource" ""
elif [ "$clk" = "tsc" ]; then
    report clocksource ok "tsc (Instant::now() without a system call)"
else
    report clocksource warn "clocksource $clk: reading the time may cost a system call or a VM exit" "kernel parameter clocksource=tsc tsc=reliable, where the TSC is invariant"
fi

# timer migration
tm="$(read_file /proc/sys/kernel/timer_migration)"
if [ -z "$tm" ]; then
    report timer_migration unknown "cannot read kernel.timer_migration" ""
elif [ "$tm" != "0" ]; then
    report timer_migration warn "kernel.timer_migration=$tm: timers may move onto the chosen cores" "sysctl kernel.timer_migration=0 (--apply does it)"
    would "kernel.timer_migration to 0" "echo 0 > /proc/sys/kernel/timer_migration"
else
    report timer_migration ok "kernel.timer_migration=0"
fi

# DAMON: its kernel threads (kdamond) sample memory access in bursts of milliseconds (on a
# VM whose host reclaims guest memory they run every sampling interval: 1.2-3.5 ms on a shard's
# core every 0.5 s, measured by the trading pipeline's tails, docs/benchmarks.md)
# A kdamond thread lives exactly while its DAMON context runs; /proc shows it to anyone.
damon_admin=/sys/kernel/mm/damon/admin/kdamonds
damon_on="$(for c in /proc/[0-9]*/comm; do
    case "$(read_file "$c")" in kdamond*) p="${c%/comm}"; echo "${p#/proc/}" ;; esac
done | sort -n | tr '\n' ' ' | sed 's/ $//')"
damon_on_cores=""
for pid in $damon_on; do
    kd_allowed="$(sed -n 's/^Cpus_allowed_list:\s*//p' "/proc/$pid/status" 2>/dev/null)"
    for c in $cores_list; do
        if [ -z "$kd_allowed" ] || in_list "$c" "$kd_allowed"; then
            damon_on_cores="$damon_on_cores${damon_on_cores:+ }$pid"
            break
        fi
    done
done
if [ -z "$damon_on" ]; then
    report damon ok "no kdamond thread running"
elif [ -z "$damon_on_cores" ]; then
    report damon ok "kdamond threads ($damon_on) kept off cores $cores"
else
    # Where they can go: the housekeeping cores (--apply moves them), or nowhere.
    move="taskset -pc $housekeeping <pid> for each (--apply does it)"
    [ -z "$housekeeping" ] && move="leave a housekeeping core out of --cores and move them there (taskset -pc)"
    report damon warn "kdamond threads ($damon_on_cores) may run on cores $cores: each sampling preempts a shard for milliseconds" "$move, or stop them: echo off > $damon_admin/N/state (a guest's DAMON may serve the host's memory reclaim: ask its operator)"
    if [ -n "$housekeeping" ]; then
        for pid in $damon_on_cores; do
            would "kdamond $pid onto cores $housekeeping" "taskset -pc $housekeeping $pid"
        done
    fi
fi

# ---- output -----------------------------------------------------------------------------

count() { printf '%s\n' "${rows[@]}" | cut -f2 | grep -cx "$1"; }
if [ "$format" = tsv ]; then
    printf '%s\n' "${rows[@]}"
else
    echo "corelane host check: cores $cores; $(nproc) cores online ($online); virtualization: $virt; container: $container"
    echo
    for r in "${rows[@]}"; do
        IFS=$'\t' read -r item status detail fix <<<"$r"
        printf '%-9s %-16s %s\n' "[$status]" "$item" "$detail"
        [ -n "$fix" ] && [ "$status" != ok ] && printf '%-26s fix: %s\n' "" "$fix"
    done
    echo
    echo "summary: $(count ok) ok, $(count warn) warn, $(count fail) fail, $(count unknown) unknown"
fi

if [ "$apply" = 1 ]; then
    echo
    if [ "${#changes[@]}" -eq 0 ]; then
        echo "apply: nothing to change at run time (kernel parameters, if any, need a reboot)"
        exit 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "apply: refused: changing the host needs root. It would change:"
        for c in "${changes[@]}"; do
            IFS=$'\t' read -r what cmd <<<"$c"
            echo "  would: $what   ($cmd)"
        done
        exit 2
    fi
    for c in "${changes[@]}"; do
        IFS=$'\t' read -r what cmd <<<"$c"
        if sh -c "$cmd" 2>/dev/null; then
            echo "  changed: $what"
        else
            echo "  failed: $what   ($cmd)"
        fi
    done
    echo "apply: done; kernel parameters in the report need a reboot"
fi
exit 0
