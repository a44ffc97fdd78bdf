"""Face anti-spoofing: presentation-attack-detection metrics (ISO/IEC 30107-3), data and models.

The submodules are imported on their own (``from faceopt.antispoof.metrics import pad_metrics``); this package
file imports nothing, so that importing one room does not pull in the others.
"""
