"""The TOML configuration: its model, one module per section, and the settings turned into what the other floors run on."""
