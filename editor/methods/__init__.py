"""Editing methods, one module each. Torch only; they stand on editor.core."""
