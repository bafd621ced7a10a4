-- fast-seller PostgreSQL store, schema version 3: when each delivered event was delivered
-- (the time of its delivering attempt), so that delivered events can be pruned once their
-- retention has passed. NULL while an event is not delivered.

ALTER TABLE outbox ADD COLUMN delivered_at_ms bigint;

UPDATE outbox o SET delivered_at_ms = COALESCE(
    (SELECT max(a.at_ms) FROM outbox_attempts a WHERE a.event_id = o.id AND a.delivered),
    o.next_attempt_ms)
WHERE o.state = 'delivered';

-- Pruning: delivered events, oldest delivery first.
CREATE INDEX outbox_delivered ON outbox (delivered_at_ms, id) WHERE state = 'delivered';
