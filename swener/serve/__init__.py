"""Serving trained models: short model names, tagging files, ONNX export and runtime, reduced precision,
benchmarks."""
