"""Latent Atelier: text-driven editing of StyleGAN2 images."""

__version__ = "0.1.0"
