#!/usr/bin/env bash
# GPU evidence for the image adapter (docs/notes/image.md): bench vs lightly, then SimCLR and BYOL on
# full CIFAR-10 (ResNet-18 CIFAR stem, bf16, channels_last), each trained in two resumed chunks.
# Usage (repo root, CIFAR tarballs in $DATA): DATA=.cifar10full BUDGET=180 OUT=runs/out bash multissl/image/gpu_evidence.sh
set -u
DATA=${DATA:-${MULTISSL_DATA:?set MULTISSL_DATA to the folder holding cifar10/}/cifar10}; BUDGET=${BUDGET:-180}; OUT=${OUT:-runs/image-evidence}
RUNS=${RUNS:-runs/image-runs}; mkdir -p "$OUT" "$RUNS"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}. PYTHONUNBUFFERED=1 MULTISSL_BENCH_DIR=$OUT
PY=${PY:-python3}; CLI="$PY -m multissl.cli"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY -c "import torch, torchvision, timm; print('torch', torch.__version__, torchvision.__version__, timm.__version__)"
[ "${SKIP_BENCH:-0}" = 1 ] || $CLI bench image --data "$DATA" --workers 12 ${BENCH_ARGS:-} 2>&1 | grep -v Warning
# epochs that fit the budget, from the bench's end-to-end images/s (x1.35 for the per-epoch kNN)
RATE=$($PY -c "import json;r=[json.loads(l) for l in open('$OUT/image.jsonl')];print([x['ours'] for x in r if 'end to end (' in x['what']][-1])" 2>/dev/null || echo 8000)
train() {  # name recipe epochs extra...
  local name=$1 recipe=$2 epochs=$3; shift 3
  local run=$RUNS/$name common="data.root=$DATA train.epochs=$epochs train.precision=bf16 train.progress=false ${EXTRA:-} $*"
  echo "== $name: $epochs epochs, chunk 1 (killed after $((BUDGET / 2)) s)"
  timeout $((BUDGET / 2)) $CLI train $recipe $common --run-dir $run 2>&1 | grep -v Warning | tail -3
  echo "== $name: chunk 2 (resume)"
  $CLI train $recipe $common --run-dir $run --resume $run 2>&1 | grep -v Warning | tail -12
  cp $run/metrics.jsonl $OUT/${name}_metrics.jsonl; cp $run/results.json $OUT/${name}_results.json
  cp $run/plots/projection.png $OUT/${name}_projection.png 2>/dev/null
}
E=$($PY -c "print(max(2, int($BUDGET / (50000 / $RATE * 1.35 + 2))))")
echo "bench rate $RATE images/s -> SimCLR $E epochs"
train simclr image/simclr-cifar10 $E
EB=$($PY -c "print(max(2, int($E / 1.7)))")
train byol image/byol-cifar10 $EB
