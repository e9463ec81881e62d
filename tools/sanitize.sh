#!/usr/bin/env bash
# Sanitizer run of the C++ core: builds popqorn_fast._core with ASan + UBSan
# (CMake option POPQORN_SANITIZE) into build/sanitize, stages it next to a copy of
# the Python package, and runs the core-facing tests against that copy with the
# sanitizer runtimes preloaded into CPython. Any ASan or UBSan report fails the run.
#
# Usage: tools/sanitize.sh [pytest args...]   (default: the core-facing fast tests)
# Env:   PYTHON    interpreter with numpy, pybind11, pytest, hypothesis, scipy (default: python3)
#        BUILD_DIR build directory (default: build/sanitize)
# Exit:  0 clean, 77 the compiler has no ASan/UBSan runtime (skipped), else a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUILD=${BUILD_DIR:-$ROOT/build/sanitize}
CXX=${CXX:-c++}

asan=$($CXX -print-file-name=libasan.so 2>/dev/null || true)
ubsan=$($CXX -print-file-name=libubsan.so 2>/dev/null || true)
if [[ "$asan" != /* || ! -e "$asan" || "$ubsan" != /* || ! -e "$ubsan" ]]; then
  echo "sanitize: $CXX has no libasan/libubsan runtime; skipped" >&2
  exit 77
fi

start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DPOPQORN_SANITIZE=ON -DPOPQORN_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" -DPython_EXECUTABLE="$(command -v "$PY")" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" >"$BUILD.cmake.log" 2>&1 \
  || { cat "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { cat "$BUILD.build.log"; exit 1; }

# stage: the package sources plus the sanitized extension, first on sys.path
STAGE=$BUILD/stage
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -r "$ROOT/python/popqorn_fast" "$STAGE/"
rm -f "$STAGE"/popqorn_fast/_core*.so
cp "$BUILD"/_core*.so "$STAGE/popqorn_fast/"

export PYTHONPATH=$STAGE${PYTHONPATH:+:$PYTHONPATH}
export LD_PRELOAD="$asan $ubsan"
# CPython itself leaks by design (interned objects at exit): leak checking off
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# a runner that drops any editable-install import hook (it would shadow PYTHONPATH), checks
# that the staged, sanitized _core is the one imported, then runs pytest
RUNNER=$BUILD/run_pytest.py
cat >"$RUNNER" <<'PYEOF'
import sys
from importlib.machinery import PathFinder

sys.meta_path[:] = [f for f in sys.meta_path
                    if f is PathFinder or not (hasattr(f, "find_spec") and f.find_spec("popqorn_fast", None))]
stage = sys.argv[1]
import popqorn_fast._core as core  # noqa: E402

if not core.__file__.startswith(stage + "/"):
    sys.exit(f"sanitize: imported {core.__file__}, not the staged build under {stage}")
import pytest  # noqa: E402

sys.exit(pytest.main(sys.argv[2:]))
PYEOF

LOG=$BUILD.pytest.log
if [[ $# -eq 0 ]]; then
  set -- tests/test_core_bounds.py tests/test_oracle_agreement.py tests/test_lines.py \
    tests/test_bad_input.py tests/test_numerical_edges.py tests/test_threads.py \
    tests/test_differential.py tests/soundness/test_random_networks.py tests/test_optimized_sweep.py \
    tests/test_planes_linear.py tests/test_general.py tests/soundness/test_general_networks.py \
    tests/test_rounding.py tests/test_rounding_f32.py tests/soundness/test_sound32.py \
    tests/soundness/test_optimized_grid.py tests/test_block_sweep.py \
    -k "not baseline_build"  # (that test compares two fresh processes' builds: the README run has it)
fi
rc=0
"$PY" "$RUNNER" "$STAGE" -q -p no:cacheprovider -x "$@" 2>&1 | tee "$LOG" || rc=${PIPESTATUS[0]}
if grep -qE "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG"; then
  echo "sanitize: sanitizer reports found (see $LOG)" >&2
  rc=1
fi
echo "sanitize: finished in $(( $(date +%s) - start )) s (exit $rc)"
exit $rc
