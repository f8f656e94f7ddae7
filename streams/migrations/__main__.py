"""`python -m streams.migrations [revision]`: bring the database schema up to date."""

from streams.migrations.runner import main

raise SystemExit(main())
