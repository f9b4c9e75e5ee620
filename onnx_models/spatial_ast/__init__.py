"""Spatial-AST listener: model (torch, training only), data generator, training and export scripts.

Run time imports none of this package (training imports the runtime, never the reverse): the
label bins and their decoding live in :mod:`stase.agent.listener_labels`, and the shipped
``onnx_models/spatial_ast.onnx`` is read as a file.
"""
