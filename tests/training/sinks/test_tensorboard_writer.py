from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from cifarlab.training.sinks import TensorBoardSink
from tests.training.sinks.conftest import TEST_RESULT, TOTAL_STEPS, feed, records_up_to


def read_events(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def hparams_content(events) -> dict:
    try:
        return events.PluginTagToContent("hparams")
    except KeyError:  # no hparams summary at all
        return {}


def session_start(events) -> plugin_data_pb2.SessionStartInfo:
    content = hparams_content(events)["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info


def test_a_finished_run_has_scalars_final_scores_hparams_and_report_images(trainer, report_pngs):
    log_dir = trainer.run_dir / "tensorboard"
    sink = TensorBoardSink(log_dir)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(TOTAL_STEPS))
    sink.on_eval(trainer, "test", TEST_RESULT)
    sink.on_end(trainer, "finished")

    events = read_events(log_dir)
    tags = events.Tags()
    assert [(event.step, round(event.value, 6)) for event in events.Scalars("step/loss")] == [
        (2, 1.8), (4, 1.6), (6, 1.4), (8, 1.2)]
    assert [(event.step, round(event.value, 6)) for event in events.Scalars("val/top1")] == [(4, 0.4), (8, 0.5)]
    assert [(event.step, round(event.value, 6)) for event in events.Scalars("final_test/top1")] == [(8, 0.61)]
    assert {"final_test/top5", "final_test/loss", "final_test/ece", "epoch/train_top1"} <= set(tags["scalars"])
    assert sorted(tags["images"]) == ["report/confusion_test", "report/curves"]
    image = events.Images("report/curves")[0]
    assert (image.width, image.height) == (40, 30)

    start = session_start(events)
    assert start.hparams["optim.lr"].number_value == 0.05
    assert start.hparams["model.name"].string_value == "lenet"
    experiment = hparams_content(events)["_hparams_/experiment"]
    metric_names = plugin_data_pb2.HParamsPluginData.FromString(experiment).experiment.metric_infos
    assert {metric.name.tag for metric in metric_names} == {"final_test/top1", "final_test/top5",
                                                            "final_test/loss", "final_test/ece"}


def test_a_stopped_run_writes_no_hparams_and_its_resume_hides_the_steps_beyond_the_checkpoint(trainer):
    log_dir = trainer.run_dir / "tensorboard"
    sink = TensorBoardSink(log_dir)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(6))
    sink.on_end(trainer, "stopped")
    events = read_events(log_dir)
    assert hparams_content(events) == {} and events.Tags()["images"] == []

    resumed = TensorBoardSink(log_dir)
    resumed.on_start(trainer, TOTAL_STEPS, 4)
    feed(resumed, trainer, records_up_to(TOTAL_STEPS, first_step=5))
    resumed.on_end(trainer, "finished")
    steps = [event.step for event in read_events(log_dir).Scalars("step/loss")]
    assert steps == [2, 4, 6, 8]
