-- name: get_signing_key(purpose)$
-- Return the HMAC key stored for purpose ('cursor'), or nothing if none is;
-- app.signing_keys missing (migration 0306 not applied) -> DatabaseError 42P01.
SELECT k.secret
FROM app.signing_keys AS k
WHERE k.purpose = :purpose;
