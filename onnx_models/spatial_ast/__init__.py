"""Spatial-AST listener: model (torch, training only), data generator, training and export scripts.

Run time needs none of this package but :mod:`onnx_models.spatial_ast.labels` (NumPy only) and the
shipped ``onnx_models/spatial_ast.onnx``.
"""
