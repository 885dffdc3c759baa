"""Push notifications: devices, preferences, inbox, transactional sends, campaigns."""
