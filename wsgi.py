"""What gunicorn serves: ``gunicorn -c deploy/gunicorn.conf.py wsgi:app``."""
from backend.app import create_app

app = create_app()
