"""``python -m nngsec``: the command line."""

import sys

from nngsec._cli import main

sys.exit(main())
