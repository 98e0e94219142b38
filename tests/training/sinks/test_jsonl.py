import json

import pytest

from cifarlab.errors import CifarlabError
from cifarlab.training.sinks import JsonlSink
from tests.training.sinks.conftest import TEST_RESULT, TOTAL_STEPS, feed, records_up_to


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_step_and_epoch_records_and_nothing_for_evaluations(trainer):
    path = trainer.run_dir / "metrics.jsonl"
    sink = JsonlSink(path)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(TOTAL_STEPS))
    sink.on_eval(trainer, "test", TEST_RESULT)
    sink.on_end(trainer, "finished")
    assert read(path) == records_up_to(TOTAL_STEPS)


def test_a_fresh_run_replaces_an_old_history(trainer):
    path = trainer.run_dir / "metrics.jsonl"
    path.write_text('{"kind": "step", "step": 99}\n')
    sink = JsonlSink(path)
    sink.on_start(trainer, TOTAL_STEPS, 0)
    feed(sink, trainer, records_up_to(2))
    sink.on_end(trainer, "stopped")
    assert [record["step"] for record in read(path)] == [2]


def test_resume_drops_lines_beyond_the_resumed_step_and_a_line_cut_by_a_crash(trainer):
    path = trainer.run_dir / "metrics.jsonl"
    lines = [json.dumps(record) for record in records_up_to(6)]
    path.write_text("\n".join(lines) + "\n" + lines[-1][:17])  # the crash cut the last line short
    sink = JsonlSink(path)
    sink.on_start(trainer, TOTAL_STEPS, 4)
    feed(sink, trainer, records_up_to(TOTAL_STEPS, first_step=5))
    sink.on_end(trainer, "finished")
    assert read(path) == records_up_to(TOTAL_STEPS)


def test_resume_refuses_a_history_damaged_in_the_middle(trainer):
    path = trainer.run_dir / "metrics.jsonl"
    lines = [json.dumps(record) for record in records_up_to(6)]
    lines[1] = lines[1][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CifarlabError, match="line 2 is not JSON"):
        JsonlSink(path).on_start(trainer, TOTAL_STEPS, 4)
