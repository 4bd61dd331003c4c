-- name: get_one()$
-- Return the integer 1: the cheapest round trip.
SELECT 1;

-- name: sleep(seconds)$
-- Sleep on the server for :seconds; return the text 'slept'.
SELECT 'slept' AS result
FROM pg_sleep(:seconds::float8);

-- name: insert_note(body)^
-- Insert a note; check_probe_notes_body_length -> ValidationError.
INSERT INTO probe.notes (body)
VALUES (:body)
RETURNING
    id,
    body;

-- name: list_notes()
-- Return every note, oldest first.
SELECT
    n.id,
    n.body
FROM probe.notes AS n
ORDER BY n.id;

-- name: count_notes()$
-- Return the number of notes.
SELECT count(*) AS notes
FROM probe.notes;

-- name: get_balance(account)$
-- Return the balance of :account, or nothing.
SELECT b.amount
FROM probe.balances AS b
WHERE b.account = :account;

-- name: sum_balances()$
-- Return the sum of all balances.
SELECT sum(b.amount) AS total
FROM probe.balances AS b;

-- name: withdraw(account, amount)!
-- Take :amount from :account (no constraint: the test makes write skew).
UPDATE probe.balances
SET amount = amount - :amount
WHERE account = :account;

-- name: slow_rows(rows, seconds)
-- Return :rows integers, sleeping :seconds on the server before each one.
SELECT g.n
FROM generate_series(1, :rows::int) AS g (n)
WHERE pg_sleep(:seconds::float8)::text = '';

-- name: backend_pid()$
-- Return the process id of this connection's backend.
SELECT pg_backend_pid() AS pid;

-- name: in_recovery()$
-- Return true on a standby, false on a primary: which server answered.
SELECT pg_is_in_recovery() AS in_recovery;
