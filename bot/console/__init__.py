"""The operator console: server-rendered pages under /admin/ (see `bot.console.site`)."""
