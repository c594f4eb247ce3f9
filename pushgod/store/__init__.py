"""peewee on SQLite: the schema, migrations, the single writer (group commit), queries."""
