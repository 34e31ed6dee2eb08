"""Models that use flows: they depend on the transforms and factories, never the other way round."""

from .vae import VAE, log_likelihood

__all__ = ["VAE", "log_likelihood"]
