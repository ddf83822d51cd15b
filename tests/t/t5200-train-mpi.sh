#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train data parallel over OpenMPI (mpirun -np 2 on 2 cores, one thread per rank): N ranks
# with batch B train as one process with --accum N; one rank is the plain program bit for bit;
# --resume with another number of ranks; a SIGKILLed rank ends the job within seconds, naming
# the rank, and --resume continues bit-identically; --zero 1 gives the same losses.
. "$(dirname "$0")/test-lib.sh"

# --oversubscribe lets 3 ranks share 2 cores
mpi_setup

STEPS=20
[ "$CM_SAN" = 1 ] && STEPS=10
# a constant learning rate after a short warmup: a run cut at step k and resumed with
# another --steps follows the same schedule
SHAPE="--layers 2 --width 32 --heads 2 --context 16 --batch 4 --threads 1 --warmup 2 --lr 1e-3
       --min-lr 1e-3"
LOUD="--synthetic 96 $SHAPE"
M="$LOUD -q"

# mpi N ARGS...: cm-train on N ranks (ended after 300 s: a hang is a failure, not a stall)
mpi() {
    n=$1
    shift
    timeout -k 5 300 mpirun -np "$n" --oversubscribe cm-train "$@"
}

losses() { cut -d, -f1,2 "$1"; }   # step and loss columns

# close A.jsonl B.jsonl: the same steps, losses within 1e-5 relative at every step
close() {
    losses "$1" >close.a && losses "$2" >close.b &&
    test "$(wc -l <close.a)" = "$(wc -l <close.b)" && test -s close.a &&
    paste -d, close.a close.b | sed 's/"[a-z]*"://g' |
    awk -F, '$1 != $3 { print "step " $1 " against " $3; bad = 1 }
             { d = ($2 - $4) / $2; if (d < 0) d = -d; if (d > m) m = d; if (d > 1e-5) bad = 1 }
             END { print "largest relative difference " m + 0; exit bad }'
}

# no_timing LOG: the log without the fields that measure time
no_timing() { sed -E 's/"tokens_per_s":[^,]*,"mfu_gflops":[^,]*,"elapsed_s":[0-9.]*//' "$1"; }

have_mpi=1
if ! command -v mpirun >/dev/null 2>&1; then
    have_mpi=0
    why="mpirun not found (tools/deps.sh installs openmpi-bin and libopenmpi-dev)"
elif mpi 2 $M --steps 1 2>probe.err; [ $? != 0 ] && grep -q "built without MPI" probe.err; then
    have_mpi=0
    why="this cm-train was built without MPI (mpicc was missing at build time)"
fi

# t TITLE BODY: the test, or a skip that CI counts as a failure
t() {
    if [ $have_mpi = 1 ]; then test_expect_success "$1" "$2"; else test_skip_claim "$1" "$why"; fi
}

t '2 ranks with batch B = one process with batch B and --accum 2 (losses within 1e-5)' '
    cm-train $M --accum 2 --steps $STEPS --ckpt one.bin --log one.jsonl &&
    mpi 2 $M --steps $STEPS --ckpt two.bin --log two.jsonl --eval-every 5 2>two.err &&
    close one.jsonl two.jsonl &&
    test "$(grep -c "\"valid_loss\"" two.jsonl)" = $((STEPS / 5)) &&
    cut -d, -f5 one.jsonl >tok.a && cut -d, -f5 two.jsonl >tok.b && test_cmp tok.a tok.b &&
    head -1 two.jsonl | test_grep "\"tokens\":128," -
'

t 'on a corpus (--data, --where, --keyword-weights): 2 ranks = one process with --accum 2' '
    small_corpus &&
    C="--data corpus --where \"path LIKE '\''m1%'\''\" --keyword-weights import,model" &&
    eval cm-train $C $SHAPE -q --accum 2 --steps $STEPS --eval-every 5 --ckpt c1.bin --log c1.jsonl &&
    eval mpi 2 $C $SHAPE -q --steps $STEPS --eval-every 5 --ckpt c2.bin --log c2.jsonl &&
    close c1.jsonl c2.jsonl &&
    test_grep "bits_per_byte" c2.jsonl
'

t 'rank 0 alone logs and speaks: one start-up line, the job total of tokens' '
    mpi 2 $LOUD --steps 2 --ckpt talk.bin --log talk.jsonl 2>talk.err &&
    test "$(grep -c "data parallel on 2 ranks" talk.err)" = 1 &&
    test "$(grep -c "^cm-train: GPT" talk.err)" = 1 &&
    test "$(grep -c "valid loss" talk.err)" = 1 &&
    test "$(wc -l <talk.jsonl)" = 2 && ! grep "cm-train\[1\]" talk.err
'

t 'one rank under mpirun is the plain program: the same log and checkpoint bytes' '
    cm-train $M --steps $STEPS --accum 2 --eval-every 4 --ckpt p.bin --log p.jsonl &&
    mpi 1 $M --steps $STEPS --accum 2 --eval-every 4 --ckpt m1.bin --log m1.jsonl &&
    cmp p.bin m1.bin && no_timing p.jsonl >p.log && no_timing m1.jsonl >m1.log &&
    test_cmp p.log m1.log
'

t '--resume with another number of ranks: the same global step, the same losses (1e-5)' '
    cut=$((STEPS / 2)) &&
    mpi 2 $M --steps $cut --ckpt r21.bin --log r21.jsonl &&
    cm-train $M --steps $STEPS --ckpt r21.bin --log r21.jsonl --resume &&
    close two.jsonl r21.jsonl &&
    cm-train $M --accum 2 --steps $cut --ckpt r12.bin --log r12.jsonl &&
    mpi 2 $M --steps $STEPS --ckpt r12.bin --log r12.jsonl --resume &&
    close two.jsonl r12.jsonl &&
    mpi 2 $M --accum 2 --steps $cut --ckpt r42.bin --log r42.jsonl &&
    mpi 4 $M --steps $STEPS --ckpt r42.bin --log r42.jsonl --resume &&
    cm-train $M --accum 4 --steps $STEPS --log four.jsonl &&
    close four.jsonl r42.jsonl
'

t '--resume on a number of ranks that does not divide the step: exit 2, no hang' '
    test_expect_code 2 mpi 3 $M --steps $STEPS --ckpt r12.bin --resume 2>err &&
    test_grep "3 ranks cannot share them" err
'

t 'an error on rank 0 alone (an unwritable --log) ends every rank with its status' '
    test_expect_code 3 mpi 2 $M --steps 2 --log nodir/x.jsonl 2>err &&
    test_grep "cannot open log" err
'

t 'srun without --mpi=pmix (tasks MPI does not join) is refused: exit 2' '
    test_expect_code 2 env SLURM_STEP_NUM_TASKS=2 SLURM_PROCID=0 cm-train $M --steps 1 2>err &&
    test_grep "srun --mpi=pmix" err
'

# The kill test: a longer run, checkpoints every 5 steps; rank 1 is SIGKILLed once rank 0 has
# logged KILL_AT steps. The job must end within 10 s with mpirun naming rank 1; --resume (2
# ranks) must then reach exactly the uninterrupted run's losses and final checkpoint.
LONG=400
[ "$CM_SAN" = 1 ] && LONG=150
KILL_AT=12
K="$M --steps $LONG --ckpt-every 5"

# rank_pid PID R: the pid of rank R among the descendants of PID (timeout, mpirun, the ranks)
rank_pid() {
    for p in $(pgrep -P "$1"); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
            echo "$p"
            return 0
        fi
        rank_pid "$p" "$2" && return 0
    done
    return 1
}

t 'an uninterrupted 2-rank run with checkpoints every 5 steps' '
    mpi 2 $K --ckpt full.bin --log full.jsonl &&
    test "$(wc -l <full.jsonl)" = $LONG
'

t 'SIGKILL of rank 1: the job ends within 10 s, mpirun names rank 1; no hang' '
    rm -f part.bin part.jsonl &&
    { timeout -k 5 300 mpirun -np 2 --oversubscribe cm-train $K --ckpt part.bin --log part.jsonl \
        2>kill.err & mp=$!; } &&
    until [ "$(cat part.jsonl 2>/dev/null | wc -l)" -ge $KILL_AT ] || ! kill -0 $mp 2>/dev/null
    do sleep 0.01; done &&
    r1=$(rank_pid $mp 1) && kill -KILL $r1 && t0=$(date +%s.%N) &&
    { wait $mp; rc=$?; } ; t1=$(date +%s.%N) &&
    n=$(wc -l <part.jsonl) &&
    secs=$(awk -v a=$t0 -v b=$t1 "BEGIN { printf \"%.2f\", b - a }") &&
    say "rank 1 (pid $r1) killed after $n logged steps; mpirun exit $rc after $secs s" &&
    test $rc != 0 && test "$n" -lt $LONG &&
    awk -v s=$secs "BEGIN { exit !(s < 10) }" &&
    test_grep "rank 1 .*signal 9" kill.err &&
    cs=$(cm-train eval --ckpt part.bin --synthetic 96 --eval-batches 1 |
         sed -n "s/.*\"step\":\([0-9]*\),.*/\1/p") &&
    say "checkpoint at step $cs" && test "$cs" -ge 5 && test "$cs" -lt $LONG
'

t '--resume after the kill (2 ranks): the uninterrupted run bit for bit' '
    mpi 2 $K --ckpt part.bin --log part.jsonl --resume &&
    losses full.jsonl >full.loss && losses part.jsonl >part.loss && test_cmp full.loss part.loss &&
    cmp full.bin part.bin &&
    ! ls part.bin.tmp.* 2>/dev/null
'

t '--zero 1: the same losses as without (2 and 3 ranks, within 1e-5), memory per rank told' '
    mpi 2 $LOUD --steps $STEPS --zero 1 --ckpt z2.bin --log z2.jsonl 2>z2.err &&
    close two.jsonl z2.jsonl &&
    test_grep "ZeRO-1: moments sharded" z2.err &&
    test_grep "moments per rank: .* + .* + [0-9.]* MiB" z2.err &&
    mpi 3 $M --steps $STEPS --ckpt n3.bin --log n3.jsonl &&
    mpi 3 $M --steps $STEPS --zero 1 --ckpt z3.bin --log z3.jsonl &&
    close n3.jsonl z3.jsonl
'

t '--zero 1 on a model of more than one transfer piece (5M values, 3 ranks): the same losses, resumed too' '
    W="--synthetic 16384 --layers 1 --width 256 --heads 4 --context 8 --batch 2 --threads 1 -q" &&
    mpi 3 $W --steps 4 --log w3.jsonl &&
    mpi 3 $W --steps 4 --zero 1 --log wz3.jsonl --ckpt wz3.bin &&
    close w3.jsonl wz3.jsonl &&
    cm-train $W --steps 4 --accum 3 --log w1.jsonl --ckpt w1.bin &&
    close w1.jsonl wz3.jsonl &&
    mpi 3 $W --steps 6 --zero 1 --log wz3.jsonl --ckpt wz3.bin --resume &&
    cm-train $W --steps 6 --log w1.jsonl --ckpt w1.bin --resume &&
    close w1.jsonl wz3.jsonl
'

t '--zero 1 checkpoints hold the whole moments: resume without it, and with it, the same' '
    cut=$((STEPS / 2)) &&
    mpi 2 $M --steps $cut --zero 1 --ckpt zr.bin --log zr.jsonl &&
    mpi 2 $M --steps $STEPS --ckpt zr.bin --log zr.jsonl --resume &&
    close two.jsonl zr.jsonl &&
    mpi 2 $M --steps $cut --ckpt zs.bin --log zs.jsonl &&
    mpi 2 $M --steps $STEPS --zero 1 --ckpt zs.bin --log zs.jsonl --resume &&
    close two.jsonl zs.jsonl
'

test_done
