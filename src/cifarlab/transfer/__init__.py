"""cifarlab.transfer"""
