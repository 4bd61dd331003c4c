"""Checking and explaining named queries against a real, migrated schema.

``vdata check`` and ``vdata explain`` (and the tests that run them) use:

* ``sources``: which folders of SQL, migrations and binding modules a run looks at;
* ``scratch``: the database to run against, given or throwaway and migrated;
* ``checker``: ``check()``, every query prepared and compared with its Struct;
* ``files`` and ``blocks``: what the ``.sql`` files alone reveal, and loading them;
* ``structs``, ``pgtypes``, ``nullable``: columns against a Struct's fields,
  PostgreSQL types against annotations, which columns can be NULL;
* ``report``: the findings and their text and JSON forms;
* ``explain`` and ``samples``: plans, seq scans on growing tables, sampled values.
"""
