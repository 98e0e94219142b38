"""Weather corruptions: snow, frost, fog and spatter (water drops or mud).

Constants are those of the CIFAR version of Hendrycks & Dietterich's generation code. Every
function takes float images (N, 3, H, W) in [0, 1] and returns them unclipped. Frost uses
procedural textures instead of the benchmark's photographs (see `textures`); spatter draws
the water-drop rims with a simplified edge detector instead of OpenCV's Canny.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cifarlab.robustness import filters, textures

# (mean, std of the flake layer, zoom, threshold, motion radius, motion sigma, image weight)
SNOW = (
    (0.1, 0.2, 1.0, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1.0, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)
SNOW_ANGLE = (-135.0, -45.0)
# (image weight, frost weight)
FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
# (fog strength, plasma decay: larger is smoother)
FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))
# (mean, std of the liquid layer, blur sigma, threshold, water strength or mud blur, mud?)
SPATTER = (
    (0.62, 0.1, 0.7, 0.7, 0.5, False),
    (0.65, 0.1, 0.8, 0.7, 0.5, False),
    (0.65, 0.3, 1.0, 0.69, 0.5, False),
    (0.65, 0.1, 0.7, 0.69, 0.6, True),
    (0.65, 0.1, 0.5, 0.68, 0.6, True),
)
WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, red to blue
MUD = (63 / 255, 42 / 255, 20 / 255)
# ITU-R 601 luma, OpenCV's RGB-to-grey weights.
LUMA = (0.299, 0.587, 0.114)


def grey(images: Tensor) -> Tensor:
    """Luma (N, 1, H, W) of RGB images."""
    return (images * torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def snow(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Falling snow: thresholded noise, zoomed into flakes, streaked by a motion blur; image paled."""
    mean, std, zoom, threshold, radius, sigma, weight = SNOW[severity - 1]
    n, _, h, w = images.shape
    flakes = mean + std * torch.randn(n, 1, h, w, generator=generator).to(images)
    flakes = filters.clipped_zoom(flakes, zoom)
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes)
    flakes = torch.floor(flakes.clamp(0, 1) * 255) / 255  # the published code saves an 8-bit PNG
    low, high = SNOW_ANGLE
    angles = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)
    flakes = torch.round(filters.motion_blur(flakes, radius, sigma, angles).clamp(0, 1) * 255) / 255
    paled = weight * images + (1 - weight) * torch.maximum(images, grey(images) * 1.5 + 0.5)
    return paled + flakes + flakes.flip(-1, -2)


def frost(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Blend a random crop of a frost texture over each image."""
    image_weight, frost_weight = FROST[severity - 1]
    n, _, h, w = images.shape
    pool = textures.frost_textures().to(images)
    chosen = torch.randint(0, textures.FROST_DRAWN, (n,), generator=generator)
    top = torch.randint(0, pool.shape[-2] - h, (n,), generator=generator)
    left = torch.randint(0, pool.shape[-1] - w, (n,), generator=generator)
    rows = (top.view(n, 1, 1) + torch.arange(h).view(1, h, 1)).expand(n, h, w)
    cols = (left.view(n, 1, 1) + torch.arange(w).view(1, 1, w)).expand(n, h, w)
    crops = pool[chosen.view(n, 1, 1), :, rows, cols].permute(0, 3, 1, 2)
    return image_weight * images + frost_weight * crops


def fog(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Add a plasma-fractal haze and rescale so the brightest value stays where it was."""
    strength, decay = FOG[severity - 1]
    n, _, h, w = images.shape
    haze = textures.plasma_fractal(n, 32, decay, generator)[:, :h, :w].unsqueeze(1).to(images)
    brightest = images.amax(dim=(1, 2, 3), keepdim=True)
    return (images + strength * haze) * brightest / (brightest + strength)


def spatter(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Drops on the lens: thresholded blurred noise, drawn as water rims or as opaque mud."""
    mean, std, sigma, threshold, strength, mud = SPATTER[severity - 1]
    n, _, h, w = images.shape
    liquid = mean + std * torch.randn(n, 1, h, w, generator=generator).to(images)
    liquid = filters.gaussian_blur(liquid, sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        mask = filters.gaussian_blur((liquid > threshold).to(images), strength)
        mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
        colour = torch.tensor(MUD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return images * (1 - mask) + colour * mask
    rims = _water_rims(liquid)
    colour = torch.tensor(WATER, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images + strength * rims * colour


def _water_rims(liquid: Tensor) -> Tensor:
    """Shading (N, 1, H, W) in [0, 1] of the water layer: bright near drop edges, embossed."""
    levels = torch.floor(liquid.clamp(0, 1) * 255)
    distance = _distance_to_edges(_edges(levels)).clamp(max=20)
    distance = torch.floor(filters.filter2d(distance, torch.full((3, 3), 1 / 9)))
    distance = _equalise(distance)
    emboss = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    distance = torch.round(filters.filter2d(distance, emboss)).clamp(0, 255)
    distance = filters.filter2d(distance, torch.full((3, 3), 1 / 9))
    shade = levels * distance
    return shade / shade.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)


def _edges(levels: Tensor) -> Tensor:
    """Edge mask of 8-bit levels: Canny's thresholds (50, 150) on the L1 Sobel magnitude, thinned
    to local maxima along the stronger gradient axis, weak edges kept beside a strong one."""
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    gx = filters.filter2d(levels, sobel)
    gy = filters.filter2d(levels, sobel.T)
    magnitude = gx.abs() + gy.abs()
    padded = filters.pad(magnitude, 1, "nearest")
    horizontal = (magnitude >= padded[..., 1:-1, :-2]) & (magnitude >= padded[..., 1:-1, 2:])
    vertical = (magnitude >= padded[..., :-2, 1:-1]) & (magnitude >= padded[..., 2:, 1:-1])
    thin = torch.where(gx.abs() >= gy.abs(), horizontal, vertical)
    strong = thin & (magnitude > 150)
    weak = thin & (magnitude > 50)
    near_strong = torch.nn.functional.max_pool2d(strong.float(), 3, stride=1, padding=1) > 0
    return strong | (weak & near_strong)


def _distance_to_edges(edges: Tensor) -> Tensor:
    """Exact Euclidean distance (N, 1, H, W) from every pixel to the nearest edge pixel (20 if none)."""
    n, _, h, w = edges.shape
    far = float(h * h + w * w)
    rows = torch.arange(h, dtype=torch.float32)
    # Squared distance to the nearest edge in the same column, then the best column.
    along = (rows.view(h, 1) - rows.view(1, h)) ** 2  # (row, edge row)
    column = torch.where(edges[:, 0].unsqueeze(1), along.view(1, h, h, 1), torch.tensor(far))  # (n, row, edge row, col)
    column = column.amin(dim=2)  # (n, row, col)
    cols = torch.arange(w, dtype=torch.float32)
    across = (cols.view(w, 1) - cols.view(1, w)) ** 2  # (col, edge col)
    squared = (column.unsqueeze(2) + across.view(1, 1, w, w)).amin(dim=3)
    distance = squared.sqrt()
    return torch.where(squared >= far, torch.full_like(distance, 20.0), distance).unsqueeze(1)


def _equalise(levels: Tensor) -> Tensor:
    """OpenCV's equalizeHist per image on integer levels 0-255 (N, 1, H, W)."""
    n = levels.shape[0]
    flat = levels.reshape(n, -1).long()
    histogram = torch.zeros(n, 256, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    first = (histogram > 0).float().argmax(dim=1, keepdim=True)
    lowest = histogram.gather(1, first)
    total = flat.shape[1]
    cumulative = histogram.cumsum(dim=1)
    scale = 255.0 / (total - lowest).clamp(min=1).float()
    table = torch.round((cumulative - lowest).float() * scale).clamp(0, 255)
    table = torch.where(torch.arange(256).view(1, -1) <= first, torch.zeros_like(table), table)
    # A flat image maps to its own level.
    table = torch.where(lowest == total, first.float().expand_as(table), table)
    return table.gather(1, flat).reshape(levels.shape).to(levels.dtype)
