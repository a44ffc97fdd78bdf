"""Data: synthetic generators and loaders of real formats."""
