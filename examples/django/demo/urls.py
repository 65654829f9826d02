import time

from django.http import JsonResponse
from django.urls import path


def items(request):
    return JsonResponse({"items": ["a", "b"]})


def export(request):  # slow work, the kind a concurrency rule keeps few of at once
    time.sleep(0.5)
    return JsonResponse({"export": "done"})


urlpatterns = [path("api/items", items), path("api/export", export)]
