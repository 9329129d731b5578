"""``python -m transformer ...``: see transformer/cli.py (``python -m transformer --help``)."""

import sys

from .cli import main

sys.exit(main())
