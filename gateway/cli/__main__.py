"""`python -m gateway.cli` runs the same entry point as the `smsgw` script."""

from gateway.cli.main import main

raise SystemExit(main())
