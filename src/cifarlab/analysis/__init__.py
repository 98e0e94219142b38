"""cifarlab.analysis"""
