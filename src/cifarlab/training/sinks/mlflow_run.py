"""MLflow: the flattened recipe as params, the records as metrics, the report plots as artifacts.

Needs the `mlflow` extra. Without a tracking URI (`log.tracking_uri`, else $MLFLOW_TRACKING_URI)
the run keeps its own store in the run folder: `mlflow.db` (SQLite; recent MLflow refuses plain
`file:` stores) with artifacts under `mlruns/`; browse it with
`mlflow ui --backend-store-uri sqlite:///RUN_DIR/mlflow.db`. A resumed run continues the same MLflow run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.training.callbacks import Callback
from cifarlab.training.sinks.reported import (
    final_metrics,
    recipe_params,
    report_images,
    scalar_tags,
)

# Where the MLflow run id is kept, so a resumed run reports into the same MLflow run.
RUN_ID_FILE = "mlflow_run_id"
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlruns"
# Besides the plots, the files that let an MLflow reader reproduce and read the run.
TEXT_ARTIFACTS = ("recipe.yaml", "report.md")
# MLflow takes at most this many params in one call.
PARAMS_PER_CALL = 100
STATUS = {"finished": "FINISHED", "stopped": "KILLED"}


def import_mlflow():
    """The mlflow package, or CifarlabError saying how to install it."""
    try:
        import mlflow
        import mlflow.entities
        import mlflow.tracking
    except ImportError:
        raise CifarlabError(
            "log.sinks names mlflow but mlflow is not installed; pip install 'cifarlab[mlflow]' "
            "or drop mlflow from log.sinks"
        ) from None
    return mlflow


class MlflowSink(Callback):
    """Logs the recipe, every record and the final scores to an MLflow run; plots become artifacts."""

    def __init__(self, run_dir: Path, tracking_uri: Optional[str] = None, experiment: str = "cifarlab"):
        self.mlflow = import_mlflow()  # fail before training starts, not after
        self.run_dir = Path(run_dir).resolve()
        self.local_store = not (tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.run_dir / STORE_FILE}"
        self.experiment = experiment
        self.client = None
        self.run_id: Optional[str] = None
        self.step = 0

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step = start_step
        try:
            self.client = self.mlflow.tracking.MlflowClient(tracking_uri=self.tracking_uri)
            id_file = self.run_dir / RUN_ID_FILE
            if start_step > 0 and id_file.is_file():
                self.run_id = id_file.read_text().strip()
                self.client.update_run(self.run_id, status="RUNNING")
                return
            run = self.client.create_run(self._experiment_id(), run_name=trainer.recipe.name,
                                         tags={"cifarlab.run_dir": str(self.run_dir)})
        except self.mlflow.exceptions.MlflowException as exc:
            raise CifarlabError(
                f"MLflow could not start a run at {self.tracking_uri} ({exc}); check log.tracking_uri, "
                "or leave it empty to keep an MLflow store in the run folder"
            ) from None
        self.run_id = run.info.run_id
        write_text(id_file, self.run_id + "\n")
        Param = self.mlflow.entities.Param
        params = [Param(key, str(value)) for key, value in recipe_params(trainer.recipe).items()]
        for first in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[first:first + PARAMS_PER_CALL])

    def on_log(self, trainer, record: dict) -> None:
        self.step = record["step"]
        self._metrics(scalar_tags(record))

    def on_epoch(self, trainer, record: dict) -> None:
        self.step = record["step"]
        self._metrics(scalar_tags(record))

    def on_eval(self, trainer, split: str, result: dict) -> None:
        if self.run_id is not None:
            self._metrics(final_metrics(split, result))

    def on_end(self, trainer, status: str) -> None:
        if self.run_id is None:
            return
        if status == "finished" and trainer is not None:
            run_dir = Path(trainer.run_dir)
            texts = [run_dir / name for name in TEXT_ARTIFACTS if (run_dir / name).is_file()]
            for path in [*report_images(run_dir), *texts]:
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=STATUS.get(status, "FAILED"))
        self.run_id = None

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        # A local store keeps its artifacts beside it, not in ./mlruns of wherever training started.
        location = (self.run_dir / ARTIFACTS_DIR).as_uri() if self.local_store else None
        return self.client.create_experiment(self.experiment, artifact_location=location)

    def _metrics(self, values: dict[str, float]) -> None:
        if not values:
            return
        Metric = self.mlflow.entities.Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, value, now, self.step) for key, value in values.items()])
