#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-ingest and stop signals (lib/atomic.h): SIGINT while it reads a slow pipe stops it at a
# safe point (between JSONL lines, archive entries), the records before are all written and
# whole, the message names the input and where, and the exit status is 130; -o FILE is then
# put in place with those records and --stats is not written; a second SIGINT ends it at once
# and leaves no temporary file.
. "$(dirname "$0")/test-lib.sh"

# valid_records FILE: every line of FILE is one JSON object with a string content; prints the
# count
valid_records() {
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], "rb"):
    assert line.endswith(b"\n"), "a cut line"
    r = json.loads(line)
    assert isinstance(r["content"], str), r
    n += 1
print(n)
' "$1"
}

# slow_lines N: a burst of 1000 JSONL records (about 220 KB: past what cm-ingest and
# libarchive read ahead before the first line), then N more, one every 50 ms; quiet when the
# reader goes away
slow_lines() {
    python3 -c '
import json, sys, time
pad = "# " + "x" * 200 + "\n"
try:
    for i in range(1000 + int(sys.argv[1])):
        sys.stdout.write(json.dumps({"path": "f%d.py" % i, "content": "x = %d\n" % i + pad}) + "\n")
        sys.stdout.flush()
        if i >= 1000:
            time.sleep(0.05)
except BrokenPipeError:
    sys.stderr.close()
' "$1"
}

# slow_copy FILE: FILE in 8 KiB pieces, one every 20 ms
slow_copy() {
    python3 -c '
import sys, time
d = open(sys.argv[1], "rb").read()
try:
    for i in range(0, len(d), 8192):
        sys.stdout.buffer.write(d[i:i + 8192])
        sys.stdout.flush()
        time.sleep(0.02)
except BrokenPipeError:
    sys.stderr.close()
' "$1"
}

# stop_after SECONDS PID: SIGINT to PID after SECONDS; wait for it; its status in rc
stop_after() {
    sleep "$1" &&
    kill -INT "$2" &&
    { wait "$2"; echo $? >rc; }
}

test_expect_success 'SIGINT on a slow JSONL pipe: exit 130, whole records up to the line named' '
    mkfifo feed &&
    { slow_lines 600 >feed & } &&
    writer=$! &&
    { cm-ingest --no-progress <feed >out 2>err & } &&
    pid=$! &&
    stop_after 2 $pid &&
    { kill $writer 2>/dev/null; wait $writer 2>/dev/null; true; } &&
    test "$(cat rc)" = 130 &&
    test_grep "^cm-ingest: interrupted: stdin: at line [0-9]* (records before it are complete)$" err &&
    line=$(sed -n "s/.*interrupted: stdin: at line \([0-9]*\) .*/\1/p" err) &&
    n=$(valid_records out) &&
    test "$n" -ge 1000 && test "$n" -lt 1600 &&
    test "$n" = $((line - 1)) &&
    tail -1 out | grep "\"path\":\"f$((n - 1)).py\""
'

test_expect_success 'SIGINT on a slow tar pipe: the entries before the one named are all there' '
    mkdir src &&
    i=0 && while [ $i -lt 600 ]; do
        printf "x = %d\n# %0900d\n" $i 0 >src/f$(printf %04d $i).py; i=$((i + 1))
    done &&
    tar cf src.tar --sort=name -C src . &&
    mkfifo feed2 &&
    { slow_copy src.tar >feed2 & } &&
    writer=$! &&
    { cm-ingest --no-progress --no-source <feed2 >out 2>err & } &&
    pid=$! &&
    stop_after 1 $pid &&
    { kill $writer 2>/dev/null; wait $writer 2>/dev/null; true; } &&
    test "$(cat rc)" = 130 &&
    test_grep "^cm-ingest: interrupted: -: at entry .*f[0-9]*\.py. (records before it are complete)$" err &&
    k=$(sed -n "s/.*at entry .*f0*\([0-9][0-9]*\)\.py.*/\1/p" err) &&
    n=$(valid_records out) &&
    test "$n" -ge 1 && test "$n" -lt 600 && test "$n" = "$k" &&
    tail -1 out | grep "\"path\":\"f$(printf %04d $((n - 1))).py\""
'

test_expect_success 'SIGINT with -o FILE and --stats: FILE holds the records, no stats, no temp' '
    mkfifo feed3 &&
    { slow_lines 600 >feed3 & } &&
    writer=$! &&
    { cm-ingest -q -o out.jsonl --stats st.json <feed3 2>err & } &&
    pid=$! &&
    stop_after 2 $pid &&
    { kill $writer 2>/dev/null; wait $writer 2>/dev/null; true; } &&
    test "$(cat rc)" = 130 &&
    test_grep "interrupted: stdin: at line" err &&
    n=$(valid_records out.jsonl) && test "$n" -ge 1000 &&
    test ! -e st.json &&
    test -z "$(ls | grep "\.tmp\.")"
'

test_expect_success 'a second SIGINT ends it at once and removes the temporary -o file' '
    mkfifo feed4 &&
    { sleep 30 >feed4 & } &&
    writer=$! &&
    { cm-ingest -q -o out4.jsonl <feed4 2>err & } &&
    pid=$! &&
    sleep 1 &&
    ls | grep "^out4.jsonl.tmp.$pid$" &&
    kill -INT $pid && sleep 0.5 &&
    kill -0 $pid &&
    kill -INT $pid &&
    { wait $pid; echo $? >rc; } &&
    { kill $writer 2>/dev/null; wait $writer 2>/dev/null; true; } &&
    test "$(cat rc)" = 130 &&
    test ! -e out4.jsonl &&
    test -z "$(ls | grep "\.tmp\.")"
'

test_done
