"""Compression: pruning, quantisation, INT8 deployment (thesis chapter 1)."""
