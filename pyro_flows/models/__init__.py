"""Models that use flows: they depend on the transforms and factories, never the other way round."""

from .vae import VAE, fit_vae, log_likelihood, negative_elbo

__all__ = ["VAE", "fit_vae", "log_likelihood", "negative_elbo"]
