-- Run once by the postgres container on an empty volume (docker-entrypoint-initdb.d), as POSTGRES_USER:
-- the application's database (POSTGRES_DB=mairie) exists already; this creates the Prefect server's own.
CREATE DATABASE prefect;
