"""Torch-only core: generator, checkpoints, CLIP, style codes, model zoo. No Qt here."""
