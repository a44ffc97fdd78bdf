"""The recognition system of thesis Chapter 4: its parts and their costs.

- ``cost``: parameters, MACs, latency and size on disk of the zoo's networks; ``claims`` records
  page 01's claims from them; ``diagram``: the pipeline figure and the latency scatter.
- ``align``: :func:`~faceopt.system.align.align_face`, the original image warped onto the ArcFace
  five-point template; ``landmarks``: five landmarks from each detector's keypoints.
- ``gallery``: :class:`~faceopt.system.gallery.Gallery`, the persistent 1:N search over enrolled
  embeddings.
- ``onnx_export``: ONNX export with parity checks (INT8 lives in :mod:`faceopt.compress.int8`).

The end-to-end pipeline and its chapter come with the rest of thesis Chapter 4 (page 05).
"""
