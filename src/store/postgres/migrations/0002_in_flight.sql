-- fast-seller PostgreSQL store, schema version 2: in-flight markers.
-- A request being executed marks its idempotency key here, so that a duplicate arriving at
-- another instance waits for the first instead of running next to it. A marker expires (the
-- database's clock), so an instance that crashed cannot block its request ids for longer
-- than that; an expired marker is taken over. Exactly-once itself does not depend on this
-- table: the primary key of `idempotency` still admits one record per key.

CREATE TABLE in_flight (
    app_id text COLLATE "C" NOT NULL,
    request_id text COLLATE "C" NOT NULL,
    -- A random token per claim: only its holder removes the marker.
    owner text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, request_id)
);
CREATE INDEX in_flight_expires ON in_flight (expires_at);
