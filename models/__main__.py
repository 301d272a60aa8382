"""`python -m models ...` (see models/cli.py)."""

import os
import sys

from models.cli import main

rc = main()
if "WORLD_SIZE" in os.environ:  # perhaps a torchrun rank (torch is loaded by then)
    from models.diffusion.ddp import exit_rank, launched_ranks

    if launched_ranks() > 1:  # its work is saved: skip gloo's abort-prone finalization
        exit_rank(rc)
sys.exit(rc)
