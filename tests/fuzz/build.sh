#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) into
# BUILD_DIR/fuzz-<target>. Separate from the Meson build, which uses gcc: the modules the
# targets need (util, config, sandbox, api) are compiled again here with coverage
# instrumentation into one static archive, so each target links only what it uses.
#
#   tests/fuzz/build.sh [BUILD_DIR]      (default: build-fuzz)
#
# Needs clang and libclang-rt-dev (libFuzzer's runtime, of clang's default version), jansson,
# libseccomp and libpython3-dev (only for its version: src/sandbox/mount.c binds /etc/python3.X).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-build-fuzz}
CC=${CC:-clang}
TARGETS="request response config http"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
        $CC -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
        echo "build.sh: $CC cannot link -fsanitize=fuzzer (apt-get install clang libclang-rt-dev)" >&2
        exit 1
fi

mkdir -p "$out/fuzz-obj"
out=$(cd "$out" && pwd)

# -O1 and frame pointers for readable stacks; UB aborts like a crash instead of printing.
CFLAGS="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
        -Wno-unused-parameter -Wno-missing-field-initializers \
        -fsanitize=address,undefined -fno-sanitize-recover=all \
        -I$top/src $(pkg-config --cflags jansson libseccomp) ${CFLAGS_EXTRA:-} \
        -DPYEXECD_PYTHON_ETC=\"python$(pkg-config --modversion python3-embed)\""
LIBS="$(pkg-config --libs jansson libseccomp) -lm"

rm -f "$out/fuzz-obj/"*.o "$out/libpyexecd-fuzz.a"
for src in "$top"/src/util/*.c "$top"/src/config/*.c "$top"/src/sandbox/*.c "$top"/src/api/*.c \
        "$top"/src/http/parse.c; do
        obj="$out/fuzz-obj/$(basename "$(dirname "$src")")-$(basename "$src" .c).o"
        # shellcheck disable=SC2086
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
done
ar rcs "$out/libpyexecd-fuzz.a" "$out/fuzz-obj/"*.o

for t in $TARGETS; do
        # shellcheck disable=SC2086
        $CC $CFLAGS -fsanitize=fuzzer "$here/fuzz-$t.c" "$out/libpyexecd-fuzz.a" $LIBS \
                -o "$out/fuzz-$t"
        echo "build.sh: $out/fuzz-$t"
done
