"""Where a study's workers run besides this process: N local worker processes, or N SLURM jobs through submitit.

Each worker is `worker.worker_entry` on the same storage; the local processes split the cores
between them the way `cifarlab sweep --jobs` does, and the SLURM jobs take the same options as
`cifarlab sweep --launcher slurm`.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import sys

from cifarlab.errors import CifarlabError
from cifarlab.sweeps.launchers import SLURM_PARAMETERS, threads_per_job
from cifarlab.tuning.storage import StudyPlace
from cifarlab.tuning.tune_file import TuneSpec
from cifarlab.tuning.worker import worker_entry


def _limit_threads(threads: int) -> None:
    """In a fresh worker process, before torch starts its thread pools: use only this worker's share of the cores."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run_local_workers(spec: TuneSpec, place: StudyPlace, jobs: int) -> list[dict]:
    """Run `jobs` worker processes on the study and return their reports; progress goes to logs/NNNN.log."""
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_limit_threads,
                                                initargs=(threads_per_job(jobs),)) as pool:
        futures = [pool.submit(worker_entry, spec.to_dict(), place.to_dict(), index, True) for index in range(jobs)]
        try:
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C reached the workers too: let their trials stop cleanly
            raise


def slurm_submitter(options: dict):
    """The submitit module, once it is sure jobs can be submitted with `options` (checked before the study is created)."""
    try:
        import submitit
    except ImportError:
        raise CifarlabError("--launcher slurm needs submitit: pip install 'cifarlab[slurm]'") from None
    if (options.get("cluster") or "slurm") == "slurm" and shutil.which("sbatch") is None:
        raise CifarlabError("no SLURM here (sbatch not found); run on the cluster's login node, "
                            "or use --launcher local (--jobs N) on this machine")
    return submitit


def run_slurm_workers(spec: TuneSpec, place: StudyPlace, jobs: int, options: dict) -> list[dict]:
    """Submit `jobs` workers as one job array through submitit and wait for them; job logs go to STUDY_DIR/slurm/.

    `options`: `cluster` ("slurm"; "local" or "debug" run the same jobs on this machine) and the keys of
    the sweep's SLURM_PARAMETERS (partition, time, gpus, cpus, mem_gb, array_parallelism).
    """
    submitit = slurm_submitter(options)
    executor = submitit.AutoExecutor(folder=place.folder / "slurm" / "%j", cluster=options.get("cluster") or "slurm")
    parameters = {SLURM_PARAMETERS[k]: v for k, v in options.items() if k in SLURM_PARAMETERS and v is not None}
    executor.update_parameters(name=place.name, **parameters)
    with executor.batch():
        submitted = [executor.submit(worker_entry, spec.to_dict(), place.to_dict(), index, True) for index in range(jobs)]
    for job in submitted:
        print(f"worker submitted as job {job.job_id}", file=sys.stderr, flush=True)
    reports = []
    for job in submitted:
        try:
            reports.append(job.result())
        except Exception as exc:  # submitit's FailedJobError: the job died (killed, out of memory, time limit)
            reports.append({"states": {}, "error": f"job {job.job_id} failed: {str(exc).strip().splitlines()[-1]}",
                            "exit_code": None})
    return reports
