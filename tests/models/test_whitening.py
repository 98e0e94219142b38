import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.whitening import identity_init, init_airbench, patch_whitening_init


def correlated_images(n: int = 64, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Images with strongly correlated neighbouring pixels and channels, like natural images."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, size + 2, size + 2, generator=g)
    smooth = nn.functional.avg_pool2d(noise, 3, stride=1)  # spatial correlation
    mix = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])
    return torch.einsum("dc,nchw->ndhw", mix, smooth) + 0.5  # channel correlation and an offset


def output_moments(conv: nn.Conv2d, images: torch.Tensor):
    with torch.no_grad():
        out = conv(images.double() if conv.weight.dtype == torch.float64 else images)
    flat = out.transpose(0, 1).reshape(out.shape[1], -1).double()
    return flat.mean(1), torch.cov(flat, correction=0)


def test_whitened_conv_outputs_have_identity_covariance_on_training_patches():
    images = correlated_images()
    conv = nn.Conv2d(3, 12, 2, padding=0, bias=True)
    eps = 1e-7
    eigenvalues = patch_whitening_init(conv, images, eps=eps)
    mean, cov = output_moments(conv, images)
    expected = torch.diag(eigenvalues.double() / (eigenvalues.double() + eps))
    assert torch.allclose(cov, expected, atol=1e-3)
    assert torch.allclose(cov, torch.eye(12, dtype=torch.float64), atol=5e-3)
    assert mean.abs().max() < 1e-4
    assert torch.all(eigenvalues[:-1] >= eigenvalues[1:])  # largest first


def test_eps_shrinks_the_variance_of_small_eigendirections():
    images = correlated_images()
    conv = nn.Conv2d(3, 12, 2)
    eigenvalues = patch_whitening_init(conv, images, eps=1.0)
    _, cov = output_moments(conv, images)
    expected = eigenvalues.double() / (eigenvalues.double() + 1.0)
    assert torch.allclose(cov.diagonal(), expected, atol=1e-3)
    assert cov.diagonal()[-1] < 0.5 * cov.diagonal()[0]


def test_double_width_conv_holds_filters_and_their_negatives_and_is_frozen():
    conv = nn.Conv2d(3, 24, 2)
    patch_whitening_init(conv, correlated_images(16))
    assert torch.equal(conv.weight[12:], -conv.weight[:12])
    assert torch.equal(conv.bias[12:], -conv.bias[:12])
    assert not conv.weight.requires_grad and conv.bias.requires_grad


def test_uint8_images_are_whitened_as_pixels_in_unit_range():
    pixels = (correlated_images(8).clamp(0, 1) * 255).round().to(torch.uint8)
    a, b = nn.Conv2d(3, 12, 2), nn.Conv2d(3, 12, 2)
    patch_whitening_init(a, pixels)
    patch_whitening_init(b, pixels.float() / 255)
    assert torch.allclose(a.weight, b.weight) and torch.allclose(a.bias, b.bias)


def test_whitening_rejects_a_conv_of_the_wrong_width():
    with pytest.raises(CifarlabError, match="needs 12 or 24 outputs"):
        patch_whitening_init(nn.Conv2d(3, 16, 2), correlated_images(4))
    with pytest.raises(CifarlabError, match="channels"):
        patch_whitening_init(nn.Conv2d(3, 12, 2), torch.rand(4, 1, 8, 8))


def test_identity_init_makes_3x3_convs_pass_their_inputs_through():
    torch.manual_seed(0)
    model = create("airbench94", widths=[16, 32, 32])
    assert identity_init(model) == 6
    x = torch.randn(2, 16, 8, 8)
    square = model.groups[0].conv2  # 16 -> 16
    assert torch.allclose(square(x), x, atol=1e-6)
    widening = model.groups[1].conv1  # 16 -> 32: first 16 outputs copy the input
    out = widening(x)
    assert torch.allclose(out[:, :16], x, atol=1e-6)
    assert out[:, 16:].abs().sum() > 0  # the extra channels keep their random init


def test_identity_init_leaves_even_kernel_whitening_conv_alone():
    model = create("airbench94", widths=[16, 32, 32])
    before = model.whiten.weight.clone()
    identity_init(model)
    assert torch.equal(model.whiten.weight, before)


def test_init_airbench_whitens_the_first_layer_of_an_airbench_net():
    model = create("airbench94", widths=[16, 32, 32])
    init_airbench(model, correlated_images(16))
    assert not model.whiten.weight.requires_grad
    assert torch.allclose(model.groups[0].conv2(torch.ones(1, 16, 4, 4)), torch.ones(1, 16, 4, 4), atol=1e-6)
    with pytest.raises(CifarlabError, match="no `whiten` conv"):
        init_airbench(nn.Sequential(nn.Conv2d(3, 8, 3)), correlated_images(4))
