"""The built-in demo world: procedural cartoon faces and the small models trained on them."""
