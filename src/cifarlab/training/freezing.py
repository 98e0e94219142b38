"""Fine-tuning controls: which parameters are the head, and a frozen backbone that thaws at an epoch.

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

from torch import nn

from cifarlab.config.recipe import ModelConfig
from cifarlab.errors import CifarlabError
from cifarlab.training.callbacks import Callback, StepOutput, Trainer


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

    def on_step(self, trainer: Trainer, step: StepOutput) -> None:
        self._freeze_if_due(trainer, trainer.progress.step)


def freezing_callbacks(model: ModelConfig) -> list[Callback]:
    """The callbacks a recipe's `model.freeze` / `model.unfreeze_epoch` / `model.whiten_bias_epochs` ask for."""
    callbacks: list[Callback] = []
    if model.freeze == "backbone":
        callbacks.append(BackboneFreezing(model.unfreeze_epoch))
    if model.whiten_bias_epochs is not None:
        callbacks.append(WhitenBiasFreezing(model.whiten_bias_epochs))
    return callbacks
