"""Diffusion pieces kept apart as in diffusers/k-diffusion: schedule, network, guidance, samplers,
training loop. DDPM, CFGDM and FSDM are configurations of these pieces (see models/configs)."""
