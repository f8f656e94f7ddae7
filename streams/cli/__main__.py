"""`python -m streams.cli`: the `tributary` command without the installed script."""

import sys

from streams.cli import main

sys.exit(main())
