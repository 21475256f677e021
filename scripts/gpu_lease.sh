#!/usr/bin/env bash
# One GPU lease of PConv training with the data packed by scripts/pack_gpu_data.py into .device/.
# Continues from .device/init.safetensors when the pack has one (a fresh cosine schedule), exports
# the fp16 network and copies the run's logs and last validation grid to $OUT.
#
#   python scripts/pack_gpu_data.py --budget-mb 22 --init runs/pconv_gpu2/model.safetensors
#   (device) MINUTES=8.5 bash scripts/gpu_lease.sh            # then: holefill bench ... --weights
#
# Env: MINUTES (training budget, 8.5), DEVICE (cuda), PACK (.device), OUT (/tmp/lease-out),
# RUN (/tmp/pconv-run), extra key=value overrides as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-.device}
OUT=${OUT:-/tmp/lease-out}
RUN=${RUN:-/tmp/pconv-run}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export HOLEFILL_VGG_WEIGHTS="$(cd "$PACK" && pwd)/vgg19_to_relu4_1_fp16.pth"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
init=()
if [ -f "$PACK/init.safetensors" ]; then init=(--init "$PACK/init.safetensors"); fi
rm -rf "$RUN"
python3 -m holefill train pconv --data "$PACK/train" --val "$PACK/val" --config pconv_default \
  --out "$RUN" --device "${DEVICE:-cuda}" "${init[@]}" optim.max_minutes="${MINUTES:-8.5}" "$@" 2>&1 \
  | grep -v "it/s\]" | tail -45
cp "$RUN"/model.safetensors "$RUN"/model.json "$RUN"/train.csv "$RUN"/val.csv "$RUN"/config.yaml "$OUT"/
cp "$(ls "$RUN"/val/*.png | tail -1)" "$OUT"/val_grid.png
ls -la "$OUT"
