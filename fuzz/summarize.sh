#!/bin/sh
# One results-table row per finished run log: target, run, seconds, executions, exec/s, corpus, cov, ft, outcome.
cd "$(dirname "$0")"
for log in "$@"; do
    t=$(basename "$log" | sed 's/\.[0-9]*\.log$//')
    n=$(basename "$log" .log | sed 's/.*\.//')
    done_line=$(grep -a "^Done .* runs in" "$log" | tail -1)
    runs=$(echo "$done_line" | awk '{print $2}')
    secs=$(echo "$done_line" | awk '{print $5}')
    [ -z "$runs" ] && runs=$(grep -a "number_of_executed_units" "$log" | awk '{print $2}')
    eps=$(grep -a "average_exec_per_sec" "$log" | awk '{print $2}')
    last=$(grep -a -E "^#[0-9]+.*cov: " "$log" | tail -1)
    cov=$(echo "$last" | grep -a -o "cov: [0-9]*" | awk '{print $2}')
    ft=$(echo "$last" | grep -a -o "ft: [0-9]*" | awk '{print $2}')
    corp=$(echo "$last" | grep -a -o "corp: [0-9]*/[0-9]*[A-Za-z]*" | awk '{print $2}')
    if grep -a -q "deadly signal\|ERROR: libFuzzer" "$log"; then
        outcome="crash: $(grep -a -o "Test unit written to .*" "$log" | sed 's/Test unit written to //')"
    else
        outcome="no crash"
    fi
    echo "| \`$t\` | $n | ${secs:-?} s | $runs | $eps | $corp | $cov | $ft | $outcome |"
done
