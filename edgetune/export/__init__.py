"""Export: ONNX conversion and validation, quantisers, and the Target registry."""
