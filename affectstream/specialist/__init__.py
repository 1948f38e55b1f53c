"""The ONNX facial-expression specialist (DESIGN §8): per-face class probabilities from aligned
crops, as a fallback emotion source (``source: specialist``) and as extra VLM context."""
