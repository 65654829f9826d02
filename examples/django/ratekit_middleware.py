"""ratekit in a Django project: add "ratekit_middleware.RatekitMiddleware"
near the top of MIDDLEWARE (with ratekit_client.py importable).
"""

from django.http import JsonResponse

import ratekit_client


class RatekitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        decision = ratekit_client.check_request(
            request.method, request.get_full_path(), request.META.get("HTTP_HOST"),
            request.META.get("REMOTE_ADDR"), request.headers)
        if not decision.allowed:
            response = JsonResponse(decision.body, status=decision.status)
        else:
            try:
                response = self.get_response(request)
            except Exception:
                ratekit_client.release(decision.leases)
                raise
        for name, value in decision.headers.items():
            response[name] = value
        # The server closes the response once it is sent or the client has gone:
        # then the slots of concurrency rules the check took are given back.
        close = response.close

        def close_and_release():
            try:
                close()
            finally:
                ratekit_client.release(decision.leases)

        response.close = close_and_release
        return response
