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
-- Re-compute the audit trail's hashes over the ids from the first event at
-- or after since (or from from_id) to the last event before until, and
-- return one report row naming the first problem found:
-- - rows written before sealing (ids up to the frozen linked head): a
--   row_hash that does not match the row, a prev_hash that does not match
--   the row before it (from_id: its prev_hash is trusted), or a newest
--   linked row that is not the linked head;
-- - later rows: a row_hash that does not match the row or the hash its seal
--   lists, a sealed id that is gone, or a row that is in no seal although
--   its transaction had committed when the newest seal was taken (or that
--   has no transaction id: written with the trigger bypassed);
-- - seals (those listing ids in the range): a seal_hash that does not match
--   what the seal lists, a prev_hash that does not match the seal before it,
--   and, with no until, a newest seal that is not the sealing head.
-- Rows committed after the newest seal are counted in unsealed.
-- not-null: ok, rows_checked, genesis, unsealed
WITH head AS (
    SELECT
        h.linked_id,
        h.linked_hash,
        h.last_seal_id,
        h.last_seal_hash
    FROM app.audit_log_seal_head() AS h
),

bounds AS (
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
    -- The linked row the first checked row must link to; none at the start
    -- of the chain, after retention, or when from_id says to trust it.
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
        a.xact,
        a.prev_hash,
        a.row_hash,
        a.row_hash = app.audit_log_row_hash(a) AS hash_ok,
        a.id <= coalesce(h.linked_id, 0) AS linked,
        -- Kept for linked rows only: sealed rows are checked against seals.
        CASE
            WHEN a.id <= h.linked_id THEN lag(a.row_hash) OVER (ORDER BY a.id)
        END AS previous_hash,
        row_number() OVER (ORDER BY a.id) AS link_position
    FROM app.audit_log AS a
    CROSS JOIN bounds AS b
    CROSS JOIN head AS h
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
    WHERE c.linked
),

newest_seal AS (
    SELECT
        s.seal_id,
        s.first_id,
        s.seal_hash,
        s.taken_under
    FROM app.audit_log_seal AS s
    ORDER BY s.seal_id DESC
    LIMIT 1
),

entries AS (
    SELECT
        s.seal_id,
        e.id,
        e.row_hash
    FROM app.audit_log_seal AS s
    CROSS JOIN bounds AS b
    CROSS JOIN LATERAL unnest(s.ids, s.row_hashes) AS e (id, row_hash)
    WHERE
        s.last_id >= b.first_id
        AND (b.to_head OR s.first_id <= b.last_id)
        AND e.id >= b.first_id
        AND (b.to_head OR e.id <= b.last_id)
),

sealing AS (
    SELECT
        e.seal_id,
        coalesce(c.id, e.id) AS id,
        coalesce(c.hash_ok, FALSE) AS hash_ok,
        c.id IS NULL AS missing,
        e.id IS NULL AS unlisted,
        coalesce(c.row_hash = e.row_hash, FALSE) AS listed_ok,
        c.xact IS NULL AS bypassed,
        CASE
            WHEN e.id IS NULL
                THEN
                    coalesce(
                        pg_visible_in_snapshot(
                            c.xact::text::xid8, (SELECT ns.taken_under FROM newest_seal AS ns)
                        ),
                        FALSE
                    )
            ELSE FALSE
        END AS due
    FROM (
        SELECT
            ch.id,
            ch.xact,
            ch.row_hash,
            ch.hash_ok
        FROM chain AS ch
        WHERE NOT ch.linked
    ) AS c
    FULL JOIN entries AS e ON c.id = e.id
),

seals AS (
    SELECT
        s.seal_id,
        s.first_id,
        s.prev_hash,
        s.seal_hash,
        CASE
            WHEN s.last_id >= b.first_id AND (b.to_head OR s.first_id <= b.last_id)
                THEN s.seal_hash = app.audit_log_seal_hash(s)
            ELSE TRUE
        END AS hash_ok,
        lag(s.seal_hash) OVER (ORDER BY s.seal_id) AS previous_hash,
        row_number() OVER (ORDER BY s.seal_id) AS seal_position
    FROM app.audit_log_seal AS s
    CROSS JOIN bounds AS b
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
        h.linked_id AS id,
        'the newest linked row does not match the linked head '
        || '(rows deleted or altered)' AS reason
    FROM bounds AS b
    CROSS JOIN head AS h
    WHERE
        h.linked_id >= b.first_id
        AND (b.to_head OR h.linked_id <= b.last_id)
        AND (
            SELECT a.row_hash
            FROM app.audit_log AS a
            WHERE a.id = h.linked_id
        ) IS DISTINCT FROM h.linked_hash
    UNION ALL
    SELECT
        sg.id,
        CASE
            WHEN sg.missing
                THEN 'row deleted: seal ' || sg.seal_id || ' lists it, the table does not hold it'
            WHEN NOT sg.hash_ok THEN 'row altered: row_hash does not match its content'
            WHEN NOT sg.unlisted
                THEN 'row altered: row_hash differs from the one seal ' || sg.seal_id || ' lists'
            WHEN sg.bypassed
                THEN 'row written with the chain trigger bypassed: no transaction id, in no seal'
            ELSE
                'row in no seal although its transaction had committed before the newest seal '
                || '(inserted behind the sealer)'
        END AS reason
    FROM sealing AS sg
    WHERE
        sg.missing
        OR NOT sg.hash_ok
        OR (NOT sg.unlisted AND NOT sg.listed_ok)
        OR (sg.unlisted AND (sg.bypassed OR sg.due))
    UNION ALL
    SELECT
        s.first_id AS id,
        CASE
            WHEN NOT s.hash_ok
                THEN 'seal ' || s.seal_id || ' altered: seal_hash does not match what it lists'
            ELSE
                'seal ' || s.seal_id || ' does not link to the seal before it '
                || '(a seal was deleted, or inserted, before it)'
        END AS reason
    FROM seals AS s
    CROSS JOIN head AS h
    WHERE
        NOT s.hash_ok
        OR s.prev_hash IS DISTINCT FROM (
            CASE WHEN s.seal_position > 1 THEN s.previous_hash ELSE h.linked_hash END
        )
    UNION ALL
    SELECT
        ns.first_id AS id,
        'seal ' || ns.seal_id || ' is the newest seal but not the sealing head '
        || '(seals added with the sealer bypassed, or the newest seals deleted)' AS reason
    FROM bounds AS b
    CROSS JOIN head AS h
    LEFT JOIN newest_seal AS ns ON TRUE
    WHERE
        b.to_head
        AND (
            ns.seal_id IS DISTINCT FROM h.last_seal_id
            OR ns.seal_hash IS DISTINCT FROM h.last_seal_hash
        )
),

first_break AS (
    SELECT
        br.id,
        br.reason
    FROM breaks AS br
    ORDER BY br.id NULLS LAST, br.reason
    LIMIT 1
)

SELECT
    b.first_id,
    b.last_id,
    fb.id AS broken_id,
    fb.reason,
    fb.reason IS NULL AS ok,
    (SELECT count(*) AS n FROM chain) AS rows_checked,
    coalesce(
        (
            SELECT
                CASE
                    WHEN c.linked THEN c.prev_hash IS NULL
                    ELSE
                        h.linked_id IS NULL
                        AND NOT EXISTS (
                            SELECT FROM app.audit_log_seal AS s
                            WHERE s.first_id < c.id
                        )
                END AS genesis
            FROM chain AS c
            CROSS JOIN head AS h
            WHERE c.link_position = 1
        ),
        TRUE
    ) AS genesis,
    (
        SELECT count(*) AS n
        FROM sealing AS sg
        WHERE sg.unlisted AND NOT sg.bypassed AND NOT sg.due
    ) AS unsealed
FROM bounds AS b
LEFT JOIN first_break AS fb ON TRUE;

-- name: get_audit_chain_head()^
-- Return the sealing head (last_id: the newest seal's number, last_hash: its
-- seal_hash; both null before the first seal): keep it outside the database
-- as an anchor for verify_chain.
SELECT
    h.last_seal_id AS last_id,
    h.last_seal_hash AS last_hash
FROM app.audit_log_seal_head() AS h;

-- name: audit_anchor_holds(id, hash)$
-- Return whether seal id still has seal_hash hash, or (for an anchor taken
-- before sealing, which named a row) linked row id still has row_hash hash.
-- not-null: holds
SELECT
    EXISTS (
        SELECT FROM app.audit_log_seal AS s
        WHERE s.seal_id = :id AND s.seal_hash = :hash
    )
    OR EXISTS (
        SELECT FROM app.audit_log AS a
        WHERE
            a.id = :id
            AND a.row_hash = :hash
            AND a.id <= (SELECT h.linked_id FROM app.audit_log_seal_head() AS h)
    ) AS holds;

-- name: seal_audit_log()^
-- Seal the audit rows committed since the last seal (app.seal_audit_log, in
-- its own transaction) and return the seal's number and row count (null
-- and 0 when there was nothing to seal). Raises active_sql_transaction when
-- run in a transaction that has already written.
-- not-null: rows_sealed
SELECT
    max(s.seal_id) AS seal_id,
    coalesce(max(s.rows_sealed), 0) AS rows_sealed
FROM app.seal_audit_log() AS s;

-- name: drop_audit_log_partitions(keep_months)
-- Owner only: drop the monthly partitions older than the last keep_months
-- months and return their names; the service role gets
-- PermissionDeniedError.
-- not-null: partition_name
SELECT dropped.partition_name
FROM app.drop_audit_log_partitions(:keep_months) AS dropped (partition_name);
