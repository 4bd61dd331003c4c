-- Give every audit row one sequence value, so ids run 1, 2, 3 with no gaps
-- from vdata itself. app.audit_log.id was an identity column, whose default
-- drew a value before the chain trigger drew the one it keeps (it draws while
-- holding the chain head, so that id order is chain order): two values per
-- row, ids 2, 4, 6. Now the column has no default; the trigger alone draws
-- from app.audit_log_id_seq, a plain sequence owned by the column that goes
-- on from where the identity stopped.
-- The service never inserts an id (the trigger always set it). A writer
-- that bypasses the trigger (owner tooling with triggers disabled) must now
-- draw the id itself: nextval('app.audit_log_id_seq').
-- squawk-ignore-file ban-alter-identity, renaming-object
-- depends: 0304.create-hot-path-indexes

CREATE SEQUENCE app.audit_log_id_chain_seq AS bigint;

-- In a DO block: a bare SELECT would print its row during the run.
DO $$
BEGIN
    PERFORM setval('app.audit_log_id_chain_seq', s.last_value, s.is_called)
    FROM app.audit_log_id_seq AS s;
END;
$$;

-- Drops the identity's own sequence, app.audit_log_id_seq, with it.
ALTER TABLE app.audit_log ALTER COLUMN id DROP IDENTITY;

ALTER SEQUENCE app.audit_log_id_chain_seq RENAME TO audit_log_id_seq;

ALTER SEQUENCE app.audit_log_id_seq OWNED BY app.audit_log.id;

COMMENT ON SEQUENCE app.audit_log_id_seq IS
'Ids of app.audit_log, drawn only by the chain trigger (app.audit_log_chain)
while it holds the chain head, so id order is chain order; one value per row.';
