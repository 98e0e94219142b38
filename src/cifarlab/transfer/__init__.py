"""Big Transfer fine-tuning: the BiT-HyperRule."""

from cifarlab.transfer.hyperrule import HyperRule, hyperrule

__all__ = ["HyperRule", "hyperrule"]
