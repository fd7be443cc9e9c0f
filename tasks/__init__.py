"""The Celery tasks that run on Resolve hosts and on the post queue.

Imported only by workers (the app names these modules in `include`); the orchestrator
sends tasks by name.
"""
