import torch
import torch.nn.functional as F

from cifarlab.config.recipe import AugmentConfig
from cifarlab.data.pipeline import BatchPipeline


def _images(n=16, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n) % 4


def _pipe(images, labels, aug, **kw):
    kw.setdefault("batch_size", len(images))
    return BatchPipeline(images, labels, num_classes=4, mean=(0, 0, 0), std=(1, 1, 1), augment=aug, **kw)


def _raw(images, idx):
    return images[idx].float() / 255


def _u8(inputs):
    """Pipeline output (mean 0, std 1) back to the uint8 pixels it came from."""
    return (inputs * 255).round().to(torch.uint8)


def test_random_crop_is_a_window_of_the_padded_image():
    images, labels = _images()
    aug = AugmentConfig(crop_padding=2, pad_mode="zeros", flip="none")
    pipe = _pipe(images, labels, aug, shuffle=False)
    batch = next(pipe.epoch(0))
    padded = F.pad(images, (2, 2, 2, 2))
    offsets = set()
    for i, out in enumerate(_u8(batch.inputs)):
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(padded[i, :, dy : dy + 8, dx : dx + 8], out)]
        assert hits, f"image {i} is not a window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 3  # offsets really vary


def test_reflect_padding_never_shows_zeros_from_outside():
    images = torch.full((32, 3, 8, 8), 200, dtype=torch.uint8)
    pipe = _pipe(images, torch.zeros(32, dtype=torch.long), AugmentConfig(crop_padding=4, flip="none"))
    assert torch.all(_u8(next(pipe.epoch(0)).inputs) == 200)


def test_flip_is_an_exact_mirror_and_happens_about_half_the_time():
    images, labels = _images(n=64)
    pipe = _pipe(images, labels, AugmentConfig(crop_padding=0, flip="random"), shuffle=False)
    out = _u8(next(pipe.epoch(0)).inputs)
    raw = images
    same = [torch.equal(o, r) for o, r in zip(out, raw)]
    mirrored = [torch.equal(o, r.flip(-1)) for o, r in zip(out, raw)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 16 < sum(mirrored) < 48


def test_alternating_flip_flips_exactly_the_complement_next_epoch():
    images, labels = _images(n=32)
    pipe = _pipe(images, labels, AugmentConfig(crop_padding=0, flip="alternating"), shuffle=False)
    raw = images
    flipped = []
    for epoch in range(3):
        out = _u8(next(pipe.epoch(epoch)).inputs)
        flipped.append(torch.tensor([torch.equal(o, r.flip(-1)) and not torch.equal(o, r) for o, r in zip(out, raw)]))
    assert torch.equal(flipped[1], ~flipped[0])
    assert torch.equal(flipped[2], flipped[0])


def test_cutout_fills_one_square_with_the_fill_value():
    images = torch.full((64, 3, 16, 16), 255, dtype=torch.uint8)
    pipe = _pipe(images, torch.zeros(64, dtype=torch.long), AugmentConfig(crop_padding=0, flip="none", cutout=6, cutout_fill=0.25))
    out = next(pipe.epoch(0)).inputs
    full_holes = 0
    for img in out:
        hole = (img[0] - 1.0).abs() > 1e-6
        assert torch.all(img[:, hole] == 0.25)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        # The hole is one axis-aligned rectangle, at most 6x6 (smaller only where clipped by the edge).
        assert hole.sum() == len(rows) * len(cols) and len(rows) <= 6 and len(cols) <= 6
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
        full_holes += hole.sum().item() == 36
    assert full_holes > 10


def test_normalisation_uses_the_given_mean_and_std():
    images, labels = _images()
    pipe = BatchPipeline(images, labels, batch_size=16, num_classes=4, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5), shuffle=False)
    out = next(pipe.epoch(0)).inputs
    expected = (_raw(images, torch.arange(16)) - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.5]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expected)


def test_mixed_targets_sum_to_one_and_match_the_mixing_weight():
    images, labels = _images(n=32)
    for aug in (AugmentConfig(mixup_alpha=0.4), AugmentConfig(cutmix_alpha=1.0), AugmentConfig(mixup_alpha=0.2, cutmix_alpha=1.0)):
        pipe = _pipe(images, labels, aug, label_smoothing=0.1)
        for epoch in range(4):
            b = next(pipe.epoch(epoch))
            assert b.targets.shape == (32, 4)
            torch.testing.assert_close(b.targets.sum(1), torch.ones(32))
            assert (b.targets >= 0.1 / 4 - 1e-6).all()


def test_mixup_mixes_inputs_and_targets_with_the_same_weight():
    images, labels = _images(n=8)
    pipe = _pipe(images, labels, AugmentConfig(crop_padding=0, flip="none", mixup_alpha=1.0), shuffle=False)
    b = next(pipe.epoch(0))
    raw = _raw(images, torch.arange(8))
    onehot = F.one_hot(labels, 4).float()
    # Recover lambda from the first image's target and check the pixels agree.
    assert labels[0] != labels[7]
    lam = b.targets[0, labels[0]]
    assert 0 < lam < 1
    torch.testing.assert_close(b.inputs, raw * lam + raw.flip(0) * (1 - lam))
    torch.testing.assert_close(b.targets, onehot * lam + onehot.flip(0) * (1 - lam))


def test_cutmix_target_weight_equals_pasted_area():
    images = torch.zeros(8, 3, 16, 16, dtype=torch.uint8)
    images[4:] = 255  # the reversed partner of an image of zeros is an image of ones
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    pipe = _pipe(images, labels, AugmentConfig(crop_padding=0, flip="none", cutmix_alpha=1.0), shuffle=False)
    for epoch in range(5):
        b = next(pipe.epoch(epoch))
        pasted = b.inputs[0, 0].mean().item()
        torch.testing.assert_close(b.targets[0, 1].item(), pasted, atol=1e-6, rtol=0)


def test_batches_are_a_function_of_seed_epoch_and_index():
    images, labels = _images(n=40)
    aug = AugmentConfig(cutout=3)
    a = [b.inputs for b in _pipe(images, labels, aug, batch_size=8, seed=1).epoch(2)]
    b = [b.inputs for b in _pipe(images, labels, aug, batch_size=8, seed=1).epoch(2)]
    c = [b.inputs for b in _pipe(images, labels, aug, batch_size=8, seed=2).epoch(2)]
    tail = [b.inputs for b in _pipe(images, labels, aug, batch_size=8, seed=1).epoch(2, start=3)]
    assert len(a) == 5 and all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert all(torch.equal(x, y) for x, y in zip(a[3:], tail))


def test_epoch_order_is_a_permutation_that_changes_per_epoch():
    images, labels = _images(n=40)
    pipe = _pipe(images, labels, None, batch_size=8)
    o0, o1 = pipe.order(0), pipe.order(1)
    assert sorted(o0.tolist()) == list(range(40))
    assert not torch.equal(o0, o1)


def test_drop_last_and_keep_last_batch_counts():
    images, labels = _images(n=20)
    assert len(_pipe(images, labels, None, batch_size=8)) == 2
    keep = _pipe(images, labels, None, batch_size=8, drop_last=False, shuffle=False)
    sizes = [len(b.labels) for b in keep.epoch(0)]
    assert sizes == [8, 8, 4]


def test_small_split_is_sampled_with_replacement():
    images, labels = _images(n=5)
    pipe = _pipe(images, labels, None, batch_size=64)
    assert pipe.replacement and len(pipe) == 1
    b = next(pipe.epoch(0))
    assert b.inputs.shape[0] == 64
    assert set(b.labels.tolist()) <= set(labels.tolist())


def test_ranks_together_see_the_single_process_batch():
    images, labels = _images(n=32)
    aug = AugmentConfig(cutout=3, mixup_alpha=0.3)
    whole = next(_pipe(images, labels, aug, batch_size=16).epoch(0))
    parts = [next(_pipe(images, labels, aug, batch_size=16, rank=r, world_size=2).epoch(0)) for r in range(2)]
    torch.testing.assert_close(torch.cat([p.inputs for p in parts]), whole.inputs)
    torch.testing.assert_close(torch.cat([p.targets for p in parts]), whole.targets)


def test_bit_style_resize_then_random_crop_and_channels_last():
    images, labels = _images(n=4, size=32)
    aug = AugmentConfig(resize=40, crop=36, crop_padding=0)
    b = next(_pipe(images, labels, aug, channels_last=True).epoch(0))
    assert b.inputs.shape == (4, 3, 36, 36)
    assert b.inputs.is_contiguous(memory_format=torch.channels_last)
