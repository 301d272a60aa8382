"""In-repo diffusion models: data sets, UNet, schedules, samplers, training, checkpoints, stimuli.

Sub-packages: `models.data` (data sets and one-shot splits), `models.diffusion` (schedule,
network, guidance, samplers, training loop), `models.classifiers` and `models.attribution`.
"""
