"""`python -m experiments ...` (see experiments.cli)."""

import os
import sys

# OpenMP threads that spin while waiting make PyTorch many times slower on a CPU shared with
# other work (measured here: 25 vs 357 training images/s for the tiny DDPM with 2 cores
# oversubscribed); sleeping waits cost little when the machine is idle. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from experiments.cli import main  # noqa: E402

sys.exit(main())
