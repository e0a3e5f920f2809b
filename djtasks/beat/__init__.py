"""Beat: periodic tasks. Schedules and their maths, the leader lease, exactly-once ticks.

Modules, from the bottom up: ``cron`` and ``schedules`` (pure time maths),
``words`` (schedules in words), ``models`` (the schedule rows), ``lease`` (one
leader per database), ``declared`` (``OPTIONS["BEAT_SCHEDULE"]``), ``ticker``
(the loop that enqueues due ticks); the faces ``admin`` and ``checks``. Nothing is
imported here: ``djtasks.models`` imports ``beat.models`` while Django loads the app.
"""
