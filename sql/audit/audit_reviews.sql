-- Security reviews of the audit trail: who did how much, to what kind of
-- entity, and the failed or refused activity over a time range.

-- name: count_audit_events_by_actor(since, until)
-- not-null: events, first_at, last_at
-- Return, per actor, how many events it caused in [since, until) (null:
-- unbounded), with the first and last time; most events first. The bounds
-- are one range on occurred_at, as in count_audit_events_by_day, so the
-- months outside it are skipped even by the generic plan.
-- seqscan-ok: a report counts every event of its range (a review, not per request)
SELECT
    a.actor,
    count(*) AS events,
    min(a.occurred_at) AS first_at,
    max(a.occurred_at) AS last_at
FROM app.audit_log AS a
WHERE
    a.occurred_at >= coalesce(:since::timestamptz, '-infinity')
    AND a.occurred_at < coalesce(:until::timestamptz, 'infinity')
GROUP BY a.actor
ORDER BY events DESC, a.actor ASC;

-- name: count_audit_events_by_entity_type(since, until)
-- not-null: events, actors, first_at, last_at
-- Return, per entity type, how many events touched it in [since, until)
-- (null: unbounded) and by how many distinct actors, with the first and
-- last time; most events first.
-- seqscan-ok: a report counts every event of its range (a review, not per request)
SELECT
    a.entity_type,
    count(*) AS events,
    count(DISTINCT a.actor) AS actors,
    min(a.occurred_at) AS first_at,
    max(a.occurred_at) AS last_at
FROM app.audit_log AS a
WHERE
    a.occurred_at >= coalesce(:since::timestamptz, '-infinity')
    AND a.occurred_at < coalesce(:until::timestamptz, 'infinity')
GROUP BY a.entity_type
ORDER BY events DESC, a.entity_type ASC;

-- name: list_security_events(since, until, after_at, after_id, page_size)
-- Return up to page_size failed or refused events (user.login_failed,
-- user.lock, api_key.refuse) in [since, until) (null: unbounded), newest
-- first, after the keyset position (after_at, after_id). The action list
-- is word for word the predicate of the partial index
-- index_audit_log_on_occurred_at_and_id_security, which serves the range
-- and the order in every month.
SELECT
    a.id,
    a.occurred_at,
    a.actor,
    a.action,
    a.entity_type,
    a.entity_id,
    a.before::text AS before,
    a.after::text AS after,
    a.request_id,
    a.prev_hash,
    a.row_hash,
    abbrev(a.ip) AS ip
FROM app.audit_log AS a
WHERE
    a.action IN ('user.login_failed', 'user.lock', 'api_key.refuse')
    AND a.occurred_at >= coalesce(:since::timestamptz, '-infinity')
    AND a.occurred_at < coalesce(:until::timestamptz, 'infinity')
    AND (
        :after_at::timestamptz IS NULL
        OR (a.occurred_at, a.id) < (:after_at::timestamptz, :after_id::bigint)
    )
ORDER BY a.occurred_at DESC, a.id DESC
LIMIT :page_size;
