#!/bin/sh
# Runs once, when the postgres container initialises an empty volume: the superuser
# (POSTGRES_USER) creates the hub's ordinary role and the database it owns. The hub then
# connects as that role, never as the superuser (see SECURITY.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v hub_password="$HUB_DB_PASSWORD" <<'SQL'
CREATE ROLE hub LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'hub_password';
CREATE DATABASE hub OWNER hub;
SQL
