-- Drop the invoices table; its index, constraints and grants go with it.
-- A rollback exists to drop what its migration created:
-- squawk-ignore-file ban-drop-table

DROP TABLE invoices;
