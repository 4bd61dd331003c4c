"""Testing against a real PostgreSQL: the pytest plugin and throwaway servers.

* ``plugin``: the pytest plugin (entry point ``vdata``), its hooks;
  ``options``: what a service sets (its migrations, its repositories);
  ``fixtures``: the server, the migrated template, a clone per test;
  ``connections``: ``vdata_db`` and ``vdata_tx`` on those databases;
* ``providers``: where the server comes from (a DSN, Docker, local or
  embedded binaries); ``reaper``: the docker provider's containers removed
  when pytest dies (watchdog, sweep); ``admin``: the owner connection that
  clones and drops;
* ``pgserver``: start a throwaway cluster (``pgserver.start()``), built from
  ``pgbin`` (finding binaries), ``pgcluster`` (one cluster), ``runas`` (not
  as root), ``live`` (stopped at exit) and ``tls`` (test certificates).

Importing this package imports neither pytest nor a driver.
"""
