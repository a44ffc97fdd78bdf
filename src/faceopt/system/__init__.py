"""The embedded system: alignment, pipeline, gallery, ONNX export and INT8, cost benchmarks."""
