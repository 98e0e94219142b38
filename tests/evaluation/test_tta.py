"""TTA modes see exactly their documented views and return the weighted mean softmax."""

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.tta import SHIFT16, tta_softmax

H, W, K = 5, 7, 6  # non-square so a swapped axis shows


class RecordingModel(nn.Module):
    """A fixed linear map of the pixels that remembers every batch it is shown."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(3 * H * W, K, generator=g)
        self.seen = []

    def logits(self, x):
        return x.flatten(1) @ self.weight

    def forward(self, x):
        self.seen.append(x.clone())
        return self.logits(x)


def _batch(n=2, seed=1):
    return torch.randn(n, 3, H, W, generator=torch.Generator().manual_seed(seed))


def _gather(x, rows, cols):
    """view[..., i, j] = x[..., rows[i], cols[j]], built by explicit indexing."""
    return x[..., torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]]


def _reflect(i, n):
    return -i if i < 0 else (2 * (n - 1) - i if i >= n else i)


def _mirror(x):
    return _gather(x, list(range(H)), [W - 1 - j for j in range(W)])


def _translate(x, dy, dx):
    """Content moved by (dy, dx), the uncovered border filled by reflection (no edge repeat)."""
    return _gather(x, [_reflect(i - dy, H) for i in range(H)], [_reflect(j - dx, W) for j in range(W)])


def _roll(x, dy, dx):
    return _gather(x, [(i - dy) % H for i in range(H)], [(j - dx) % W for j in range(W)])


def _expected(model, weighted_views):
    return sum(w * model.logits(v).softmax(1) for w, v in weighted_views)


def _assert_seen_exactly(model, views):
    seen = list(model.seen)
    assert len(seen) == len(views)
    for view in views:
        match = [i for i, s in enumerate(seen) if torch.equal(s, view)]
        assert match, "an expected view was never shown to the model"
        seen.pop(match[0])


def test_none_runs_the_batch_once():
    model, x = RecordingModel(), _batch()
    out = tta_softmax(x, model, "none")
    _assert_seen_exactly(model, [x])
    torch.testing.assert_close(out, model.logits(x).softmax(1))


def test_flip_sees_the_exact_mirror_and_averages_softmax():
    model, x = RecordingModel(), _batch()
    out = tta_softmax(x, model, "flip")
    _assert_seen_exactly(model, [x, _mirror(x)])
    torch.testing.assert_close(out, _expected(model, [(0.5, x), (0.5, _mirror(x))]))


def test_flip_translate_matches_airbench_views_and_weights():
    model, x = RecordingModel(), _batch()
    out = tta_softmax(x, model, "flip_translate")
    down_right, up_left = _translate(x, 1, 1), _translate(x, -1, -1)
    # One-pixel translation really moves content: view[i, j] = x[i-1, j-1] inside the image.
    torch.testing.assert_close(down_right[..., 1:, 1:], x[..., :-1, :-1])
    views = [(0.25, x), (0.25, _mirror(x)), (0.125, down_right), (0.125, _mirror(down_right)),
             (0.125, up_left), (0.125, _mirror(up_left))]
    _assert_seen_exactly(model, [v for _, v in views])
    torch.testing.assert_close(out, _expected(model, views))


def test_shift16_sees_the_sixteen_documented_shifts():
    documented = [(d * sy, d * sx) for d in (1, 2) for sy in (-1, 0, 1) for sx in (-1, 0, 1) if (sy, sx) != (0, 0)]
    assert sorted(SHIFT16) == sorted(documented) and len(set(SHIFT16)) == 16
    model, x = RecordingModel(), _batch()
    out = tta_softmax(x, model, "shift16")
    views = [(1 / 16, _roll(x, dy, dx)) for dy, dx in documented]
    _assert_seen_exactly(model, [v for _, v in views])
    assert not any(torch.equal(s, x) for s in model.seen)  # the unshifted image is not a view
    torch.testing.assert_close(out, _expected(model, views))


@pytest.mark.parametrize("mode", ["none", "flip", "flip_translate", "shift16"])
def test_every_mode_returns_probability_rows(mode):
    out = tta_softmax(_batch(n=3), RecordingModel(), mode)
    assert out.shape == (3, K) and out.dtype == torch.float32
    torch.testing.assert_close(out.sum(1), torch.ones(3))


def test_unknown_mode_is_rejected_with_the_choices():
    with pytest.raises(CifarlabError, match="shift16"):
        tta_softmax(_batch(), RecordingModel(), "rotate")
