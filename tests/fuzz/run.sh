#!/bin/sh
# Builds the fuzz targets with clang (meson -Dfuzzing=true, with ASan and UBSan, into
# FUZZ_BUILD) and runs each for SECONDS, one after the
# other, on its checked-in corpus and dictionary. New inputs go to a scratch directory in
# the build directory, never straight into tests/fuzz/corpus/; at the end the ones that add
# coverage are minimised into the checked-in corpus with -merge=1 (review them with
# `git status tests/fuzz/corpus`). Crashes are written to BUILD_DIR/fuzz-artifacts/ and
# make the script exit non-zero.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     (targets: request response config http)
#
# Environment: FUZZ_BUILD (default build-fuzz), FUZZ_MERGE=0 to leave the corpus alone,
# FUZZ_ARGS for more libFuzzer flags.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=${*:-request response config http}
build=${FUZZ_BUILD:-build-fuzz}

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
        echo "run.sh: clang cannot link -fsanitize=fuzzer (apt-get install clang libclang-rt-dev)" >&2
        exit 1
fi
[ -f "$build/build.ninja" ] ||
        CC=clang meson setup -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
                -Dbuildtype=debugoptimized "$build" "$here/../.."
ninja -C "$build"
build=$(cd "$build" && pwd)
mkdir -p "$build/fuzz-artifacts"
status=0

for t in $targets; do
        case $t in
        config) dict=$here/config.dict ;;
        *) dict=$here/json.dict ;;
        esac
        scratch=$build/fuzz-scratch/$t
        mkdir -p "$scratch"
        echo "run.sh: fuzzing $t for ${seconds}s"
        # The first directory receives new inputs; the checked-in corpus is read only.
        # shellcheck disable=SC2086
        if ! "$build/tests/fuzz/fuzz-$t" -max_total_time="$seconds" -dict="$dict" -max_len=8192 \
                -timeout=10 -print_final_stats=1 \
                -artifact_prefix="$build/fuzz-artifacts/$t-" ${FUZZ_ARGS:-} \
                "$scratch" "$here/corpus/$t"; then
                echo "run.sh: $t crashed; see $build/fuzz-artifacts/" >&2
                status=1
                continue
        fi
        if [ "${FUZZ_MERGE:-1}" = 1 ]; then
                before=$(find "$here/corpus/$t" -type f | wc -l)
                # Edges only (-use_counters=0): the checked-in corpus keeps one input per
                # new branch and stays small; the scratch directory, reused by the next
                # run, keeps the hit-count variety that helps the fuzzer.
                "$build/tests/fuzz/fuzz-$t" -merge=1 -use_counters=0 -max_len=8192 \
                        "$here/corpus/$t" "$scratch" 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new' || true
                after=$(find "$here/corpus/$t" -type f | wc -l)
                echo "run.sh: $t corpus: $before -> $after files"
        fi
done
exit $status
