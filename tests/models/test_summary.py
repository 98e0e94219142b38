"""Model summary: parameter counts and multiply-adds checked against hand-computed values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create, names
from cifarlab.models.summary import count_parameters, model_table, multiply_adds


class TinyNet(nn.Module):
    """conv3x3 3->4 (padding 1, no bias) on 8x8, then a linear layer 256 -> 5."""

    input_size = (3, 8, 8)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.linear = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        return self.linear(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_count_parameters_adds_every_weight_and_bias():
    # conv 4*3*3*3 = 108, BN 2*4 = 8, linear 256*5 + 5 = 1285
    assert count_parameters(TinyNet()) == 108 + 8 + 1285


def test_count_parameters_counts_a_shared_tensor_once():
    shared = nn.Linear(10, 10)
    assert count_parameters(nn.Sequential(shared, nn.ReLU(), shared)) == 110


def test_multiply_adds_of_a_tiny_net_equal_the_hand_count():
    # conv: 8*8 positions * 4 outputs * 3*3*3 taps = 6,912; linear: 256 * 5 = 1,280
    assert multiply_adds(TinyNet()) == 6_912 + 1_280


def test_multiply_adds_of_a_grouped_conv_count_only_its_groups():
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False)
    # 4*4 positions * 8 outputs * (4 / 2 inputs) * 9 taps
    assert multiply_adds(conv, input_size=(4, 4, 4)) == 4 * 4 * 8 * 2 * 9


def test_multiply_adds_of_lenet_equal_the_hand_count():
    convs = 28 * 28 * 6 * 3 * 25 + 10 * 10 * 16 * 6 * 25
    linears = 400 * 120 + 120 * 84 + 84 * 10
    assert multiply_adds(create("lenet")) == convs + linears == 651_720


def test_multiply_adds_on_meta_equal_those_on_cpu():
    with torch.device("meta"):
        on_meta = create("resnet9")
    assert multiply_adds(on_meta) == multiply_adds(create("resnet9"))


def test_multiply_adds_leave_the_model_in_its_mode():
    model = TinyNet().train()
    multiply_adds(model)
    assert model.training
    assert multiply_adds(model.eval()) > 0 and not model.training


def test_multiply_adds_without_an_input_size_is_an_error_naming_the_fix():
    with pytest.raises(CifarlabError, match="input_size"):
        multiply_adds(nn.Linear(3, 3))


def test_model_table_has_one_row_per_registered_model_without_counting_macs():
    rows = model_table()
    assert [row["name"] for row in rows] == names()
    by_name = {row["name"]: row for row in rows}
    assert by_name["resnet18"]["params"] == 11_173_962
    assert by_name["resnet18"]["input_size"] == (3, 32, 32)
    assert by_name["bit_r50x1"]["input_size"] == (3, 128, 128)
    assert all(row["params"] > 0 and row["macs"] is None for row in rows)


def test_model_table_counts_macs_of_the_chosen_models_on_request():
    rows = model_table(only=["lenet", "resnet9"], macs=True)
    assert [row["name"] for row in rows] == ["lenet", "resnet9"]
    assert rows[0]["macs"] == 651_720
    assert rows[1]["macs"] == multiply_adds(create("resnet9"))


def test_models_command_lists_every_model_and_counts_macs_only_when_asked(capsys):
    from cifarlab.cli import main

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "wrn_28_10" in listing and "36,489,290" in listing and "multiply-adds" not in listing
    assert main(["models", "--macs", "lenet"]) == 0
    listing = capsys.readouterr().out
    assert "multiply-adds" in listing and "0.7 M" in listing and "resnet18" not in listing
    assert main(["models", "resnet81"]) == 2
    assert "resnet18" in capsys.readouterr().err
