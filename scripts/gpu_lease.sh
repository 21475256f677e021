#!/usr/bin/env bash
# One GPU lease of PConv training from the packed data (scripts/pack_gpu_data.py) in .device/:
# the CPU recipe's fine-tuning phase (configs/pconv_finetune.yaml: pixel terms + 1 - SSIM, no VGG)
# at GPU batch sizes, started from the shipped weights (or .device/init.safetensors when the pack
# has one), with the run's export, logs and last validation grid copied to $OUT.
#
#   python scripts/pack_gpu_data.py --side 144 --format webp --quality 65 --budget-mb 31 --no-vgg
#   (device tool: carry [".device"], timeout_s 600)  MINUTES=8 bash scripts/gpu_lease.sh
#   then here: holefill bench ... --weights <the returned model.safetensors>
#
# The pack (all 9,500 Imagenette photos at 144 px, WebP quality 65: 30 MB) and the repository
# (31 MiB, both weights files included) fit the device tool's 64 MiB upload together.
# Dry run on a CPU: DEVICE=cpu MINUTES=0.5 BATCH=8 WORKERS=1 bash scripts/gpu_lease.sh
#
# Env: MINUTES (training budget, 8), DEVICE (cuda), PACK (.device), OUT ($OUT or /tmp/lease-out),
# RUN (/tmp/pconv-run), BATCH (64), WORKERS (12), SIZE (128), LR (1e-4); extra key=value
# overrides as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-.device}
OUT=${OUT:-/tmp/lease-out}
RUN=${RUN:-/tmp/pconv-run}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
init=src/holefill/weights/pconv_default.safetensors
if [ -f "$PACK/init.safetensors" ]; then init=$PACK/init.safetensors; fi
rm -rf "$RUN"
python3 -m holefill train pconv --data "$PACK/train" --val "$PACK/val" --config pconv_finetune \
  --out "$RUN" --device "${DEVICE:-cuda}" --init "$init" amp=bf16 \
  data.size="${SIZE:-128}" "data.crop_scale=[0.8,1.0]" data.batch_size="${BATCH:-64}" \
  data.workers="${WORKERS:-12}" optim.lr="${LR:-1e-4}" optim.warmup_steps=200 \
  optim.max_minutes="${MINUTES:-8}" ckpt_every_minutes=2 val_every=1000 "$@" 2>&1 \
  | grep -v "it/s\]" | tail -45
cp "$RUN"/model.safetensors "$RUN"/model.json "$RUN"/train.csv "$RUN"/val.csv "$RUN"/config.yaml "$OUT"/
cp "$(ls "$RUN"/val/*.png | tail -1)" "$OUT"/val_grid.png
ls -la "$OUT"
