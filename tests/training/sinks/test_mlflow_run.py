import pytest

from cifarlab.training.sinks import MlflowSink
from tests.training.sinks.conftest import TEST_RESULT, TOTAL_STEPS, feed, records_up_to

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


def test_a_stopped_and_resumed_run_is_one_mlflow_run_with_params_metrics_and_plots(trainer, report_pngs, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # no server: the store lives in the run folder
    (trainer.run_dir / "recipe.yaml").write_text("name: sinktest\n")
    sink = MlflowSink(trainer.run_dir, experiment="cifarlab-test")
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(4))
    sink.on_end(trainer, "stopped")
    client = MlflowClient(tracking_uri=f"sqlite:///{trainer.run_dir.resolve() / 'mlflow.db'}")
    run_id = (trainer.run_dir / "mlflow_run_id").read_text().strip()
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.list_artifacts(run_id) == []  # plots only once the run is done

    resumed = MlflowSink(trainer.run_dir, experiment="cifarlab-test")
    resumed.on_start(trainer, TOTAL_STEPS, 4)
    feed(resumed, trainer, records_up_to(TOTAL_STEPS, first_step=5))
    resumed.on_eval(trainer, "test", TEST_RESULT)
    resumed.on_end(trainer, "finished")

    [run] = client.search_runs([client.get_experiment_by_name("cifarlab-test").experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED" and run.info.run_name == "sinktest"
    assert run.data.params["optim.lr"] == "0.05" and run.data.params["model.name"] == "lenet"
    assert [(m.step, round(m.value, 6)) for m in client.get_metric_history(run_id, "step/loss")] == [
        (2, 1.8), (4, 1.6), (6, 1.4), (8, 1.2)]
    assert run.data.metrics["final_test/top1"] == 0.61 and run.data.metrics["val/top1"] == 0.5
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["confusion_test.png", "curves.png", "recipe.yaml"]
    assert (trainer.run_dir / "mlruns").is_dir()  # artifacts beside the store, not in the working directory
