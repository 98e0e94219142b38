"""cifarlab.train"""
