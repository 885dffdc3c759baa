"""Groundwork: a self-hosted backend for mobile apps."""
