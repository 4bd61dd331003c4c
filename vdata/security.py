"""Security primitives in one import: argon2id passwords, API keys, tokens, cursors."""

from __future__ import annotations

__all__ = [
    "API_KEY_PATTERN",
    "API_KEY_PREFIX",
    "CursorCodec",
    "CursorValue",
    "IssuedToken",
    "MintedKey",
    "ParsedApiKey",
    "PasswordHasher",
    "SecretStr",
    "api_key_matches",
    "check_password_policy",
    "constant_time_equal",
    "hash_secret",
    "hash_token",
    "mint_api_key",
    "mint_token",
    "parse_api_key",
]

# The code lives in three short modules: vdata.passwords (argon2id in bounded
# worker threads), vdata.tokens (API keys, bearer tokens, SecretStr) and
# vdata.cursors (signed pagination cursors).
from vdata.cursors import CursorCodec, CursorValue
from vdata.passwords import PasswordHasher, check_password_policy
from vdata.tokens import (
    API_KEY_PATTERN,
    API_KEY_PREFIX,
    IssuedToken,
    MintedKey,
    ParsedApiKey,
    SecretStr,
    api_key_matches,
    constant_time_equal,
    hash_secret,
    hash_token,
    mint_api_key,
    mint_token,
    parse_api_key,
)
