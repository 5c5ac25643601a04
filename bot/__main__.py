"""`python -m bot` is `siyu`."""

from bot.cli import main

raise SystemExit(main())
