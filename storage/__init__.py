"""PostgreSQL storage: pool, migrations, the embedded server and one repository per aggregate."""
