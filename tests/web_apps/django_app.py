"""A Django project in one module, with the routes every web-app test asks of each framework."""

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="not-a-secret-test-only",
    MIDDLEWARE=[],
    DEFAULT_CHARSET="utf-8",
)

import django  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

django.setup()


def hello(request):
    return JsonResponse({"hello": request.GET.get("name", "world"), "path": request.path})


def item(request, item):
    return JsonResponse({"item": item})


def text(request):
    return HttpResponse("plain text, with ü", content_type="text/plain")


def binary(request):
    return HttpResponse(b"\x89PNG\r\n\x00\xff", content_type="image/png")


def cookies(request):
    response = JsonResponse({"cookies": 2})
    response.set_cookie("first", "1")
    response.set_cookie("second", "2")
    return response


@csrf_exempt
def echo(request):
    response = HttpResponse(request.body, status=201, content_type=request.content_type)
    response["x-query"] = request.META.get("QUERY_STRING", "")
    response["x-cookie"] = request.META.get("HTTP_COOKIE", "")
    response["x-multi-in"] = request.META.get("HTTP_X_MULTI_IN", "")
    return response


def boom(request):
    raise RuntimeError("the app failed")


urlpatterns = [
    path("hello", hello),
    path("items/<str:item>", item),
    path("text", text),
    path("binary", binary),
    path("cookies", cookies),
    path("echo", echo),
    path("boom", boom),
]

app = get_wsgi_application()
