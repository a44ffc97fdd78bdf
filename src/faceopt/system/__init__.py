"""The deployed pipeline's costs: parameters, MACs, latency and size on disk (``cost``), the ONNX
export (``onnx_export``) and the pipeline diagram (``diagram``). INT8 lives in :mod:`faceopt.compress.int8`;
alignment, gallery and the end-to-end pipeline come with thesis Chapter 4 (page 05)."""
