import sys

from nngsec._cli import main

sys.exit(main())
