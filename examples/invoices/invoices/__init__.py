"""invoices: a small service on vdata, with its own table, queries and repository."""
