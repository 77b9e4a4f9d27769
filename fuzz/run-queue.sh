#!/bin/sh
# Runs fuzz targets one at a time, nicely, from a queue file (one line per run: `<target> [libFuzzer options]`),
# appending to it while it runs is fine. A line `stop` ends it. Each run: 10 minutes unless the line says
# otherwise, corpus in corpus/<target>, seeds from seeds/<target>, log in logs/<target>.<n>.log.
cd "$(dirname "$0")"
queue=${1:-run-queue.txt}
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
touch "$queue"
while :; do
    line=$(head -n1 "$queue")
    if [ -z "$line" ]; then sleep 15; continue; fi
    sed -i 1d "$queue"
    [ "$line" = stop ] && exit 0
    set -- $line
    t=$1; shift
    mkdir -p "corpus/$t" "artifacts/$t"
    n=1; while [ -e "logs/$t.$n.log" ]; do n=$((n+1)); done
    echo "$(date -u +%FT%TZ) start $t $*" >> logs/runs.txt
    nice -n 19 "$bin/$t" "corpus/$t" "seeds/$t" -max_total_time=600 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "$@" > "logs/$t.$n.log" 2>&1
    echo "$(date -u +%FT%TZ) end $t rc=$? log=logs/$t.$n.log" >> logs/runs.txt
done
