"""The `--launcher` and `--slurm-*` options that `sweep` and `tune` share, and the settings they make."""

from __future__ import annotations

import argparse


def add_launcher_arguments(p: argparse.ArgumentParser, unit: str, local_help: str) -> None:
    """`--launcher local|slurm` and the SLURM job settings; `unit` is what one job runs ("run", "worker")."""
    p.add_argument("--launcher", choices=["local", "slurm"], default="local",
                   help=f"local: {local_help}; slurm: each {unit} a job through submitit (pip install 'cifarlab[slurm]')")
    p.add_argument("--slurm-cluster", default="slurm", choices=["slurm", "local", "debug"],
                   help="submitit backend; local/debug try the submission on this machine (default slurm)")
    p.add_argument("--slurm-partition", help="SLURM partition")
    p.add_argument("--slurm-time", type=int, help=f"time limit per {unit} in minutes")
    p.add_argument("--slurm-gpus", type=int, help=f"GPUs per {unit}")
    p.add_argument("--slurm-cpus", type=int, help=f"CPU cores per {unit}")
    p.add_argument("--slurm-mem-gb", type=int, help=f"memory per {unit} in GB")
    p.add_argument("--slurm-array-parallelism", type=int, help=f"most {unit}s running at once on the cluster")


def slurm_settings(args: argparse.Namespace) -> dict:
    """The SLURM job settings the command line gave, as the launchers take them."""
    return {"cluster": args.slurm_cluster, "partition": args.slurm_partition, "time": args.slurm_time,
            "gpus": args.slurm_gpus, "cpus": args.slurm_cpus, "mem_gb": args.slurm_mem_gb,
            "array_parallelism": args.slurm_array_parallelism}
