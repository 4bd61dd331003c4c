"""Security primitives: argon2id passwords, API keys and tokens, signed cursors, input checks.

``passwords`` hashes in bounded, low-priority worker threads; ``tokens``
mints and hashes API keys and bearer tokens (never stored in plaintext);
``cursors`` signs keyset-pagination cursors; ``validation`` refuses what the
database cannot hold or what breaks a rule, before the server sees it.
"""
