from django.contrib import admin
from django.urls import path

from testproject.demo import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", views.index, name="index"),
    path("enqueue/", views.enqueue_samples, name="enqueue-samples"),
]
