"""The smallest Django project that shows the ratekit middleware."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "demo.urls"
INSTALLED_APPS = []
MIDDLEWARE = [
    "ratekit_middleware.RatekitMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {}
USE_TZ = True
