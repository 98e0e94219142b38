"""cifarlab.training"""
