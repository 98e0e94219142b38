#!/usr/bin/env bash
# The CPU-sized DL4DS study (README "Fine-tuning and robustness on the CPU"): a RegNetX-200MF pretrained
# by cifarlab on CIFAR-10, fine-tuned on CIFAR-100 against the same network from scratch, then the
# fine-tuning with heavy augmentation and with AugMix, and all four scored on CIFAR-100-C (the 15
# benchmark corruptions x 5 severities on 2,000 test images spaced evenly over the test split).
# Run it alone from the checkout's root; it prints each step's wall time.
set -euo pipefail
cifarlab="${CIFARLAB:-cifarlab}"
step() { local start=$SECONDS; "$@"; echo "[$(( SECONDS - start )) s] $*"; }
step "$cifarlab" train dl4ds/cpu/pretrain_cifar10
step "$cifarlab" export runs/dl4ds_cpu_pretrain_cifar10 --out dl4ds_cpu_cifar10.safetensors
for recipe in finetune scratch heavy_aug augmix; do
  step "$cifarlab" train "dl4ds/cpu/$recipe"
done
step "$cifarlab" robustness make cifar100 --out data/cifar100c_2000 --benchmark-only --limit 2000
for run in finetune scratch heavy_aug augmix; do
  step "$cifarlab" robustness eval "runs/dl4ds_cpu_$run" --data data/cifar100c_2000
done
step "$cifarlab" report runs/dl4ds_cpu_finetune runs/dl4ds_cpu_scratch runs/dl4ds_cpu_heavy_aug runs/dl4ds_cpu_augmix --out bench/results/dl4ds_cpu
