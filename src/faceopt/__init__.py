"""faceopt: a literate reproduction of Svitov (2023), fast CNNs for face recognition.

The chapters of the book (``chapters/*.py``) are thin notebooks over this library.
"""
__version__ = "0.1.0"
