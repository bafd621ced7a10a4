-- fast-seller PostgreSQL store, schema version 1.
-- Times are milliseconds since the Unix epoch; bodies are opaque bytes. Ids sort bytewise
-- (COLLATE "C"), like the sled store's keys.

CREATE TABLE orders (
    id text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL CHECK (version >= 0),
    -- Current seller ids, current one first (as given by the last commit).
    external_ids text[] NOT NULL,
    body bytea NOT NULL
);

-- Every seller id an order was ever known by.
CREATE TABLE order_external_ids (
    external_id text COLLATE "C" PRIMARY KEY,
    order_id text COLLATE "C" NOT NULL REFERENCES orders (id)
);
CREATE INDEX order_external_ids_order ON order_external_ids (order_id);

CREATE TABLE idempotency (
    app_id text COLLATE "C" NOT NULL,
    request_id text COLLATE "C" NOT NULL,
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    status integer NOT NULL CHECK (status BETWEEN 0 AND 65535),
    body bytea NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (app_id, request_id)
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

CREATE TABLE outbox (
    id text COLLATE "C" PRIMARY KEY,
    order_id text COLLATE "C" NOT NULL,
    sequence bigint NOT NULL,
    event_type text NOT NULL,
    body bytea NOT NULL,
    created_at_ms bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts bigint NOT NULL DEFAULT 0,
    failures bigint NOT NULL DEFAULT 0,
    next_attempt_ms bigint NOT NULL,
    -- Claimed by a worker until then (exclusive); NULL when not claimed.
    leased_until_ms bigint,
    UNIQUE (order_id, sequence)
);
-- Claims: pending entries by due time.
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE state = 'pending';
-- Per-order FIFO: the head of an order is its lowest undelivered sequence.
CREATE INDEX outbox_undelivered ON outbox (order_id, sequence) WHERE state <> 'delivered';
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';

CREATE TABLE outbox_attempts (
    event_id text COLLATE "C" NOT NULL REFERENCES outbox (id),
    number bigint NOT NULL,
    at_ms bigint NOT NULL,
    latency_ms bigint NOT NULL,
    delivered boolean NOT NULL,
    status integer,
    detail text NOT NULL,
    PRIMARY KEY (event_id, number)
);
