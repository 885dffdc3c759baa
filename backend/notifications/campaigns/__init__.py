"""Campaigns: marketers' pushes to an audience, scheduled per zone, with A/B variants and stats.

``services`` holds the use cases (draft, launch, pause, resume, cancel); ``audience``
turns segment filters into SQL and writes the campaign's ledger rows; ``schedule`` gives
each zone its due instant; ``messages`` renders each recipient's push; ``preview`` and
``stats`` are the dry run, test sends and delivery statistics. Delivery itself is the
engine's (``backend.notifications.delivery``): a campaign only decides which ledger rows exist.
"""
