"""The domain: entities, pure rules (eligibility, pricing, lifecycle), numbering and the unit of work.

Imports no Prefect, SMTP or PDF code (a test enforces it).
"""
