-- Planned-scale rollups for bench/query_postgres.py, generated entirely in SQL.
-- 250 orgs, 40 models; each org uses 5 models and 3 clients; every (model, client) has a row
-- in every 15-minute bucket: 13 months for the 20 largest orgs, 35 days for the rest.
-- Row statistics come from 1000 pre-built "templates" (500 busy buckets of 20-300 events,
-- 500 quiet ones of 1-30), each a real sample of log-normal latencies folded into the
-- sketch's log bins (relative accuracy 0.95 %), so sketches are as wide as real ones.
-- Parameters (psql variables): :end_ts (exclusive end, a 15-minute boundary).

SET maintenance_work_mem = '1GB';
SET work_mem = '256MB';
SET synchronous_commit = off;

CREATE TEMP TABLE tpl AS
WITH params AS (SELECT ln((1 + 0.0095) / (1 - 0.0095)) AS ln_gamma),
t AS (
  SELECT id,
         CASE WHEN id < 500 THEN 20 + (id * 37) % 281 ELSE 1 + (id * 13) % 30 END AS n
  FROM generate_series(0, 999) AS id
),
ev AS (
  SELECT t.id, g,
         greatest(1, round(exp(6.2 + 0.7 * sqrt(-2 * ln(1 - random()))
                                  * cos(2 * pi() * random()))))::int8 AS lat,
         random() AS r
  FROM t, generate_series(1, t.n) AS g
),
agg AS (
  SELECT id,
         count(*) AS invocations,
         count(*) FILTER (WHERE r < 0.96) AS success,
         count(*) FILTER (WHERE r >= 0.96 AND r < 0.98) AS errors,
         count(*) FILTER (WHERE r >= 0.98 AND r < 0.992) AS timeouts,
         count(*) FILTER (WHERE r >= 0.992) AS throttled,
         sum(lat) AS latency_sum, min(lat) AS latency_min, max(lat) AS latency_max
  FROM ev GROUP BY id
),
bins AS (
  SELECT id, array_agg(b ORDER BY b) AS lat_bins, array_agg(c ORDER BY b) AS lat_counts
  FROM (SELECT id, ceil(ln(lat) / (SELECT ln_gamma FROM params))::int4 AS b, count(*) AS c
        FROM ev GROUP BY 1, 2) AS x
  GROUP BY id
)
SELECT a.*, b.lat_bins, b.lat_counts,
       a.invocations * (100 + a.id % 900) AS input_tokens,
       a.invocations * (20 + a.id % 300) AS output_tokens,
       a.invocations * (1000 + (a.id * 7919) % 40000) AS cost_units,
       CASE WHEN a.errors > 0
            THEN jsonb_build_object('upstream_5xx', a.errors)
            ELSE '{}'::jsonb END AS error_codes
FROM agg a JOIN bins b USING (id);

CREATE TEMP TABLE combos AS
SELECT o.o, md5('org' || o.o)::uuid AS org_id,
       md5('model' || ((o.o * 7 + k * 3) % 40))::uuid AS model_id,
       'client-' || o.o || '-' || c AS client_id,
       k * 3 + c AS combo,
       CASE WHEN o.o < 20 THEN interval '396 days' ELSE interval '35 days' END AS span
FROM generate_series(0, 249) AS o(o), generate_series(0, 4) AS k, generate_series(0, 2) AS c;

ALTER TABLE rollups_15m DROP CONSTRAINT pk_rollups_15m;

-- Buckets outermost, so the heap is in time order as in production (where rows are written as
-- time passes and one org's rows are spread over many pages).
INSERT INTO rollups_15m
SELECT c.org_id, b.bucket_start, c.model_id, c.client_id,
       t.invocations, t.success, t.errors, t.timeouts, t.throttled, t.input_tokens,
       t.output_tokens, t.cost_units, t.latency_sum, t.latency_min, t.latency_max,
       0, t.lat_bins, t.lat_counts, t.error_codes
FROM generate_series(:'end_ts'::timestamptz - interval '396 days',
                     :'end_ts'::timestamptz - interval '15 minutes',
                     interval '15 minutes') AS b(bucket_start)
CROSS JOIN combos c
JOIN tpl t ON t.id = (CASE WHEN c.o < 20 THEN 0 ELSE 500 END)
  + ((c.o * 7919 + c.combo * 104729
      + (extract(epoch FROM b.bucket_start)::int8 / 900) * 31) % 500)::int
WHERE b.bucket_start >= :'end_ts'::timestamptz - c.span;

ALTER TABLE rollups_15m ADD CONSTRAINT pk_rollups_15m
  PRIMARY KEY (org_id, bucket_start, model_id, client_id);

-- Hour and day tiers: rows drawn from tier templates, each the exact merge of 4 (hour) or
-- 96 (day) base templates of the same pool, so tier sketches are as wide as real merges.
-- (Tier values are therefore not the merges of these particular base rows; the benchmark
-- measures cost, which depends on row counts and sketch widths, not on the values.)
CREATE TEMP TABLE tpl_tier AS
SELECT tier, k.id, sum(t.invocations)::int8 AS invocations, sum(t.success)::int8 AS success,
       sum(t.errors)::int8 AS errors, sum(t.timeouts)::int8 AS timeouts,
       sum(t.throttled)::int8 AS throttled, sum(t.input_tokens)::int8 AS input_tokens,
       sum(t.output_tokens)::int8 AS output_tokens, sum(t.cost_units)::int8 AS cost_units,
       sum(t.latency_sum)::int8 AS latency_sum, min(t.latency_min) AS latency_min,
       max(t.latency_max) AS latency_max,
       analytics_sketch_agg(t.lat_bins, t.lat_counts) AS sketch,
       analytics_error_codes_agg(t.error_codes) AS error_codes
FROM (VALUES ('hour', 4), ('day', 96)) AS tiers(tier, width)
CROSS JOIN generate_series(0, 999) AS k(id)
CROSS JOIN LATERAL generate_series(0, tiers.width - 1) AS part(n)
JOIN tpl t ON t.id = (CASE WHEN k.id < 500 THEN 0 ELSE 500 END) + (k.id * 7 + part.n * 131) % 500
GROUP BY tier, k.id;

ALTER TABLE rollups_1h DROP CONSTRAINT pk_rollups_1h;
ALTER TABLE rollups_1d DROP CONSTRAINT pk_rollups_1d;

INSERT INTO rollups_1h
SELECT c.org_id, b.bucket_start, c.model_id, c.client_id,
       t.invocations, t.success, t.errors, t.timeouts, t.throttled, t.input_tokens,
       t.output_tokens, t.cost_units, t.latency_sum, t.latency_min, t.latency_max,
       0, (t.sketch).bins, (t.sketch).counts, t.error_codes
FROM generate_series(:'end_ts'::timestamptz - interval '396 days',
                     :'end_ts'::timestamptz - interval '1 hour',
                     interval '1 hour') AS b(bucket_start)
CROSS JOIN combos c
JOIN tpl_tier t ON t.tier = 'hour' AND t.id = (CASE WHEN c.o < 20 THEN 0 ELSE 500 END)
  + ((c.o * 7919 + c.combo * 104729
      + (extract(epoch FROM b.bucket_start)::int8 / 3600) * 31) % 500)::int
WHERE b.bucket_start >= :'end_ts'::timestamptz - c.span;

INSERT INTO rollups_1d
SELECT c.org_id, b.bucket_start, c.model_id, c.client_id,
       t.invocations, t.success, t.errors, t.timeouts, t.throttled, t.input_tokens,
       t.output_tokens, t.cost_units, t.latency_sum, t.latency_min, t.latency_max,
       0, (t.sketch).bins, (t.sketch).counts, t.error_codes
FROM generate_series(:'end_ts'::timestamptz - interval '396 days',
                     :'end_ts'::timestamptz - interval '1 day',
                     interval '1 day') AS b(bucket_start)
CROSS JOIN combos c
JOIN tpl_tier t ON t.tier = 'day' AND t.id = (CASE WHEN c.o < 20 THEN 0 ELSE 500 END)
  + ((c.o * 7919 + c.combo * 104729
      + (extract(epoch FROM b.bucket_start)::int8 / 86400) * 31) % 500)::int
WHERE b.bucket_start >= :'end_ts'::timestamptz - c.span;

ALTER TABLE rollups_1h ADD CONSTRAINT pk_rollups_1h
  PRIMARY KEY (org_id, bucket_start, model_id, client_id);
ALTER TABLE rollups_1d ADD CONSTRAINT pk_rollups_1d
  PRIMARY KEY (org_id, bucket_start, model_id, client_id);
VACUUM ANALYZE rollups_15m;
VACUUM ANALYZE rollups_1h;
VACUUM ANALYZE rollups_1d;
