#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c + csrc/*.c + the blosc2 wheel's static
# c-blosc2) with ASan + UBSan into fuzz/build/, then runs each for SECONDS (default 60) on
# its persistent corpus fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/).
#
#   fuzz/run.sh [SECONDS] [TARGET...]     # all targets when none are named
#   FUZZ_PARALLEL=2 fuzz/run.sh 600       # targets run side by side (default: 2 or nproc)
#   fuzz/run.sh 0                         # build only
#
# Exits non-zero when any target crashes (the input is left in fuzz/artifacts/), and prints
# executions and executions per second per target; fuzz/build/history.tsv keeps every run.
# Needs clang with compiler-rt (Debian: clang libclang-rt-14-dev) and a Python with blosc2
# (PYTHON, default python3). See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
all_targets=(blosc zstd zlib lz4 crc32c pipeline shard grid render)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

max_len() {
  case "$1" in
    grid) echo 512 ;;
    render) echo 4096 ;;
    shard) echo 70000 ;;
    *) echo 32768 ;;
  esac
}

cc="${CC:-clang}"
python="${PYTHON:-python3}"
command -v "$cc" >/dev/null || { echo "fuzz/run.sh: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
blosc2_dir="$("$python" -c 'import blosc2, os; print(os.path.dirname(blosc2.__file__))')" || {
  echo "fuzz/run.sh: $python cannot import blosc2 (pip install blosc2)" >&2; exit 2; }

build=fuzz/build
mkdir -p "$build/obj" "$build/logs" fuzz/corpus fuzz/artifacts
flags=(-g -O2 -fno-omit-frame-pointer -std=gnu11 -Icsrc -Ifuzz -I"$blosc2_dir/include"
       -fsanitize=address,undefined -fno-sanitize-recover=undefined)

# The core once (instrumented for coverage, not linked with libFuzzer's main), then each
# harness; make-style: rebuild only what changed.
objs=()
for src in csrc/*.c; do
  obj="$build/obj/$(basename "${src%.c}").o"
  if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find csrc -name '*.h' -newer "$obj")" ]; then
    "$cc" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
  fi
  objs+=("$obj")
done
for t in "${targets[@]}"; do
  src="fuzz/fuzz_$t.c"
  [ -e "$src" ] || { echo "fuzz/run.sh: no target $t ($src)" >&2; exit 2; }
  bin="$build/fuzz_$t"
  stale=0
  [ -e "$bin" ] || stale=1
  for dep in "$src" fuzz/*.h "${objs[@]}"; do [ "$dep" -nt "$bin" ] 2>/dev/null && stale=1; done
  if [ "$stale" = 1 ]; then
    "$cc" "${flags[@]}" -fsanitize=fuzzer "$src" "${objs[@]}" "$blosc2_dir/lib/libblosc2.a" \
      -lpthread -lm -ldl -o "$bin"
  fi
done
[ "$seconds" -gt 0 ] || { echo "built: ${targets[*]/#/$build/fuzz_}"; exit 0; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

run_one() { # target seconds -> log in $build/logs/<t>.log
  local t="$1" secs="$2" corpus="fuzz/corpus/$1" seeds="fuzz/seeds/$1"
  mkdir -p "$corpus"
  local dirs=("$corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  # the regression inputs of tests/data/fuzz/ first (each once), then fuzzing
  local regress=(tests/data/fuzz/"$t"-*.bin)
  if [ -e "${regress[0]}" ]; then
    "$build/fuzz_$t" -rss_limit_mb=2048 "${regress[@]}" >"$build/logs/$t.log" 2>&1 || return $?
  fi
  "$build/fuzz_$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -rss_limit_mb=2048 \
    -timeout=20 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t-" "${dirs[@]}" \
    >>"$build/logs/$t.log" 2>&1
}

parallel="${FUZZ_PARALLEL:-$(n=$(nproc); echo $((n < 2 ? n : 2)))}"
declare -A rc
pending=("${targets[@]}")
running=()
pids=()
while [ ${#pending[@]} -gt 0 ] || [ ${#pids[@]} -gt 0 ]; do
  while [ ${#pending[@]} -gt 0 ] && [ ${#pids[@]} -lt "$parallel" ]; do
    t="${pending[0]}"
    pending=("${pending[@]:1}")
    run_one "$t" "$seconds" &
    pids+=($!)
    running+=("$t")
  done
  # wait for the first of the running jobs to finish
  wait -n "${pids[@]}" || true
  keep_p=(); keep_t=()
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      keep_p+=("${pids[$i]}"); keep_t+=("${running[$i]}")
    else
      set +e; wait "${pids[$i]}"; rc[${running[$i]}]=$?; set -e
    fi
  done
  pids=("${keep_p[@]+"${keep_p[@]}"}"); running=("${keep_t[@]+"${keep_t[@]}"}")
done

status=0
printf '%-10s %14s %10s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  ncorpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
  if [ "${rc[$t]}" = 0 ]; then result=ok; else result="CRASH (exit ${rc[$t]}, see $log)"; status=1; fi
  printf '%-10s %14s %10s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$ncorpus" "$result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$seconds" "${execs:-0}" \
    "${speed:-0}" "$result" >>"$build/history.tsv"
done
if [ "$status" != 0 ]; then
  echo "crash inputs:" >&2
  ls -1 fuzz/artifacts/ >&2 || true
fi
exit "$status"
