#!/usr/bin/env bash
# The GPU check: on a machine with CUDA JAX, install jaxfuse (no dependencies),
# run the test suite, the benchmark and a 2000-step training run, all into one log.
#
#     bash benchmarks/gpu_check.sh                 # on the GPU machine, from anywhere
#     GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh # a short rehearsal on any machine
#
# Every step runs even when an earlier one failed; the last lines say which
# failed, and the exit status is the number of failed steps (0: all passed).
#
# Environment:
#   GPU_CHECK_DRY=1         rehearsal: installs nothing (prints the pip commands),
#                           pytest -q -x tests/test_model.py, a quick bench,
#                           --steps 5 into a temporary workdir; no GPU required
#   GPU_CHECK_WHEELS=DIR    wheels to install first with pip --no-deps (dm-pix and
#                           PyWavelets, absent from the GPU image); default
#                           benchmarks/wheels/ when it exists
#   GPU_CHECK_LOG=FILE      the log (default $OUT/gpu_check.log when $OUT is set,
#                           else runs/gpu_check.log)
#   GPU_CHECK_BENCH_FLAGS   flags for python -m jaxfuse.bench (default --no-torch:
#                           the PyTorch baseline is a CPU one)
#   GPU_CHECK_PYTEST_FLAGS  flags for the test suite (default -q)
#   GPU_CHECK_TRAIN_STEPS   training steps (default 2000)
#   GPU_CHECK_STEP_TIMEOUT  seconds any one step may run (default: no limit)
#   PYTHON                  the interpreter (default python3)

set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 1

PYTHON="${PYTHON:-python3}"
DRY="${GPU_CHECK_DRY:-0}"
[ "$DRY" = "0" ] && DRY=""
if [ -n "${OUT:-}" ]; then
    LOG="${GPU_CHECK_LOG:-$OUT/gpu_check.log}"
else
    LOG="${GPU_CHECK_LOG:-$REPO/runs/gpu_check.log}"
fi
mkdir -p "$(dirname "$LOG")"
LOG="$(cd "$(dirname "$LOG")" && pwd)/$(basename "$LOG")"
: > "$LOG"
OUTDIR="$(dirname "$LOG")"
WHEELS="${GPU_CHECK_WHEELS:-}"
if [ -z "$WHEELS" ] && [ -d "$REPO/benchmarks/wheels" ]; then
    WHEELS="$REPO/benchmarks/wheels"
fi
STEP_TIMEOUT="${GPU_CHECK_STEP_TIMEOUT:-0}"

# One process's preallocation of most of the GPU would starve the processes the
# benchmark starts (fuse.py, the tiled run); allocate on demand instead.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
export PYTHONUNBUFFERED=1

if [ -n "$DRY" ]; then
    PYTEST_FLAGS="-q -x tests/test_model.py"
    BENCH_FLAGS="--quick --no-torch"
    TRAIN_STEPS=5
    TRAIN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-train.XXXXXX")"
else
    PYTEST_FLAGS="${GPU_CHECK_PYTEST_FLAGS:--q}"
    TNO_FLAG=""
    [ -d ../shared/data/tno21 ] && TNO_FLAG="--tno ../shared/data/tno21"
    BENCH_FLAGS="${GPU_CHECK_BENCH_FLAGS:---no-torch $TNO_FLAG}"
    TRAIN_STEPS="${GPU_CHECK_TRAIN_STEPS:-2000}"
    TRAIN_DIR="runs/gpu-train"
fi

FAILED=()
PASSED=()

log() { echo "$*" | tee -a "$LOG"; }

# step NAME COMMAND...: runs COMMAND with its output in the log, records the outcome.
step() {
    local name="$1"; shift
    local t0 rc start
    log ""
    log "=== $name: $*"
    start=$(wc -l < "$LOG")
    t0=$(date +%s)
    if [ "$STEP_TIMEOUT" != "0" ]; then
        timeout "$STEP_TIMEOUT" "$@" >> "$LOG" 2>&1
    else
        "$@" >> "$LOG" 2>&1
    fi
    rc=$?
    if [ "$rc" -eq 0 ]; then
        PASSED+=("$name")
        log "=== $name: ok ($(( $(date +%s) - t0 )) s)"
    else
        FAILED+=("$name (exit $rc)")
        tail -n +"$(( start + 1 ))" "$LOG" | tail -n 15 | sed 's/^/    | /'
        log "=== $name: FAILED, exit $rc ($(( $(date +%s) - t0 )) s)"
    fi
}

# pip, or in a rehearsal the command it would run.
pip_or_say() {
    if [ -n "$DRY" ]; then
        echo "rehearsal: would run: $PYTHON -m pip $*"
    else
        "$PYTHON" -m pip "$@"
    fi
}

install_wheels() {
    if [ -z "$WHEELS" ]; then
        echo "no wheel folder (GPU_CHECK_WHEELS unset, no benchmarks/wheels/): nothing to install"
        return 0
    fi
    shopt -s nullglob
    local wheels=("$WHEELS"/*.whl)
    shopt -u nullglob
    if [ "${#wheels[@]}" -eq 0 ]; then
        echo "no .whl files in $WHEELS"
        return 1
    fi
    pip_or_say install --no-deps --no-index "${wheels[@]}"
}

install_project() {
    # Offline: build with the setuptools already there; fall back to an isolated build.
    pip_or_say install --no-deps --no-build-isolation -e . ||
        pip_or_say install --no-deps -e .
}

show_devices() {
    "$PYTHON" - <<'EOF'
import os, platform
import jax
print("python", platform.python_version(), "| jax", jax.__version__, "| backend", jax.default_backend())
for d in jax.devices():
    print(" ", d, getattr(d, "device_kind", ""))
rehearsal = os.environ.get("GPU_CHECK_DRY", "0") not in ("", "0")
if jax.default_backend() != "gpu" and not rehearsal:
    raise SystemExit("JAX does not see a GPU")
EOF
}

check_imports() {
    "$PYTHON" -c "import dm_pix, pywt, jaxfuse, jaxfuse.bench; print('imports ok:', jaxfuse.__file__)"
}

log "gpu_check: log $LOG"
log "gpu_check: repository $REPO, $(date -u +%Y-%m-%dT%H:%M:%SZ)${DRY:+ (rehearsal: GPU_CHECK_DRY=1)}"
command -v nvidia-smi > /dev/null && nvidia-smi >> "$LOG" 2>&1

step wheels install_wheels
step install install_project
step devices show_devices
step imports check_imports
# shellcheck disable=SC2086  # the flag variables are word lists
step tests "$PYTHON" -m pytest $PYTEST_FLAGS
# shellcheck disable=SC2086
step bench "$PYTHON" -m jaxfuse.bench $BENCH_FLAGS --json "$OUTDIR/bench.json"
# folder training: the input pipeline against the train step, and the paper's
# 80 000-image recipe projected on this device (needs grain: a wheel in GPU_CHECK_WHEELS)
if [ -n "$DRY" ]; then
    step data "$PYTHON" benchmarks/bench_data.py --count 20 --batches 4 --steps 2 --size 64
else
    step data "$PYTHON" benchmarks/bench_data.py --count 300
fi
step train "$PYTHON" train.py --workdir "$TRAIN_DIR" --steps "$TRAIN_STEPS" --overwrite --no-progress

log ""
log "=== summary: ${#PASSED[@]} passed (${PASSED[*]:-none}), ${#FAILED[@]} failed"
for f in "${FAILED[@]}"; do
    log "    FAILED: $f"
done
log "log: $LOG"
[ -n "$DRY" ] && rm -rf "$TRAIN_DIR"
exit "${#FAILED[@]}"
