"""WSGI entry point: `gunicorn emotionsite.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")

application = get_wsgi_application()
