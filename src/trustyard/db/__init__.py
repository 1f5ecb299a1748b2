"""The SQL index: tables, migrations, the engine, and the queries services run (``Index``)."""
