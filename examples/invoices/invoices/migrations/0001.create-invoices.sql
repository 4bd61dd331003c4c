-- Invoices: the service's one table. The database enforces what must never
-- break (unique numbers, totals not negative), so raw SQL from elsewhere
-- cannot break it either; the service role gets exactly what its queries need.
-- depends:

CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY,
    number text NOT NULL,
    customer text NOT NULL,
    total_cents bigint NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_by text,
    CONSTRAINT pk_invoices PRIMARY KEY (id),
    CONSTRAINT unique_invoices_number UNIQUE (number),
    CONSTRAINT check_invoices_number_length CHECK (char_length(number) BETWEEN 1 AND 40),
    CONSTRAINT check_invoices_customer_length CHECK (char_length(customer) BETWEEN 1 AND 200),
    CONSTRAINT check_invoices_total_cents_not_negative CHECK (total_cents >= 0)
);

CREATE INDEX index_invoices_on_customer_and_id ON invoices (customer, id);

COMMENT ON COLUMN invoices.version IS 'Optimistic lock: bumped by every update.';

GRANT SELECT, INSERT, UPDATE ON invoices TO vdata_app;
