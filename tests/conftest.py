"""Test-wide settings: one torch thread (tests run small ops; on a shared 2-core machine two threads spin-wait)."""

import torch

torch.set_num_threads(1)
