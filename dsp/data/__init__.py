"""Data files shipped with the renderer (the MIT KEMAR SOFA file; see tools/make_kemar_sofa.py)."""
