"""Classifiers trained in-repo: real-vs-fake, N-way, the one-shot critic, SimCLR, ClickMe feedback.

Modules: `backbones` (the networks), `training` (one supervised loop shared by all),
`realfake`, `nway`, `protonet`, `simclr`, `feedback`, `store` (checkpoints), `cli`.
"""
