"""Moderation: user reports of media and users, cases staff work oldest first, decisions with notes.

One open case per target collects every report of it (one report per reporter);
quarantined uploads open a case themselves. Decisions (dismiss, remove, restore, warn,
ban) and notes are appended to the case's action log with who and when; removed media
stops being served at once (its URLs are no longer issued and its variants are deleted;
restore makes them again from the private original).
"""
