"""Hypothesis profiles for every test session.

`ci` (chosen when CI=true, as .ci/run sets it) derandomizes, so a CI run tries the same examples
every time and a red build reproduces, and keeps no example database on the runner. `dev` explores
new examples on each run and remembers failing ones. Both print the reproduction blob of a
failure, and neither has a deadline: the machines are shared, and a timing check would be flaky.
Each property sets its own `max_examples`, small enough to keep the suite quick.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)
