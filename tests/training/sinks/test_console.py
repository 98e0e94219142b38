import io
import re
from types import SimpleNamespace

from cifarlab.training.sinks import ConsoleProgress
from tests.training.sinks.conftest import TEST_RESULT, TOTAL_STEPS, feed, records_up_to

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def run_epochs(console, trainer, clock, first_step=1, last_step=TOTAL_STEPS):
    """Steps and records as the loop sends them, the clock advancing 2.5 s per step."""
    for step in range(first_step, last_step + 1):
        clock.now += 2.5
        console.on_step(trainer, SimpleNamespace(step=step))
        feed(console, trainer, records_up_to(step, first_step=step))


def test_piped_output_is_a_start_line_one_line_per_epoch_and_a_final_line(trainer):
    stream, clock = io.StringIO(), FakeClock()
    console = ConsoleProgress("sinktest lenet", stream=stream, clock=clock)
    console.on_start(trainer, TOTAL_STEPS, 0)
    run_epochs(console, trainer, clock)
    console.on_eval(trainer, "test", TEST_RESULT)
    clock.now += 5
    console.on_end(trainer, "finished")
    assert stream.getvalue() == (
        "sinktest lenet: training 8 steps (2 epochs of 4)\n"
        "epoch 1/2  step 4/8  loss 1.7000  top1 20.00%  val_loss 1.4000  val_top1 40.00%  lr 0.025  1,234 img/s  2.5s"
        "  left 10.0s\n"
        "epoch 2/2  step 8/8  loss 1.5000  top1 40.00%  val_loss 1.3000  val_top1 50.00%  lr 0.0125  1,234 img/s  2.5s\n"
        "sinktest lenet: finished 8 steps in 25.0s; best val_top1 50.00% at step 8\n"
    )


def test_piped_output_of_a_stopped_run_and_its_resume(trainer):
    stream, clock = io.StringIO(), FakeClock()
    console = ConsoleProgress("sinktest lenet", stream=stream, clock=clock)
    console.on_start(trainer, TOTAL_STEPS, 0)
    run_epochs(console, trainer, clock, last_step=6)
    console.on_end(trainer, "stopped")
    resumed = ConsoleProgress("sinktest lenet", stream=stream, clock=clock)
    resumed.on_start(trainer, TOTAL_STEPS, 6)
    run_epochs(resumed, trainer, clock, first_step=7)
    resumed.on_end(trainer, "finished")
    lines = stream.getvalue().splitlines()
    assert lines[2] == "sinktest lenet: stopped at step 6 of 8 after 15.0s"
    assert lines[3] == "sinktest lenet: resuming at step 6 of 8 steps (2 epochs of 4)"
    assert lines[4].startswith("epoch 2/2  step 8/8  loss 1.5000")
    assert lines[5] == "sinktest lenet: finished 8 steps in 5.0s; best val_top1 50.00% at step 8"
    assert len(lines) == 6


def test_on_a_terminal_epoch_lines_stay_above_a_live_bar(trainer, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that the bar shows its whole status
    stream, clock = io.StringIO(), FakeClock()
    console = ConsoleProgress("sinktest lenet", stream=stream, force_plain=False, clock=clock)
    console.on_start(trainer, TOTAL_STEPS, 0)
    assert console.bar is not None and console.bar.live.is_started
    run_epochs(console, trainer, clock, last_step=6)
    console.bar.refresh()
    bar_text = ANSI.sub("", stream.getvalue())
    assert "loss 1.4000  acc 40.0%  lr 0.0167  1,006 img/s" in bar_text  # the step-6 record on the bar
    run_epochs(console, trainer, clock, first_step=7)
    assert console.bar is None  # the last epoch ends the bar, so evaluation bars may follow
    console.on_end(trainer, "finished")

    raw = stream.getvalue()
    assert "\x1b[" in raw  # drawn with terminal control codes
    text = ANSI.sub("", raw)
    first = "epoch 1/2  step 4/8  loss 1.7000  top1 20.00%"
    second = "epoch 2/2  step 8/8  loss 1.5000  top1 40.00%"
    assert text.count(first) == 1 and text.count(second) == 1
    assert text.index("training 8 steps") < text.index(first) < text.index(second) < text.index("finished 8 steps")
    assert "8/8" in text[text.index(second):]  # the bar's last state, completed, under the last epoch line


def test_a_run_that_failed_before_starting_prints_nothing(trainer):
    stream = io.StringIO()
    console = ConsoleProgress("sinktest lenet", stream=stream)
    console.on_end(trainer, "failed")
    assert stream.getvalue() == ""


def test_a_failed_run_ends_with_the_step_it_reached(trainer):
    stream, clock = io.StringIO(), FakeClock()
    console = ConsoleProgress("sinktest lenet", stream=stream, clock=clock)
    console.on_start(trainer, TOTAL_STEPS, 0)
    run_epochs(console, trainer, clock, last_step=5)
    console.on_end(trainer, "failed")
    assert stream.getvalue().splitlines()[-1] == "sinktest lenet: failed at step 5 of 8 after 12.5s"
