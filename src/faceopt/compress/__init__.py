"""Compression: pruning, quantisation, INT8 deployment (thesis Chapter 1, page 02)."""
