"""Kefu inside a Rasa assistant: ``kefu actions`` serves Kefu's knowledge base and handoff as rasa-sdk actions.

Everything here imports rasa-sdk, so nothing in Kefu's core imports this package; the CLI
imports it only for ``kefu actions`` (install with ``pip install 'kefu[rasa]'``).
"""
