-- name: insert_audit_event(actor, action, entity_type, entity_id, before, after, ip, request_id)^
-- Append one event and return it, linked into the hash chain by the trigger;
-- check_audit_log_action_shape / check_audit_log_entity_type_shape /
-- check_audit_log_actor_length -> ValidationError.
INSERT INTO app.audit_log (
    actor,
    action,
    entity_type,
    entity_id,
    before,
    after,
    ip,
    request_id
)
VALUES (
    :actor,
    :action,
    :entity_type,
    :entity_id,
    :before::jsonb,
    :after::jsonb,
    :ip::inet,
    :request_id
)
RETURNING
    id,
    occurred_at,
    actor,
    action,
    entity_type,
    entity_id,
    before::text AS before,
    after::text AS after,
    request_id,
    prev_hash,
    row_hash,
    abbrev(ip) AS ip;

-- name: list_audit_events(actor, entity_type, entity_id, action, since, until, after_id, page_size)
-- Return up to page_size events matching every given filter (None: any),
-- newest first (by id, which is chain order), with ids below after_id.
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
    (:actor::text IS NULL OR a.actor = :actor::text)
    AND (:entity_type::text IS NULL OR a.entity_type = :entity_type::text)
    AND (:entity_id::text IS NULL OR a.entity_id = :entity_id::text)
    AND (:action::text IS NULL OR a.action = :action::text)
    AND (:since::timestamptz IS NULL OR a.occurred_at >= :since::timestamptz)
    AND (:until::timestamptz IS NULL OR a.occurred_at < :until::timestamptz)
    AND (:after_id::bigint IS NULL OR a.id < :after_id::bigint)
ORDER BY a.id DESC
LIMIT :page_size;

-- name: list_audit_events_by_entity(entity_type, entity_id, page_size)
-- Return the first page_size events of one entity in chain order (oldest
-- first): its history.
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
    a.entity_type = :entity_type
    AND a.entity_id = :entity_id
ORDER BY a.id
LIMIT :page_size;

-- name: list_audit_events_by_actor(actor, since, until, after_at, after_id, page_size)
-- Return up to page_size events of one actor in [since, until), newest
-- first, after the keyset position (after_at, after_id).
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
    a.actor = :actor
    AND (:since::timestamptz IS NULL OR a.occurred_at >= :since::timestamptz)
    AND (:until::timestamptz IS NULL OR a.occurred_at < :until::timestamptz)
    AND (
        :after_at::timestamptz IS NULL
        OR (a.occurred_at, a.id) < (:after_at::timestamptz, :after_id::bigint)
    )
ORDER BY a.occurred_at DESC, a.id DESC
LIMIT :page_size;

-- name: count_audit_events_by_day(since, until)
-- Return how many events of each action happened on each UTC day in
-- [since, until) (None: unbounded), by day then action.
-- The bounds are written as one range on occurred_at (coalesce to
-- -infinity/infinity; the service never writes an infinite occurred_at), so
-- even the generic plan skips the months outside it and can use
-- index_audit_log_on_occurred_at; `(:since IS NULL OR ...)` could do neither.
-- Over a month (30 days: 334k of 1M rows at `--analyze --scale 1`) the
-- planner still reads that month's partition whole, which is right for a
-- count of every event in it.
-- seqscan-ok: a report counts every event of its range (monthly, not per request)
-- not-null: occurred_on, events
SELECT
    a.action,
    (a.occurred_at AT TIME ZONE 'UTC')::date AS occurred_on,
    count(*) AS events
FROM app.audit_log AS a
WHERE
    a.occurred_at >= coalesce(:since::timestamptz, '-infinity')
    AND a.occurred_at < coalesce(:until::timestamptz, 'infinity')
GROUP BY (a.occurred_at AT TIME ZONE 'UTC')::date, a.action
ORDER BY occurred_on, a.action;

-- name: list_audit_events_for_export(since, until)
-- Return every event in [since, until) (None: unbounded) in chain order;
-- read it through a server-side cursor, never all at once. Bounds as in
-- count_audit_events_by_day.
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
    a.occurred_at >= coalesce(:since::timestamptz, '-infinity')
    AND a.occurred_at < coalesce(:until::timestamptz, 'infinity')
ORDER BY a.id;

-- name: verify_audit_chain(since, until, from_id)^
-- Re-compute the hash chain over the ids from the first event at or after
-- since (or from_id, whose prev_hash is then trusted) to the last event
-- before until, and return one report row: the first row whose row_hash
-- does not match its content, whose prev_hash does not match the row_hash
-- of the row before it, or, with no until, a tail that differs from the
-- chain head (rows appended with the trigger bypassed, or newest rows gone).
-- not-null: ok, rows_checked, genesis
WITH bounds AS (
    SELECT
        greatest(
            :from_id::bigint,
            (
                SELECT min(a.id)
                FROM app.audit_log AS a
                WHERE :since::timestamptz IS NULL OR a.occurred_at >= :since::timestamptz
            )
        ) AS first_id,
        (
            SELECT max(a.id)
            FROM app.audit_log AS a
            WHERE :until::timestamptz IS NULL OR a.occurred_at < :until::timestamptz
        ) AS last_id,
        :until::timestamptz IS NULL AS to_head
),

predecessor AS (
    -- The row the first checked row must link to; none at the start of
    -- the chain, after retention, or when from_id says to trust it.
    SELECT
        p.id,
        p.row_hash
    FROM bounds AS b
    INNER JOIN LATERAL (
        SELECT
            a.id,
            a.row_hash
        FROM app.audit_log AS a
        WHERE
            a.id < b.first_id
            AND :from_id::bigint IS NULL
        ORDER BY a.id DESC
        LIMIT 1
    ) AS p ON TRUE
),

chain AS (
    SELECT
        a.id,
        a.prev_hash,
        a.row_hash = app.audit_log_row_hash(a) AS hash_ok,
        lag(a.row_hash) OVER (ORDER BY a.id) AS previous_hash,
        row_number() OVER (ORDER BY a.id) AS link_position
    FROM app.audit_log AS a
    CROSS JOIN bounds AS b
    WHERE a.id BETWEEN b.first_id AND b.last_id
),

links AS (
    SELECT
        c.id,
        c.hash_ok,
        c.prev_hash,
        c.link_position,
        CASE
            WHEN c.link_position > 1 THEN c.previous_hash
            WHEN EXISTS (SELECT FROM predecessor) THEN (SELECT p.row_hash FROM predecessor AS p)
            ELSE c.prev_hash
        END AS expected_prev
    FROM chain AS c
),

head AS (
    SELECT
        h.last_id,
        h.last_hash
    FROM app.audit_log_chain_head() AS h
),

breaks AS (
    SELECT
        l.id,
        CASE
            WHEN NOT l.hash_ok THEN 'row altered: row_hash does not match its content'
            ELSE
                'link broken: prev_hash does not match the row before it '
                || '(a row was deleted, or inserted, before this one)'
        END AS reason
    FROM links AS l
    WHERE
        NOT l.hash_ok
        OR l.prev_hash IS DISTINCT FROM l.expected_prev
    UNION ALL
    SELECT
        CASE
            WHEN b.last_id > h.last_id
                THEN (
                    SELECT min(a.id) AS id
                    FROM app.audit_log AS a
                    WHERE a.id > h.last_id
                )
            ELSE h.last_id
        END AS id,
        CASE
            WHEN b.last_id > h.last_id
                THEN 'row after the chain head: written with the chain trigger bypassed'
            WHEN b.last_id IS NULL OR b.last_id < h.last_id
                THEN 'the newest rows are missing: the chain head is this id'
            ELSE 'the newest row does not match the chain head'
        END AS reason
    FROM bounds AS b
    CROSS JOIN head AS h
    WHERE
        b.to_head
        AND (
            b.last_id IS DISTINCT FROM h.last_id
            OR (
                SELECT a.row_hash
                FROM app.audit_log AS a
                WHERE a.id = b.last_id
            ) IS DISTINCT FROM h.last_hash
        )
),

first_break AS (
    SELECT
        br.id,
        br.reason
    FROM breaks AS br
    ORDER BY br.id NULLS LAST
    LIMIT 1
)

SELECT
    b.first_id,
    b.last_id,
    fb.id AS broken_id,
    fb.reason,
    fb.id IS NULL AND fb.reason IS NULL AS ok,
    (SELECT count(*) AS n FROM chain) AS rows_checked,
    coalesce(
        (
            SELECT l.prev_hash IS NULL AS genesis
            FROM links AS l
            WHERE l.link_position = 1
        ),
        TRUE
    ) AS genesis
FROM bounds AS b
LEFT JOIN first_break AS fb ON TRUE;

-- name: get_audit_chain_head()^
-- Return the chain head (last_id, last_hash; both null before the first
-- event): keep it outside the database as an anchor for verify_chain.
SELECT
    h.last_id,
    h.last_hash
FROM app.audit_log_chain_head() AS h;

-- name: get_audit_row_hash(id)$
-- Return the stored row_hash of event id, or nothing.
SELECT a.row_hash
FROM app.audit_log AS a
WHERE a.id = :id;

-- name: drop_audit_log_partitions(keep_months)
-- Owner only: drop the monthly partitions older than the last keep_months
-- months and return their names; the service role gets
-- PermissionDeniedError.
-- not-null: partition_name
SELECT dropped.partition_name
FROM app.drop_audit_log_partitions(:keep_months) AS dropped (partition_name);
