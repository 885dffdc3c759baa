"""``python -m backend.streams``: the stream server (the image's ``stream`` role)."""
from backend.streams.server import main

main()
