import io

from cifarlab.progress import task, track


class TerminalStream(io.StringIO):
    """A stream that says it is a terminal, as a user's console does."""

    def isatty(self) -> bool:
        return True


def test_track_yields_every_item_and_writes_nothing_when_piped():
    stream = io.StringIO()
    assert list(track(range(5), "decoding cifar10", stream=stream)) == [0, 1, 2, 3, 4]
    assert stream.getvalue() == ""


def test_track_draws_a_bar_with_count_on_a_terminal():
    stream = TerminalStream()
    assert list(track(iter("abc"), "LR range test", total=3, stream=stream)) == ["a", "b", "c"]
    text = stream.getvalue()
    assert "LR range test" in text and "3/3" in text and "\x1b[" in text


def test_task_advances_by_the_amounts_given():
    stream = TerminalStream()
    with task("test-time augmentation", total=10, stream=stream) as advance:
        advance(4)
        advance(6)
    assert "10/10" in stream.getvalue()
    with task("silent", total=2, stream=io.StringIO()) as advance:
        advance()  # piped: a no-op, but callable the same way
