-- `vdata bench`, as the owner (a superuser: only one may grant BYPASSRLS):
-- a second service role, vdata_bench_bypass, with the service role's
-- privileges and BYPASSRLS, so that the row-security measurement runs the
-- same calls with the policies applied (vdata_app) and skipped (this role),
-- alternating call batches on one server. Where the service role logs in
-- with a password, the copy gets the same one: the owner's session passes it
-- in the setting vdata.bench_bypass_password (empty: no password).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'vdata_bench_bypass') THEN
        CREATE ROLE vdata_bench_bypass LOGIN BYPASSRLS;
    END IF;
    PERFORM app.grant_service_role('vdata_bench_bypass');
    IF coalesce(current_setting('vdata.bench_bypass_password', TRUE), '') <> '' THEN
        EXECUTE format(
            'ALTER ROLE vdata_bench_bypass PASSWORD %L',
            current_setting('vdata.bench_bypass_password')
        );
    END IF;
END;
$$;
