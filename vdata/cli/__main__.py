"""``python -m vdata.cli``: the same as the ``vdata`` command."""

import sys

from vdata.cli import main

sys.exit(main())
