"""``manage.py enqueue_samples``: enqueue one of each sample task."""

import uuid

from django.core.management.base import BaseCommand

from testproject.demo import tasks


class Command(BaseCommand):
    help = "Enqueue the demo's sample tasks."

    def handle(self, *args, **options):
        key = uuid.uuid4().hex[:8]
        results = [
            tasks.add.delay(2, 3),
            tasks.slow_count.enqueue(steps=5, step_seconds=0.2),
            tasks.flaky.delay(key),
            tasks.send_welcome_mail.delay("someone@example.com"),
            tasks.plain_django_task.enqueue("django.tasks"),
            tasks.add.apply_async(args=(40, 2), countdown=2),
        ]
        for result in results:
            self.stdout.write(f"enqueued {result.task.module_path} [{result.id}]")
