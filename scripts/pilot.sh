#!/usr/bin/env bash
# One variant of the recipe pilot (docs/recipe.md): the first STOP steps of the 16,000-step
# schedule on the monet2photo training split, then its evaluation on the held-out test split.
#
#   scripts/pilot.sh RUNS_DIR NAME STOP [recipe flags...]
#   scripts/pilot.sh /work/pilot/runs antialias_diffaugment_ema 2000 --upsample antialias --downsample antialias --diffaugment --ema_decay 0.999
#
# Resumable: run it again and it continues from the newest checkpoint. Two variants ran side by
# side, one CPU thread each (--cpu_threads 1). The run keeps going past STOP only if STOP is 16000.
set -eu
runs=$1; name=$2; stop=$3; shift 3
out=$runs/$name
data=${DATA:-../shared/data/monet2photo}
mkdir -p "$out"
setsid accelerate launch --num_processes 1 --mixed_precision bf16 train_accelerate.py --compile \
  --dataset "$data" --domain_a monet --domain_b photo --max_steps 16000 --cpu_threads 1 --seed 0 \
  --ngf 32 --n_blocks 6 --num_workers 1 --checkpointing_steps 500 --checkpoints_total_limit 40 \
  --sample_steps 500 --logging_steps 50 --save_dtype float16 \
  --output_dir "$out" --resume_from_checkpoint latest "$@" >>"$out/log.txt" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do  # stop the run once checkpoint-STOP is written
  if [ -d "$out/checkpoint-$stop" ]; then sleep 5; kill -- -$pid; break; fi
  sleep 10
done
wait $pid || true
for weights in "" --raw_weights; do
  [ -z "$weights" ] || [ -f "$out/checkpoint-$stop/ema.safetensors" ] || continue
  OMP_NUM_THREADS=1 python -m cyclegan_hub.evaluate --model "$out/checkpoint-$stop" --dataset "$data" \
    --split test --baseline $weights --output "$runs/eval/$name${weights:+_raw}.json"
done
