"""cifarlab.data"""
