"""Everything that leaves the service towards a person or a system: the outbox rows' delivery
(claim, send, record, retry, give up), signed webhooks, e-mail over SMTP, texts to departments'
duty officers and to callers through Twilio, and the jobs that send them.

Writing an outbox row is the domain's (`cases.outbox`: it shares the change's transaction);
sending it is this package's, after the commit.
"""
