"""Shared test setup.

``make test`` runs two pytest workers on two cores: one torch thread per
worker avoids oversubscription, which slows small tensor ops by orders of
magnitude on a loaded machine.
"""
import torch

torch.set_num_threads(1)
