-- name: get_invoice(id)^
-- Return one invoice by id, or nothing.
SELECT
    i.id,
    i.number,
    i.customer,
    i.total_cents,
    i.version,
    i.created_by,
    i.created_at,
    i.updated_by
FROM invoices AS i
WHERE i.id = :id;

-- name: get_invoice_version(id)$
-- Return the version of invoice id, or nothing (the optimistic-lock probe).
SELECT i.version
FROM invoices AS i
WHERE i.id = :id;

-- name: list_invoices_by_customer(customer, after_id, page_size)
-- Return up to page_size invoices of customer with ids above after_id, by id.
SELECT
    i.id,
    i.number,
    i.customer,
    i.total_cents,
    i.version,
    i.created_by,
    i.created_at,
    i.updated_by
FROM invoices AS i
WHERE
    i.customer = :customer
    AND i.id > :after_id
ORDER BY i.id
LIMIT :page_size;

-- name: count_invoices_by_customer(customer)$
-- Return how many invoices customer has.
SELECT count(*)
FROM invoices AS i
WHERE i.customer = :customer;

-- name: insert_invoice(number, customer, total_cents, actor)^
-- Create an invoice and return it. unique_invoices_number -> ConflictError;
-- the check_invoices_* constraints -> ValidationError.
INSERT INTO invoices (number, customer, total_cents, created_by)
VALUES (:number, :customer, :total_cents, :actor)
RETURNING
    id,
    number,
    customer,
    total_cents,
    version,
    created_by,
    created_at,
    updated_by;

-- name: update_invoice_total(id, expected_version, total_cents, actor)^
-- Set the total of invoice id if its version is still expected_version, bump
-- the version and return the row; nothing when the invoice is missing or its
-- version moved on. check_invoices_total_cents_not_negative -> ValidationError.
UPDATE invoices AS i
SET
    total_cents = :total_cents,
    version = i.version + 1,
    updated_by = :actor
WHERE
    i.id = :id
    AND i.version = :expected_version
RETURNING
    i.id,
    i.number,
    i.customer,
    i.total_cents,
    i.version,
    i.created_by,
    i.created_at,
    i.updated_by;
