"""Where a run reports: metrics sinks, each a training callback, chosen by name in `log.sinks`.

    console       ConsoleProgress   a line per epoch; a live bar on a terminal
    jsonl         JsonlSink         metrics.jsonl, the run's own history (curves and report read it)
    tensorboard   TensorBoardSink   tensorboard/: scalars, final scores, recipe as hparams, plots
    csv           CsvSink           metrics.csv: the same records as one table
    wandb         WandbSink         Weights & Biases (extra `wandb`; WANDB_MODE=offline keeps it local)
    mlflow        MlflowSink        MLflow (extra `mlflow`; a store in the run folder unless a URI is given)

A record is a dict with `kind` ("step" or "epoch") and plain numbers (keys in `cifarlab.evaluation.plots`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, TextIO

from cifarlab.errors import CifarlabError
from cifarlab.runs import METRICS, TENSORBOARD
from cifarlab.training.callbacks import Callback
from cifarlab.training.sinks.console import ConsoleProgress
from cifarlab.training.sinks.csv_table import METRICS_CSV, CsvSink
from cifarlab.training.sinks.jsonl import JsonlSink
from cifarlab.training.sinks.mlflow_run import MlflowSink
from cifarlab.training.sinks.tensorboard_writer import TensorBoardSink
from cifarlab.training.sinks.wandb_run import WandbSink

SINK_NAMES = ("console", "jsonl", "tensorboard", "csv", "wandb", "mlflow")
DEFAULT_SINKS = ("console", "jsonl", "tensorboard")


def build_sinks(names: list[str], run_dir: Path, description: str, stream: Optional[TextIO] = None,
                tracking_uri: Optional[str] = None, project: str = "cifarlab") -> list[Callback]:
    """The sinks `names` asks for, writing into `run_dir`, in the order given.

    `description` heads the console lines; `stream` is where the console writes (stdout by default);
    `tracking_uri` is MLflow's store and `project` the W&B project and MLflow experiment. A sink whose
    package is missing fails here, before any training.
    """
    run_dir = Path(run_dir)
    unknown = [name for name in names if name not in SINK_NAMES]
    if unknown:
        raise CifarlabError(f"log.sinks has unknown {', '.join(map(repr, unknown))}; choose from {', '.join(SINK_NAMES)}")
    sinks: list[Callback] = []
    for name in dict.fromkeys(names):  # a name given twice would write everything twice
        if name == "console":
            sinks.append(ConsoleProgress(description, stream=stream))
        elif name == "jsonl":
            sinks.append(JsonlSink(run_dir / METRICS))
        elif name == "tensorboard":
            sinks.append(TensorBoardSink(run_dir / TENSORBOARD))
        elif name == "csv":
            sinks.append(CsvSink(run_dir / METRICS_CSV))
        elif name == "wandb":
            sinks.append(WandbSink(run_dir, project=project))
        elif name == "mlflow":
            sinks.append(MlflowSink(run_dir, tracking_uri=tracking_uri, experiment=project))
    return sinks


__all__ = ["SINK_NAMES", "DEFAULT_SINKS", "ConsoleProgress", "CsvSink", "JsonlSink", "MlflowSink",
           "TensorBoardSink", "WandbSink", "build_sinks"]
