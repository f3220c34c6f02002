"""``python -m genlab``: the CLI, also the form torchrun launches (``torchrun ... -m genlab run ...``)."""

import sys

from genlab.cli import main

sys.exit(main())
