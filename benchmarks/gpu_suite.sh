#!/usr/bin/env bash
# The GPU benchmarks in one command, for a machine with a CUDA device:
#
#   1. benchmarks/gpu_train.py    ConvNet training throughput, CPU and CUDA in the same run
#   2. benchmarks/deep_latency.py ConvNet single-window inference latency, CPU and CUDA
#   3. benchmarks/snn_gpu.py      spiking decoder training throughput, CUDA and CPU
#
# Everything printed goes to $OUT/gpu_log.txt as well (OUT defaults to
# benchmarks/results/gpu). Each step has its own time limit, so one slow step cannot eat
# the others' time; a step that fails or times out is logged and the suite goes on.
#
# Where the machine lacks the toolkit's pure-Python dependencies (mne, braindecode,
# skorch, pydantic, ...) put their wheels in .whl/ at the repository root: they are
# installed with --no-deps into $SITE (default /tmp/site) and put first on PYTHONPATH
# (WHL names another wheel folder).
# A .gpudata/ folder at the root, laid out like $BCI_DATA_DIR, becomes BCI_DATA_DIR.
#
# Knobs (environment): PY (python command, default python3), SUBJECTS (1-3), EPOCHS (3),
# MODELS (shallow_convnet,eegnet,deep4), SNN_EPOCHS (30), SNN_BATCH_SIZES (32,128),
# LAT_N (300 timed windows per path), LAT_DEVICE (cpu,cuda), CPU_THREADS (CPU torch
# threads for training, default all), T_TRAIN / T_LAT / T_SNN (per-step limits, seconds).
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh
set -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUT=${OUT:-$ROOT/benchmarks/results/gpu}
mkdir -p "$OUT"
LOG=$OUT/gpu_log.txt
: >"$LOG"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
SUBJECTS=${SUBJECTS:-1-3}
EPOCHS=${EPOCHS:-3}
MODELS=${MODELS:-shallow_convnet,eegnet,deep4}
SNN_EPOCHS=${SNN_EPOCHS:-30}
SNN_BATCH_SIZES=${SNN_BATCH_SIZES:-32,128}
LAT_N=${LAT_N:-300}
LAT_DEVICE=${LAT_DEVICE:-cpu,cuda}
T_TRAIN=${T_TRAIN:-150}
T_LAT=${T_LAT:-90}
T_SNN=${T_SNN:-120}
THREADS_ARG=()
[ -n "${CPU_THREADS:-}" ] && THREADS_ARG=(--threads "$CPU_THREADS")

log() { echo "$@" | tee -a "$LOG"; }

WHL=${WHL:-.whl}
if compgen -G "$WHL/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHL"/*.whl 2>&1 | tee -a "$LOG" || { log "wheel install failed"; exit 1; }
  export PYTHONPATH=$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .gpudata ] && export BCI_DATA_DIR=$ROOT/.gpudata

{
  echo "== bci-toolkit GPU suite, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "subjects $SUBJECTS, ConvNet epochs $EPOCHS, SNN epochs $SNN_EPOCHS, latency windows $LAT_N"
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  echo "CPUs: $(nproc)"
  $PY - <<'EOF'
import importlib, platform
import torch
print(f"python {platform.python_version()}; torch {torch.__version__}; CUDA {torch.version.cuda}; "
      f"cuDNN {torch.backends.cudnn.version()}; cuda available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB")
vers = []
for m in ["numpy", "scipy", "sklearn", "mne", "braindecode", "skorch", "onnx", "onnxruntime",
          "pydantic"]:
    try:
        vers.append(f"{m} {importlib.import_module(m).__version__}")
    except Exception as e:  # noqa: BLE001 - report and go on
        vers.append(f"{m} MISSING ({type(e).__name__}: {e})")
print("; ".join(vers))
EOF
} 2>&1 | tee -a "$LOG"

# step NAME LIMIT CMD...: run CMD under `timeout`, log its output, exit status and duration.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  echo
  echo "== $name (limit ${limit}s): $*"
  start=$(date +%s)
  timeout --kill-after=5 "$limit" "$@"
  rc=$?
  echo "== $name: exit $rc$([ $rc -eq 124 ] && echo ' (timed out)'), $(( $(date +%s) - start )) s"
  return $rc
}

step gpu_train "$T_TRAIN" $PY benchmarks/gpu_train.py --models "$MODELS" \
  --subjects "$SUBJECTS" --epochs "$EPOCHS" "${THREADS_ARG[@]}" 2>&1 | tee -a "$LOG"
step deep_latency "$T_LAT" $PY benchmarks/deep_latency.py --models "$MODELS" \
  --n-chans 64 --seconds 2 --sfreq 160 --threads 2 --n "$LAT_N" --device "$LAT_DEVICE" \
  2>&1 | tee -a "$LOG"
step snn_gpu "$T_SNN" $PY benchmarks/snn_gpu.py --subjects "$SUBJECTS" \
  --epochs "$SNN_EPOCHS" --batch-sizes "$SNN_BATCH_SIZES" 2>&1 | tee -a "$LOG"
log ""
log "== done $(date -u +%Y-%m-%dT%H:%M:%SZ)"
