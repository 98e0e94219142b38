import csv

from cifarlab.training.sinks import CsvSink
from tests.training.sinks.conftest import TOTAL_STEPS, feed, records_up_to, step_record


def read(path):
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        return reader.fieldnames, list(reader)


def test_header_is_the_union_of_keys_and_early_rows_leave_new_columns_empty(trainer):
    path = trainer.run_dir / "metrics.csv"
    sink = CsvSink(path)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(TOTAL_STEPS))
    sink.on_end(trainer, "finished")
    header, rows = read(path)
    assert header[:3] == ["kind", "step", "epoch"]
    assert {"loss", "train_top1", "val_top1", "val_loss", "time_s", "images_per_s", "lr"} <= set(header)
    assert [(row["kind"], int(row["step"])) for row in rows] == [
        ("step", 2), ("step", 4), ("epoch", 4), ("step", 6), ("step", 8), ("epoch", 8)]
    assert rows[0]["val_top1"] == "" and float(rows[2]["val_top1"]) == 0.4
    assert float(rows[3]["loss"]) == step_record(6)["loss"]  # appended after the rewrite, under the wide header
    assert path.read_text().count("kind,step,epoch") == 1


def test_resume_keeps_rows_up_to_the_resumed_step_and_drops_a_cut_row(trainer):
    path = trainer.run_dir / "metrics.csv"
    sink = CsvSink(path)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(6))
    sink.on_end(trainer, "stopped")
    with open(path, "a") as file:
        file.write("step,8,2.0,0.0")  # cut short by a crash, no newline

    resumed = CsvSink(path)
    resumed.on_start(trainer, TOTAL_STEPS, 4)
    feed(resumed, trainer, records_up_to(TOTAL_STEPS, first_step=5))
    resumed.on_end(trainer, "finished")
    _, rows = read(path)
    assert [(row["kind"], int(row["step"])) for row in rows] == [
        ("step", 2), ("step", 4), ("epoch", 4), ("step", 6), ("step", 8), ("epoch", 8)]
