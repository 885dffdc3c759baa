"""Accounts: sign-up to deletion, tokens, sessions, roles."""
