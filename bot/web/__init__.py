"""The web application: the app factory (`app.py`) and the JSON API (`api.py`)."""
