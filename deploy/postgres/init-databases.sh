#!/bin/sh
# One role and one database per service, each owning its own: a service cannot read another's
# store. Run once by the postgres image, on an empty data volume, from
# /docker-entrypoint-initdb.d (deploy/compose.yaml mounts it); the passwords come from
# POSTGRES_<SERVICE>_PASSWORD. Adding a service later: run the same statements by hand
# (docs/operations.md).
set -eu

for service in enrolment visits indicators notifications; do
    variable="POSTGRES_$(echo "$service" | tr '[:lower:]' '[:upper:]')_PASSWORD"
    password=$(printenv "$variable" || true)
    if [ -z "$password" ]; then
        echo "init-databases: $variable is not set" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        --set=role="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
