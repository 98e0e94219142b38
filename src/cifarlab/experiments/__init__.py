"""cifarlab.experiments"""
