"""Freezing controls: which parameters are the head, a frozen backbone that thaws at an epoch, and
first layers that freeze late in a run (`model.late_freeze`).

A model names its classifier with `get_classifier()` (timm's API, which every `timm/<name>` model
has); its parameters are the head, all others the backbone. `model.freeze: backbone` trains the
head alone until `model.unfreeze_epoch` epochs are done, then everything (DL4DS tried head-only
training and found fine-tuning the whole network better at 32x32; a short frozen start keeps the
new head's first large gradients out of the pretrained weights). The optimiser holds the frozen
parameters from the start, so thawing needs no rebuild, and frozen parameters get no gradient,
so neither Adam's moments nor weight decay touch them. BatchNorm statistics keep adapting to the
new images while frozen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from cifarlab.config.recipe import ModelConfig
from cifarlab.errors import CifarlabError
from cifarlab.training.callbacks import Callback

if TYPE_CHECKING:
    from cifarlab.training.loop import Trainer


def head_parameters(model: nn.Module, purpose: str) -> set[int]:
    """ids of the classifier head's parameters; `purpose` (the recipe key) names what needed them in an error."""
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        raise CifarlabError(f"{purpose} needs a model that names its classifier head (model.get_classifier(), as "
                            "every timm/<name> model has); use a timm/ model or remove the setting.")
    return {id(p) for p in get_classifier().parameters()}


def backbone_parameters(model: nn.Module, purpose: str = "model.freeze") -> list[nn.Parameter]:
    """Every parameter outside the classifier head."""
    head = head_parameters(model, purpose)
    return [parameter for parameter in model.parameters() if id(parameter) not in head]


class BackboneFreezing(Callback):
    """Freeze the backbone at the start; thaw it once `unfreeze_epoch` epochs are done (None: never).

    Only parameters that were trainable are frozen and later thawed, so a layer frozen for its own
    reasons (airbench's whitening conv) stays frozen. One process only: DistributedDataParallel
    expects the same parameters to receive gradients at every step.
    """

    def __init__(self, unfreeze_epoch: int | None):
        self.unfreeze_epoch = unfreeze_epoch
        self.frozen: list[nn.Parameter] = []

    def _thawed_after(self, epochs_done: float) -> bool:
        return self.unfreeze_epoch is not None and epochs_done >= self.unfreeze_epoch

    def on_start(self, trainer: Trainer, total_steps: int, start_step: int) -> None:
        if trainer.place.world_size > 1:
            raise CifarlabError("model.freeze=backbone trains in one process only; run it without torchrun, "
                                "or use optim.backbone_lr_scale for a slower backbone instead")
        # A resumed run starts in whichever state its epoch calls for.
        if self._thawed_after(start_step // trainer.steps_per_epoch):
            return
        self.frozen = [p for p in backbone_parameters(trainer.model) if p.requires_grad]
        for parameter in self.frozen:
            parameter.requires_grad_(False)

    def on_epoch(self, trainer: Trainer, record: dict) -> None:
        if self.frozen and self._thawed_after(record["epoch"]):
            for parameter in self.frozen:
                parameter.requires_grad_(True)
            self.frozen = []


class WhitenBiasFreezing(Callback):
    """Freeze the airbench whitening layer's bias after `epochs` epochs, as airbench does after 3.

    The bias helps early, while the network adapts to the whitened input; frozen, the layer needs no
    gradient at all, so backpropagation stops at the first 3x3 conv (no input gradient there, no
    GELU backward at 31x31): about 6% of a fast94 step on the CPU.
    """

    def __init__(self, epochs: float):
        self.epochs = epochs

    def _bias(self, trainer: Trainer):
        whiten = getattr(trainer.model, "whiten", None)
        if whiten is None or whiten.bias is None:
            raise CifarlabError(f"model.whiten_bias_epochs needs an airbench model (one with a `whiten` conv), "
                                f"not {trainer.recipe.model.name}; remove the setting")
        return whiten.bias

    def _freeze_if_due(self, trainer: Trainer, steps_done: int) -> None:
        bias = self._bias(trainer)
        if bias.requires_grad and steps_done >= self.epochs * trainer.steps_per_epoch:
            bias.requires_grad_(False)
            bias.grad = None  # a zero gradient would still let momentum and weight decay move it

    def on_start(self, trainer: Trainer, total_steps: int, start_step: int) -> None:
        if trainer.place.world_size > 1:
            raise CifarlabError("model.whiten_bias_epochs trains in one process only; run it without torchrun")
        self._freeze_if_due(trainer, start_step)  # a resumed run starts in the state its step calls for

    def on_step(self, trainer: Trainer, step) -> None:
        self._freeze_if_due(trainer, trainer.progress.step)


def parameters_under(model: nn.Module, prefixes: list[str], purpose: str = "model.late_freeze") -> list[nn.Parameter]:
    """The parameters whose names are a prefix or lie below one (`groups.0` takes `groups.0.conv1.weight`, not
    `groups.01...`); a prefix that names no parameter is a CifarlabError listing the model's top-level modules."""
    named = list(model.named_parameters())
    chosen: list[nn.Parameter] = []
    for prefix in prefixes:
        matches = [p for name, p in named if name == prefix or name.startswith(prefix + ".")]
        if not matches:
            tops = sorted({name.split(".")[0] for name, _ in named})
            raise CifarlabError(f"{purpose}: {prefix!r} names no parameter of {type(model).__name__}; its top-level "
                                f"modules are {', '.join(tops)} (`cifarlab summary MODEL` lists every layer)")
        chosen += [p for p in matches if all(p is not q for q in chosen)]
    return chosen


class LateFreezing(Callback):
    """Freeze the parameters under `prefixes` once `epochs` epochs are done (FreezeOut, Brock et al. 2017).

    Late in a short run the first layers change little, while their gradients cost the most: freezing
    airbench94's first conv group (`groups.0`) also spares the input gradient of the second group's
    first conv, 22% of a 32x32 training step on the CPU. Parameters frozen before (airbench's whitening
    conv) are left alone; the frozen ones get no gradient, so momentum and weight decay stop moving
    them too. BatchNorm statistics keep adapting. One process only.
    """

    def __init__(self, prefixes: list[str], epochs: float):
        self.prefixes = list(prefixes)
        self.epochs = epochs
        self.done = False

    def _freeze_if_due(self, trainer: Trainer, steps_done: int) -> None:
        if self.done or steps_done < self.epochs * trainer.steps_per_epoch:
            return
        for parameter in parameters_under(trainer.model, self.prefixes):
            parameter.requires_grad_(False)
            parameter.grad = None  # a zero gradient would still let momentum and weight decay move it
        self.done = True

    def on_start(self, trainer: Trainer, total_steps: int, start_step: int) -> None:
        if trainer.place.world_size > 1:
            raise CifarlabError("model.late_freeze trains in one process only; run it without torchrun")
        parameters_under(trainer.model, self.prefixes)  # a misspelt prefix fails now, not epochs later
        self._freeze_if_due(trainer, start_step)  # a resumed run starts in the state its step calls for

    def on_step(self, trainer: Trainer, step) -> None:
        self._freeze_if_due(trainer, trainer.progress.step)


def freezing_callbacks(model: ModelConfig) -> list[Callback]:
    """The callbacks a recipe's `model.freeze` / `model.unfreeze_epoch` / `model.whiten_bias_epochs` /
    `model.late_freeze` ask for."""
    callbacks: list[Callback] = []
    if model.freeze == "backbone":
        callbacks.append(BackboneFreezing(model.unfreeze_epoch))
    if model.whiten_bias_epochs is not None:
        callbacks.append(WhitenBiasFreezing(model.whiten_bias_epochs))
    if model.late_freeze:
        callbacks.append(LateFreezing(model.late_freeze, model.late_freeze_epoch))
    return callbacks
