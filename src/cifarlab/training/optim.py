"""Optimisers from the recipe: parameter groups, linear lr scaling, and the optimiser itself."""

from __future__ import annotations

import torch
from torch import nn

from cifarlab.config.recipe import OptimConfig
from cifarlab.errors import CifarlabError
from cifarlab.training.freezing import head_parameters
from cifarlab.training.muon import Muon, muon_groups
from cifarlab.training.slbi import SLBI


def peak_lr(cfg: OptimConfig, batch_size: int) -> float:
    """The recipe's lr, scaled linearly when it was given for another batch size (Goyal et al. 2017)."""
    lr = float(cfg.lr)
    if cfg.scale_lr_batch:
        lr *= batch_size / cfg.scale_lr_batch
    return lr


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Weights; normalisation-layer parameters; other biases. Each group carries `lr_scale`.

    Normalisation parameters and biases may skip weight decay (`no_decay_norm_bias`). With
    `backbone_lr_scale` != 1 every group is split into head and backbone (see `split_backbone`).
    Normalisation parameters take `bias_lr_scale` times the lr, with their weight decay divided
    by the same factor so that the decay per step (lr x wd) is unchanged, as airbench does.
    """
    weights, norms, biases = [], [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if isinstance(module, NORMS):
                norms.append(p)
            elif p.ndim <= 1 or name.endswith("bias"):
                biases.append(p)
            else:
                weights.append(p)
    decay_nb = 0.0 if cfg.no_decay_norm_bias else cfg.weight_decay
    scale = cfg.bias_lr_scale
    groups = [
        {"params": weights, "weight_decay": cfg.weight_decay, "lr_scale": 1.0},
        {"params": norms, "weight_decay": decay_nb / scale if scale > 0 else decay_nb, "lr_scale": scale},
        {"params": biases, "weight_decay": decay_nb, "lr_scale": 1.0},
    ]
    if cfg.backbone_lr_scale != 1.0:
        groups = split_backbone(groups, head_parameters(model, "optim.backbone_lr_scale"), cfg.backbone_lr_scale)
    return [g for g in groups if g["params"]]


def split_backbone(groups: list[dict], head: set[int], backbone_lr_scale: float) -> list[dict]:
    """Each group split in two: the head's parameters as they were, the backbone's at `backbone_lr_scale` x the lr.

    Discriminative fine-tuning (Howard & Ruder 2018): pretrained layers move slower than the new head.
    """
    split = []
    for group in groups:
        backbone = [p for p in group["params"] if id(p) not in head]
        split.append({**group, "params": [p for p in group["params"] if id(p) in head]})
        split.append({**group, "params": backbone, "lr_scale": group["lr_scale"] * backbone_lr_scale})
    return split


FUSED = ("sgd", "adam", "adamw")  # the optimisers torch has fused kernels for


def build_optimizer(model: nn.Module, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    groups = parameter_groups(model, cfg)
    betas = tuple(cfg.betas)
    name = cfg.name
    if cfg.fused and name not in FUSED:
        raise CifarlabError(f"optim.fused=true needs one of {', '.join(FUSED)} (torch has fused kernels for "
                            f"those only), not optim.name={name}; remove optim.fused")
    # fused=None, not False, leaves torch its own default choice of implementation.
    fused = True if cfg.fused else None
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               fused=fused)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=cfg.eps, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=cfg.eps, fused=fused)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, eps=cfg.eps)
    if name == "adadelta":
        return torch.optim.Adadelta(groups, lr=lr, eps=cfg.eps)
    if name == "muon":
        return Muon(muon_groups(groups, cfg.muon_lr_scale, cfg.muon_momentum), lr=lr, momentum=cfg.momentum,
                    nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    if name in ("slbi", "slbi_adam"):
        return SLBI(groups, lr=lr, kappa=cfg.slbi_kappa, mu=cfg.slbi_mu, threshold=cfg.slbi_lambda,
                    momentum=cfg.momentum, adaptive=name == "slbi_adam", betas=betas, eps=cfg.eps)
    if name in ("adopt", "adoptw"):
        try:
            from timm.optim import Adopt
        except ImportError as exc:
            raise CifarlabError("optim.name=adopt needs timm: pip install 'cifarlab[timm]'") from exc
        # ADOPTW is ADOPT with decoupled (AdamW-style) weight decay.
        return Adopt(groups, lr=lr, betas=betas, eps=cfg.eps, decoupled=name == "adoptw")
    raise CifarlabError(f"unknown optimiser {name!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
