#!/bin/sh
# Writes the results table rows of README.md from the run logs (in the order the runs were made).
cd "$(dirname "$0")"
logs=$(awk '/ end /{sub("log=","",$5); print $5}' logs/runs.txt)
rows=$(./summarize.sh $logs)
python3 - "$rows" <<'PY'
import sys, re
from datetime import datetime
rows = sys.argv[1]
# A run stopped by a failed oracle has no "Done" line: its length is from the runner's start and end times.
start = None
lengths = []
for line in open('logs/runs.txt'):
    ts, what = line.split()[0], line.split()[1]
    t = datetime.fromisoformat(ts.replace('Z', '+00:00'))
    if what == 'start':
        start = t
    elif what == 'end' and start:
        lengths.append(int((t - start).total_seconds()))
out = []
for row, secs in zip(rows.splitlines(), lengths):
    out.append(row.replace('| ? s |', f'| {secs} s (stopped) |'))
rows = "\n".join(out)
s = open('README.md').read()
start = s.index('| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n') + len('| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n')
end = s.index('\n\n', start)
s = s[:start] + rows + s[end:]
open('README.md', 'w').write(s)
PY
