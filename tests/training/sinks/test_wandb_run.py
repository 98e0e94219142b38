import json
import struct
import time

import pytest

from cifarlab.training.sinks import WandbSink
from tests.training.sinks.conftest import TEST_RESULT, TOTAL_STEPS, feed, records_up_to

wandb = pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

BLOCK = 32768
HEADER = 7  # b":W&B", magic, version at the start of the file; crc, length, type before each chunk


def wandb_records(path) -> list:
    """Every record of an offline run's .wandb file (a log of protobuf records in 32 KiB blocks)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, position, pending = [], HEADER, b""
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:  # the rest of a block too short for a chunk is padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        chunk = data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        pending += chunk
        if kind in (1, 4):  # a full record, or the last chunk of a split one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
        if kind == 0 and length == 0:
            break
    return records


def finished_log(path, timeout: float = 60.0) -> list:
    """The records of a run's .wandb file once its exit record is there.

    The W&B service writes the file in the background; `finish()` may return before it has.
    """
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(path)
        if any(record.WhichOneof("record_type") == "exit" for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))


def history(records) -> list[tuple[int, dict]]:
    rows = []
    for record in records:
        if record.WhichOneof("record_type") == "history":
            # A logged image is a nested value ("report/curves" -> path, size ...); its top key is enough here.
            values = {item.key or item.nested_key[0]: json.loads(item.value_json) for item in record.history.item}
            rows.append((record.history.step.num, values))
    return rows


def test_offline_run_keeps_config_history_and_final_scores_in_the_run_folder(trainer, report_pngs, offline):
    sink = WandbSink(trainer.run_dir, project="cifarlab-test")
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(TOTAL_STEPS))
    sink.on_eval(trainer, "test", TEST_RESULT)
    sink.on_end(trainer, "finished")

    run_id = (trainer.run_dir / "wandb" / "cifarlab_run_id").read_text().strip()
    [log] = list((trainer.run_dir / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    records = finished_log(log)
    rows = history(records)
    losses = {values["_step"]: values["step/loss"] for _, values in rows if "step/loss" in values}
    assert losses == {2: 1.8, 4: 1.6, 6: 1.4, 8: 1.2}
    assert any(values.get("val/top1") == 0.5 for _, values in rows)
    assert any("report/curves" in values for _, values in rows)

    # The config travels in the run record (and in config records for later changes).
    updates = [record.run.config.update if record.WhichOneof("record_type") == "run" else record.config.update
               for record in records if record.WhichOneof("record_type") in ("run", "config")]
    config = {item.key: json.loads(item.value_json) for update in updates for item in update}
    assert config["optim"]["lr"] == 0.05 and config["model"]["name"] == "lenet"
    summary = {item.key or item.nested_key[0]: json.loads(item.value_json) for record in records
               if record.WhichOneof("record_type") == "summary" for item in record.summary.update}
    assert summary["final_test/top1"] == 0.61 and summary["final_test/ece"] == 0.04


def test_a_resumed_run_reports_into_the_same_wandb_run(trainer, offline):
    sink = WandbSink(trainer.run_dir)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(4))
    sink.on_end(trainer, "stopped")
    run_id = (trainer.run_dir / "wandb" / "cifarlab_run_id").read_text().strip()

    resumed = WandbSink(trainer.run_dir)
    resumed.on_start(trainer, TOTAL_STEPS, 4)
    feed(resumed, trainer, records_up_to(TOTAL_STEPS, first_step=5))
    resumed.on_end(trainer, "finished")
    logs = sorted((trainer.run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 2 and all(path.name == f"run-{run_id}.wandb" for path in logs)
    steps = [values["_step"] for _, values in history(finished_log(logs[-1]))]
    assert steps == [6, 8]  # the resumed part; W&B keeps the first part in the first file
