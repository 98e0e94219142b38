"""cifarlab.evaluate"""
