"""Emails: building them (pure, `messages`), storing them (`outbox`), sending them (`smtp`, async).

`fake.FakeSender` stands in for the SMTP relay in tests; `mailserver.LoopbackMailServer` is a real
SMTP server on loopback that keeps every message as a `.eml` file (development and tests).
Imports `models` and `mairie.settings`; `models` never imports this package.
"""
