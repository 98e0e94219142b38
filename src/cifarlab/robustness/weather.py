"""Weather corruptions: snow, frost, fog and spatter (water drops or mud).

Constants are those of the CIFAR version of Hendrycks & Dietterich's generation code. Every
function takes float images (N, 3, H, W) in [0, 1] and returns them unclipped. Frost uses
procedural textures instead of the benchmark's photographs unless it is handed the photographs
(see `textures`); spatter draws the water-drop rims with OpenCV's steps (Canny, the 5x5
distance transform, equalisation) written in torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

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
# (image weight, frost weight): the published per-severity coefficients of frost (hendrycks/robustness,
# ImageNet-C/create_c/make_cifar_c.py), used for the generated textures and the photographs alike.
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


def frost(images: Tensor, severity: int, generator: torch.Generator,
          photos: Optional[Sequence[Tensor]] = None) -> Tensor:
    """Blend a random crop of a frost texture over each image: the generated textures, or `photos`
    (the published photographs from `textures.frost_photos`), blended the same way."""
    image_weight, frost_weight = FROST[severity - 1]
    layers = textures.frost_textures() if photos is None else photos
    crops = frost_crops(layers, images.shape[0], images.shape[-1], generator)
    return image_weight * images + frost_weight * crops.to(images)


def frost_crops(layers: Sequence[Tensor], count: int, side: int, generator: torch.Generator) -> Tensor:
    """`count` random side x side crops (count, 3, side, side), each from one of the first FROST_DRAWN layers.

    Drawn as the published code draws them: a layer uniformly, then the top row uniformly in
    [0, height - side) and the left column in [0, width - side) (numpy's randint excludes the end).
    """
    chosen = torch.randint(0, textures.FROST_DRAWN, (count,), generator=generator)
    heights = torch.tensor([layer.shape[-2] for layer in layers[: textures.FROST_DRAWN]])
    widths = torch.tensor([layer.shape[-1] for layer in layers[: textures.FROST_DRAWN]])
    tops = (torch.rand(count, generator=generator, dtype=torch.float64) * (heights[chosen] - side)).long()
    lefts = (torch.rand(count, generator=generator, dtype=torch.float64) * (widths[chosen] - side)).long()
    offsets = torch.arange(side)
    crops = torch.empty(count, 3, side, side)
    for index in range(textures.FROST_DRAWN):
        picked = (chosen == index).nonzero().flatten()
        rows = tops[picked].view(-1, 1, 1) + offsets.view(1, side, 1)
        cols = lefts[picked].view(-1, 1, 1) + offsets.view(1, 1, side)
        crops[picked] = layers[index][:, rows, cols].permute(1, 0, 2, 3).float()
    return crops


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
    """Shading (N, 1, H, W) in [0, 1] of the water layer: bright near drop edges, embossed.

    Each step is the OpenCV call of the published code with its 8-bit roundings: Canny edges,
    the 5x5 distance transform capped at 20, a 3x3 box blur truncated to 8 bits, histogram
    equalisation, an emboss kernel saturated to 8 bits, and a 3x3 box blur rounded to 8 bits.
    """
    levels = torch.floor(liquid.clamp(0, 1) * 255)
    distance = _distance_to_edges(_edges(levels)).clamp(max=20)
    distance = torch.floor(_box_blur(distance))
    distance = _equalise(distance)
    emboss = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    distance = torch.round(filters.filter2d(distance, emboss)).clamp(0, 255)
    distance = torch.round(_box_blur(distance))
    shade = levels * distance
    return shade / shade.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)


def _box_blur(images: Tensor) -> Tensor:
    """OpenCV's 3x3 `blur`: the mean of each mirrored 3x3 window, summed in double precision as OpenCV does
    (in float32 a window of nine 1s can come out a hair under 1 and truncate to 0)."""
    return filters.filter2d(images.double(), torch.full((3, 3), 1 / 9, dtype=torch.float64)).to(images.dtype)


# Canny's sector test in OpenCV's fixed point: round(tan(22.5 degrees) * 2**15).
_TAN_22_5 = 13573
_CANNY_SHIFT = 15


def _edges(levels: Tensor) -> Tensor:
    """OpenCV's Canny (thresholds 50, 150; 3x3 Sobel, L1 magnitude) of 8-bit levels (N, 1, H, W): a bool mask.

    Sobel with replicated borders; a pixel is kept where its magnitude exceeds the low threshold and
    is a maximum along the gradient's sector (horizontal, vertical or one of the diagonals, decided
    in OpenCV's fixed point, with its strict and non-strict comparisons; zero magnitude beyond the
    border); kept pixels joined (8-connected) to one above the high threshold are the edges.
    """
    h, w = levels.shape[-2:]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    gx = filters.filter2d(levels, sobel, "nearest").long()
    gy = filters.filter2d(levels, sobel.T, "nearest").long()
    magnitude = gx.abs() + gy.abs()
    padded = torch.nn.functional.pad(magnitude, (1, 1, 1, 1))

    def beside(rows: int, cols: int) -> Tensor:
        return padded[..., 1 + rows : 1 + rows + h, 1 + cols : 1 + cols + w]

    across = (magnitude > beside(0, -1)) & (magnitude >= beside(0, 1))
    along = (magnitude > beside(-1, 0)) & (magnitude >= beside(1, 0))
    falling = (magnitude > beside(-1, -1)) & (magnitude > beside(1, 1))
    rising = (magnitude > beside(-1, 1)) & (magnitude > beside(1, -1))
    diagonal = torch.where((gx < 0) ^ (gy < 0), rising, falling)
    tan_low = gx.abs() * _TAN_22_5
    tan_high = tan_low + (gx.abs() << (_CANNY_SHIFT + 1))
    steepness = gy.abs() << _CANNY_SHIFT
    peak = torch.where(steepness < tan_low, across, torch.where(steepness > tan_high, along, diagonal))
    kept = peak & (magnitude > 50)
    edges = kept & (magnitude > 150)
    while True:  # hysteresis: grow the strong edges through kept pixels until nothing changes
        grown = edges | (kept & (torch.nn.functional.max_pool2d(edges.float(), 3, stride=1, padding=1) > 0))
        if torch.equal(grown, edges):
            return edges
        edges = grown


# OpenCV's 5x5 mask for DIST_L2: steps of 1 (straight), 1.4 (diagonal) and 2.1969 (knight's move), summed in float32.
_CHAMFER_STEPS = ((1, 0, 1.0), (1, 1, 1.4), (2, 1, 2.1969))


def _distance_to_edges(edges: Tensor) -> Tensor:
    """OpenCV's distanceTransform(DIST_L2, 5) to the edge pixels (N, 1, H, W), float; 20 where there is no edge.

    The mask distance is the shortest path in straight, diagonal and knight's moves, each step's
    cost added in float32 from the edge outwards as OpenCV's two scans add them; relaxing every
    pixel by its 16 mask neighbours until nothing changes finds it.
    """
    h, w = edges.shape[-2:]
    far = float("inf")
    distance = torch.where(edges, 0.0, far).float()
    moves = {(sign_row * rows, sign_col * cols, cost) for rows, cols, cost in _CHAMFER_STEPS
             for rows, cols in ((rows, cols), (cols, rows)) for sign_row in (1, -1) for sign_col in (1, -1)}
    while True:
        padded = torch.nn.functional.pad(distance, (2, 2, 2, 2), value=far)
        relaxed = distance
        for rows, cols, cost in moves:
            relaxed = torch.minimum(relaxed, padded[..., 2 + rows : 2 + rows + h, 2 + cols : 2 + cols + w] + cost)
        if torch.equal(relaxed, distance):
            break
        distance = relaxed
    return torch.where(distance.isinf(), torch.full_like(distance, 20.0), distance)


def _equalise(levels: Tensor) -> Tensor:
    """OpenCV's equalizeHist per image on integer levels 0-255 (N, 1, H, W)."""
    n = levels.shape[0]
    flat = levels.reshape(n, -1).long()
    histogram = torch.zeros(n, 256, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    first = (histogram > 0).float().argmax(dim=1, keepdim=True)
    lowest = histogram.gather(1, first)
    total = flat.shape[1]
    cumulative = histogram.cumsum(dim=1)
    # float32 as OpenCV; a tensor divided by a tensor (a number over a tensor is a reciprocal times the
    # number in torch, a last-bit difference that flips an exact .5 such as 747 * 255 / 918).
    scale = torch.full_like(lowest, 255).float() / (total - lowest).clamp(min=1).float()
    table = torch.round((cumulative - lowest).float() * scale).clamp(0, 255)
    table = torch.where(torch.arange(256).view(1, -1) <= first, torch.zeros_like(table), table)
    # A flat image maps to its own level.
    table = torch.where(lowest == total, first.float().expand_as(table), table)
    return table.gather(1, flat).reshape(levels.shape).to(levels.dtype)
