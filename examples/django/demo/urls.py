from django.http import JsonResponse
from django.urls import path


def items(request):
    return JsonResponse({"items": ["a", "b"]})


urlpatterns = [path("api/items", items)]
