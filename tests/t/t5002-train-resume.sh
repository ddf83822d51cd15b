#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train checkpoints: kill -9 in the middle of a run (checked: the trainer died of SIGKILL
# before its last step) and --resume gives exactly the losses of an uninterrupted run;
# SIGINT/SIGTERM save and exit 130; damaged or truncated checkpoints are refused with exit 4.
. "$(dirname "$0")/test-lib.sh"

# STEPS is far above the last kill point plus what the log pipe can hold (see kill_at_step), so
# that a killed run can never have finished first (the resumed runs save only at the end: the
# saves every 3 steps, with their fsyncs, are what costs time)
STEPS=800
M="--synthetic 64 --layers 2 --width 32 --heads 2 --context 16 --batch 4 --steps $STEPS -q"

losses() { cut -d, -f1,2 "$1"; }   # step and loss columns

# wait_steps LOG N PID: until LOG has N lines (the run is past its start-up) or PID is gone
wait_steps() {
    until [ "$(cat "$1" 2>/dev/null | wc -l)" -ge "$2" ] || ! kill -0 "$3" 2>/dev/null; do
        sleep 0.001
    done
}

# kill_at_step K: start `cm-train $M --ckpt-every 3 --ckpt part.bin` with its log (--log -)
# going into a FIFO, read K lines (steps) of it, then SIGKILL the trainer; the log it wrote goes
# to part.jsonl. The trainer cannot run ahead of this reader by more than the pipe holds
# (64 KiB: under 550 lines of at least 120 bytes), so with STEPS > K + 550 it is still running
# when the signal comes. Fails unless it died of SIGKILL (exit 137) with fewer than STEPS steps
# logged and a checkpoint (if any) before step STEPS.
kill_at_step() {
    rm -f part.bin part.jsonl part.fifo && mkfifo part.fifo || return 1
    cm-train $M --ckpt-every 3 --ckpt part.bin --log - >part.fifo 2>part.err &
    pid=$!
    exec 4<part.fifo
    i=0
    while [ $i -lt "$1" ] && IFS= read -r line <&4; do
        printf '%s\n' "$line" >>part.jsonl
        i=$((i + 1))
    done
    kill -KILL $pid 2>/dev/null
    wait $pid
    rc=$?
    cat <&4 >>part.jsonl
    exec 4<&-
    rm -f part.fifo
    if [ $i != "$1" ]; then
        echo "the log ended after $i steps, before step $1 (exit $rc)" >&2
        cat part.err >&2
        return 1
    fi
    if [ $rc != 137 ]; then
        echo "cm-train exited $rc, not 137 (SIGKILL): the kill did not land mid-run" >&2
        return 1
    fi
    n=$(wc -l <part.jsonl)
    if [ "$n" -ge $STEPS ]; then
        echo "$n of $STEPS steps logged: the run had finished when the kill came" >&2
        return 1
    fi
    cs=none
    if [ -e part.bin ]; then
        cs=$(cm-train eval --ckpt part.bin --synthetic 64 --eval-batches 1 |
             sed -n 's/.*"step":\([0-9]*\),.*/\1/p')
        if [ -z "$cs" ] || [ "$cs" -ge $STEPS ]; then
            echo "the checkpoint is at step '$cs' of $STEPS" >&2
            return 1
        fi
    fi
    say "SIGKILL after reading step $1: exit $rc, $n of $STEPS steps logged, checkpoint at step $cs"
}

test_expect_success 'an uninterrupted run, checkpoints every 3 steps' '
    cm-train $M --ckpt-every 3 --ckpt full.bin --log full.jsonl &&
    test $(wc -l <full.jsonl) = $STEPS &&
    losses full.jsonl >full.loss
'

test_expect_success 'kill -9 mid-run after steps 2, 7 and 40 (exit 137 checked), resume: the same losses exactly' '
    for at in 2 7 40; do
        kill_at_step $at &&
        cm-train $M --ckpt part.bin --log part.jsonl --resume 2>err &&
        losses part.jsonl >part.loss &&
        test_cmp full.loss part.loss || return 1
    done
'

test_expect_success 'resume after a run that completed changes nothing; more --steps extend it' '
    cp full.bin again.bin && cp full.jsonl again.jsonl &&
    cm-train $M --ckpt again.bin --log again.jsonl --resume &&
    losses again.jsonl >again.loss && test_cmp full.loss again.loss &&
    cm-train --synthetic 64 --steps $((STEPS + 2)) -q --ckpt again.bin --log again.jsonl --resume &&
    test $(wc -l <again.jsonl) = $((STEPS + 2))
'

test_expect_success 'resume with a different shape or seed is refused (exit 2)' '
    test_expect_code 2 cm-train $M --ckpt full.bin --width 64 --resume 2>err &&
    test_grep "differ from the checkpoint" err &&
    test_expect_code 2 cm-train $M --ckpt full.bin --seed 9 --resume 2>err
'

test_expect_success 'resume on other data is refused (exit 4)' '
    test_expect_code 4 cm-train --synthetic 65 --ckpt full.bin --resume -q 2>err &&
    test_grep "other data" err
'

test_expect_success 'SIGINT: checkpoint saved at the step boundary, exit 130, resumable' '
    rm -f int.bin int.jsonl &&
    { cm-train $M --steps 100000 --ckpt int.bin --log int.jsonl 2>err & pid=$!; } &&
    wait_steps int.jsonl 2 $pid && kill -INT $pid; wait $pid; rc=$? &&
    test $rc = 130 &&
    test -s int.bin &&
    test_grep "interrupted after step" err &&
    n=$(wc -l <int.jsonl) &&
    cm-train eval --ckpt int.bin --synthetic 64 >ev &&
    test_grep "\"step\":$n," ev
'

test_expect_success 'SIGTERM likewise' '
    { cm-train $M --steps 100000 --ckpt term.bin --log term.jsonl 2>err & pid=$!; } &&
    wait_steps term.jsonl 2 $pid && kill -TERM $pid; wait $pid; rc=$? &&
    test $rc = 130 && test -s term.bin
'

test_expect_success '--time-limit stops with a checkpoint and exit 0' '
    cm-train $M --steps 100000 --time-limit 0.3 --ckpt tl.bin --log tl.jsonl 2>err &&
    test -s tl.bin &&
    n=$(wc -l <tl.jsonl) && test $n -lt 100000
'

test_expect_success 'no temporary file is left behind' '
    ! ls *.tmp* 2>/dev/null
'

test_expect_success 'truncated checkpoint: exit 4, names the file and offset' '
    size=$(wc -c <full.bin) &&
    head -c $((size - 100)) full.bin >trunc.bin &&
    test_expect_code 4 cm-train eval --ckpt trunc.bin --synthetic 64 2>err &&
    test_grep "trunc.bin: offset [0-9]*: checkpoint is truncated" err &&
    head -c 100 full.bin >short.bin &&
    test_expect_code 4 cm-train eval --ckpt short.bin --synthetic 64 2>err &&
    test_grep "short.bin: offset 100: truncated" err
'

test_expect_success 'a flipped byte in the weights or the header: exit 4' '
    cp full.bin flip.bin &&
    printf "\\377" | dd of=flip.bin bs=1 seek=5000 conv=notrunc 2>/dev/null &&
    test_expect_code 4 cm-train eval --ckpt flip.bin --synthetic 64 2>err &&
    test_grep "checksum mismatch" err &&
    cp full.bin flip2.bin &&
    printf "\\007" | dd of=flip2.bin bs=1 seek=40 conv=notrunc 2>/dev/null &&
    test_expect_code 4 cm-train --synthetic 64 --ckpt flip2.bin --resume -q 2>err &&
    test_grep "damaged checkpoint header" err
'

test_expect_success 'not a checkpoint: exit 4' '
    echo hello >junk.bin &&
    test_expect_code 4 cm-train eval --ckpt junk.bin --synthetic 64 2>err &&
    test_grep "junk.bin" err
'

test_expect_success '--ckpt DIR writes DIR/ckpt.bin' '
    mkdir cdir &&
    cm-train $M --steps 2 --ckpt cdir &&
    test -s cdir/ckpt.bin
'

test_expect_success 'a second SIGINT ends at once: exit 130, no temporary left' '
    W="--synthetic 512 --layers 4 --width 256 --heads 4 --context 128 --batch 8 -q"
    { cm-train $W --steps 100000 --ckpt-every 1 --ckpt two.bin --log two.jsonl 2>err & pid=$!; } &&
    wait_steps two.jsonl 1 $pid && kill -INT $pid && sleep 0.05 && kill -INT $pid
    wait $pid; rc=$?
    say "exit $rc; $(cat err)" &&
    test $rc = 130 &&
    test -z "$(ls | grep "^two\.bin\.tmp")"
'

test_done
