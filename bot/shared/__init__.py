"""What the web app, the console, the platforms and the commands all use: app keys, signed links, layer summaries."""
