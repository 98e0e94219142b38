"""cifarlab.config"""
