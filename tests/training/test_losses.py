import pytest
import torch
import torch.nn.functional as F

from cifarlab.errors import CifarlabError
from cifarlab.training.losses import get_loss, loss_names, register_loss

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
LABELS = torch.tensor([0, 2])


def test_every_loss_the_fdu_study_compares_is_registered():
    assert {"cross_entropy", "mse", "bce", "huber"} <= set(loss_names())


def test_cross_entropy_applies_label_smoothing_to_class_indices_only():
    smoothed = get_loss("cross_entropy", 0.1)
    assert torch.isclose(smoothed(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS, label_smoothing=0.1))
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    # Soft targets (MixUp/CutMix) already carry their smoothing.
    assert torch.isclose(smoothed(LOGITS, soft), F.cross_entropy(LOGITS, soft))


@pytest.mark.parametrize("name, reference", [
    ("mse", F.mse_loss), ("huber", F.huber_loss), ("bce", F.binary_cross_entropy_with_logits)])
def test_regression_losses_compare_logits_with_one_hot_targets(name, reference):
    one_hot = F.one_hot(LABELS, 3).float()
    assert torch.isclose(get_loss(name)(LOGITS, LABELS), reference(LOGITS, one_hot))
    smoothed = one_hot * 0.8 + 0.2 / 3
    assert torch.isclose(get_loss(name, 0.2)(LOGITS, LABELS), reference(LOGITS, smoothed))


def test_an_unknown_loss_names_the_closest_and_every_choice():
    with pytest.raises(CifarlabError, match="did you mean mse"):
        get_loss("mse2")


def test_registering_the_same_loss_again_is_harmless_but_another_under_its_name_is_refused():
    def make():
        @register_loss("test_twice")
        def twice(label_smoothing):
            return lambda logits, targets: logits.sum()

    make()
    make()  # a re-run notebook cell
    with pytest.raises(ValueError, match="already registered"):
        register_loss("test_twice")(lambda label_smoothing: None)
