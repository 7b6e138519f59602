"""``python -m torch_otel.cli`` is the ``torch-otel`` command."""

import sys

from torch_otel.cli import main

sys.exit(main())
