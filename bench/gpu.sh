#!/usr/bin/env bash
# Every GPU figure the README reports, in one command (planned for under 10 minutes on one H100).
# Needs: a CUDA GPU, CIFAR-10 loadable by cifarlab (CIFARLAB_DATA or the cache), and airbench installed
# for the fast94 side-by-side (pip install airbench). Outputs go to bench/results/*_gpu.txt.
#
#   bash bench/gpu.sh                 # everything
#   bash bench/gpu.sh pipeline bit    # only some parts: checks, pipeline, bit, fewshot, fast94, fast100
#
# On a bare lent GPU machine (the checkout only, at most 64 MiB carried per command, no internet):
#   here:   python bench/gpu_upload.py split --data ../shared/data      # CIFAR-10 in two parts
#           python3 -m pip download --no-deps --only-binary=:all: airbench -d .whl   # the reference
#   there:  one command per part (split prints them); the last one joins the parts and runs
#           python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=src:/tmp/site
#           python3 bench/gpu_upload.py join gpu_upload --out gpu_data && CIFARLAB_DATA=gpu_data bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RESULTS=bench/results
mkdir -p "$RESULTS"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(checks pipeline bit fewshot fast94 fast100)

for part in "${parts[@]}"; do
  case "$part" in
    checks)    # the tests that need a CUDA GPU (make test leaves tests/gpu out)
      $PY -m pytest -q -p no:cacheprovider tests/gpu | tee "$RESULTS/gpu_checks.txt" ;;
    pipeline)  # issue target: training step >= 3x the DataLoader + Pillow reference
      { $PY bench/pipeline.py --device cuda --synthetic --compile
        $PY bench/pipeline.py --device cuda --synthetic --compile --compile-mode reduce-overhead; } \
        | tee "$RESULTS/pipeline_gpu.txt" ;;
    bit)       # BiT-R50x1 step at 128x128 against the original fp32 channels-first step, batch 128
      { $PY bench/bit_step.py --device cuda --batch-size 128 --compile
        $PY bench/bit_step.py --device cuda --batch-size 128 --compile --compile-mode reduce-overhead; } \
        | tee "$RESULTS/bit_step_gpu.txt" ;;
    fewshot)   # wall time of one 500-step 5-shot BiT-R50x1 run (HyperRule: batch 512, 160 -> 128), from
               # scratch weights: the same computation as BiT-M-R50x1 without its download
      TIMEFORMAT="fewshot 5-shot bit_r50x1, 500 steps, batch 512: %R s wall"
      { time $PY -m cifarlab fewshot --weights scratch --shots 5 --seeds 1 --out sweeps/gpu_r50x1_timing; } 2>&1 \
        | tail -8 | tee "$RESULTS/fewshot_r50x1_gpu.txt" ;;
    fast94)    # 94% on CIFAR-10: cifarlab's recipe beside airbench.train94, 5 seeds each, after one warm-up each
      $PY bench/fast94.py --recipe configs/fast94.yaml --seeds 0 1 2 3 4 --airbench --warmup train.device=cuda | tee "$RESULTS/fast94_gpu.txt" ;;
    fast100)   # CIFAR-100 from scratch: the fast100 ladder's recipes on 3 seeds (the CPU recipes as they are)
      $PY bench/fast100.py train.device=cuda --recipe configs/fast100_15min.yaml configs/fast100_30min.yaml configs/fast100.yaml --seeds 0 1 2 | tee "$RESULTS/cifar100_gpu.txt" ;;
    *) echo "unknown part '$part': choose from checks pipeline bit fewshot fast94 fast100" >&2; exit 2 ;;
  esac
done
