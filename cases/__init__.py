"""The domain: calls, cases and their audit trail, recordings, transcripts, departments and
staff; intake, the lifecycle as one transition table, the case's clock, and domain queries.

It imports SQLAlchemy and nothing of Flask, Twilio or Celery.
"""
