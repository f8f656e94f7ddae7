"""`python -m agents.command`: the `tributary` command without the installed script."""

import sys

from agents.command import main

sys.exit(main())
