"""Models that use flows: they depend on the transforms and factories, never the other way round.

* :class:`~pyro_flows.models.VAE`: a VAE whose posterior is refined by flows (diagonal, planar, IAF).
* :mod:`pyro_flows.models.distill`: probability density distillation (Parallel WaveNet), with the collapse
  monitor (:mod:`pyro_flows.models.monitor`) and the power loss (:mod:`pyro_flows.models.power`).
"""

from .distill import ESTIMATORS, DistillationLoss, distillation_loss, distillation_model_guide
from .monitor import DistillationMonitor, StudentCollapseWarning
from .power import power_loss
from .steps import StepConditionals, student_conditionals, teacher_conditionals
from .vae import VAE, fit_vae, log_likelihood, negative_elbo

__all__ = [
    "VAE",
    "fit_vae",
    "log_likelihood",
    "negative_elbo",
    "ESTIMATORS",
    "DistillationLoss",
    "StepConditionals",
    "distillation_loss",
    "distillation_model_guide",
    "student_conditionals",
    "teacher_conditionals",
    "DistillationMonitor",
    "StudentCollapseWarning",
    "power_loss",
]
