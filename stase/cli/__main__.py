"""``python -m stase.cli``: the ``stase`` command line."""
import sys

from stase.cli import main

sys.exit(main())
