#!/bin/sh
# SPDX-License-Identifier: MIT
# cm-train chooses OpenBLAS's kernels itself: the CPU's best by default, also over a preset
# OPENBLAS_CORETYPE naming slower ones; --blas-core env keeps the preset; the start-up line
# says which kernels run.
. "$(dirname "$0")/test-lib.sh"

run() { cm-train "$@" --synthetic 64 --layers 1 --width 16 --heads 2 --context 8 --batch 2 \
        --steps 1 --no-progress; }

test_expect_success 'the start-up line names the OpenBLAS kernels' '
    run 2>err &&
    grep -E "[0-9]+ threads, OpenBLAS [A-Za-z0-9]+ kernels on 1 per thread" err
'

if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo &&
   grep -qw avx512dq /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
    test_expect_success 'AVX-512 CPU: a slower preset is overridden, and said so' '
        OPENBLAS_CORETYPE=Haswell run 2>err &&
        test_grep "OpenBLAS SkylakeX kernels" err &&
        test_grep "OPENBLAS_CORETYPE=Haswell from the environment" err
    '
    test_expect_success 'AVX-512 CPU: --blas-core env keeps the preset, with a warning' '
        OPENBLAS_CORETYPE=Haswell run --blas-core env 2>err &&
        test_grep "OpenBLAS Haswell kernels" err &&
        test_grep "warning: OPENBLAS_CORETYPE=Haswell keeps" err
    '
    test_expect_success 'AVX-512 CPU: no preset gives SkylakeX' '
        (unset OPENBLAS_CORETYPE; run 2>err) &&
        test_grep "OpenBLAS SkylakeX kernels" err
    '
else
    test_skip 'AVX-512 CPU: a slower preset is overridden' 'this CPU has no AVX-512'
fi

test_expect_success '--blas-core NAME is passed to OpenBLAS' '
    run --blas-core Haswell 2>err &&
    test_grep "OpenBLAS Haswell kernels" err
'

test_done
