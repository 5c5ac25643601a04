"""`python -m bot` is `siyu`."""

from bot.cli.main import main

raise SystemExit(main())
