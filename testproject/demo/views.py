"""Views of the demo: a page with a button that enqueues the sample tasks."""

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from djtasks.models import TaskRecord

from . import tasks


def index(request: HttpRequest) -> HttpResponse:
    recent = TaskRecord.objects.order_by("-enqueued_at")[:20]
    return render(request, "demo/index.html", {"recent": recent})


@require_POST
def enqueue_samples(request: HttpRequest) -> HttpResponse:
    """Enqueue one of each sample task, as a view in a real project would."""
    key = uuid.uuid4().hex[:8]
    tasks.add.delay(2, 3)
    tasks.slow_count.enqueue(steps=5, step_seconds=0.2)
    tasks.flaky.delay(key)
    tasks.send_welcome_mail.delay("someone@example.com")
    tasks.plain_django_task.enqueue("django.tasks")
    return redirect("index")
