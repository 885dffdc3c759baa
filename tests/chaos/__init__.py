"""Chaos tests: real worker processes killed, Redis flushed, FCM failing; exactly-once counted at the fake."""
